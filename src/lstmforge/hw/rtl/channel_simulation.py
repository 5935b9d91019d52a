"""Run an :class:`~lstmforge.hw.rtl.channel.LSTMChannel` over a sequence in Amaranth's simulator.

The harness is the host of ESE's channel (Han et al., FPGA 2017, §5): it writes the initial
state and, per time step, the input codes into the channel's buffers, starts the step, waits
for it to finish and reads the new hidden and cell state back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from lstmforge.hw.rtl.channel import LSTMChannel


@dataclass(frozen=True)
class ChannelRun:
    """Hidden codes per step [T, H], final cell codes [H] and cycles per step [T]."""

    hidden: np.ndarray
    cell: np.ndarray
    cycles: np.ndarray


def run_lstm_channel(
    channel: LSTMChannel, x: np.ndarray, h0: np.ndarray, c0: np.ndarray
) -> ChannelRun:
    """Simulate ``channel`` on input codes ``x`` [T, I] from state codes ``h0``, ``c0`` [H]."""
    inputs, hidden = channel.model.input_size, channel.model.hidden_size
    result: dict[str, list] = {"hidden": [], "cycles": [], "cell": []}

    async def write(ctx, select: int, addr: int, value: int) -> None:
        port = channel.buffer_write
        ctx.set(port.en, 1)
        ctx.set(port.select, select)
        ctx.set(port.addr, addr)
        ctx.set(port.data, value)
        await ctx.tick()
        ctx.set(port.en, 0)

    async def read_state(ctx) -> tuple[list[int], list[int]]:
        h_out, c_out = [], []
        for j in range(hidden):
            ctx.set(channel.read_addr, j)
            await ctx.delay(1e-9)  # asynchronous buffer reads settle
            h_out.append(ctx.get(channel.read_h))
            c_out.append(ctx.get(channel.read_c))
        return h_out, c_out

    async def host(ctx) -> None:
        for j in range(hidden):
            await write(ctx, 0, inputs + j, int(h0[j]))
            await write(ctx, 1, j, int(c0[j]))
        for step in x:
            for j, value in enumerate(step):
                await write(ctx, 0, j, int(value))
            ctx.set(channel.start, 1)
            await ctx.tick()
            ctx.set(channel.start, 0)
            cycles = 1
            while True:
                _, _, done = await ctx.tick().sample(channel.done)
                if done:
                    break
                cycles += 1
            h_out, c_out = await read_state(ctx)
            result["hidden"].append(h_out)
            result["cell"] = c_out
            result["cycles"].append(cycles)

    sim = Simulator(channel)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.run()
    return ChannelRun(
        hidden=np.array(result["hidden"], dtype=np.int64).reshape(len(x), hidden),
        cell=np.array(result["cell"], dtype=np.int64),
        cycles=np.array(result["cycles"], dtype=np.int64),
    )
