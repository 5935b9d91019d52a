"""Stream a sequence of inputs through a fixed-latency unit in Amaranth's simulator.

Used for the activation and element-wise units (ESE, Han et al., FPGA 2017, §5), which take one
input per cycle on ``x`` and deliver it on ``y`` a fixed number of cycles later, without
backpressure. The harness feeds one input per cycle and collects every valid output in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amaranth.lib import wiring
from amaranth.sim import Simulator

MAX_LATENCY = 64  # cycles the collector waits beyond the last input before giving up


def run_pipeline(unit: wiring.Component, inputs: Sequence[Any]) -> list[Any]:
    """Outputs of ``unit`` (members ``x``, ``y``: always-ready streams) for ``inputs``, in order.

    Integers come back as ints; struct payloads as the simulator's views of them. A unit that
    stops answering yields fewer outputs than inputs.
    """
    outputs: list[Any] = []

    async def feeder(ctx) -> None:
        for value in inputs:
            ctx.set(unit.x.payload, value)
            ctx.set(unit.x.valid, 1)
            await ctx.tick()
        ctx.set(unit.x.valid, 0)

    async def collector(ctx) -> None:
        for _ in range(len(inputs) + MAX_LATENCY):
            if len(outputs) == len(inputs):
                return
            _, _, valid, payload = await ctx.tick().sample(unit.y.valid, unit.y.payload)
            if valid:
                outputs.append(payload)

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(feeder)
    sim.add_testbench(collector)
    sim.run()
    return outputs
