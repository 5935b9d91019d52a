"""Drive a :class:`~lstmforge.hw.rtl.sparse_pe.SparsePE` in Amaranth's simulator.

The harness plays the role of ESE's activation queue and host (Han et al., FPGA 2017, §5):
it preloads the accumulator buffer, feeds one ``(column, activation)`` word per cycle whenever
the PE is ready, waits for the pipeline to drain and reads every accumulator row back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from lstmforge.errors import InputError
from lstmforge.hw.rtl.sparse_pe import SparsePE


@dataclass(frozen=True)
class PERun:
    """Result of one simulated SpMV pass: accumulator rows and cycles from first word to idle."""

    accumulators: np.ndarray
    cycles: int


def run_sparse_pe(
    pe: SparsePE,
    columns: Sequence[tuple[int, int]],
    initial: Sequence[int] | None = None,
) -> PERun:
    """Simulate ``pe`` on ``columns`` (``(col, activation code)`` pairs, in order).

    ``initial`` preloads the accumulator rows (zeros when omitted), e.g. with the bias.
    """
    rows = pe.params.rows
    preload = [0] * rows if initial is None else [int(v) for v in initial]
    if len(preload) != rows:
        raise InputError(f"PE preload: expected {rows} accumulator values, got {len(preload)}")
    result: dict[str, object] = {}

    async def testbench(ctx) -> None:
        for row, value in enumerate(preload):
            ctx.set(pe.acc_addr, row)
            ctx.set(pe.acc_wdata, value)
            ctx.set(pe.acc_we, 1)
            await ctx.tick()
        ctx.set(pe.acc_we, 0)

        cycles = 0
        for col, value in columns:
            ctx.set(pe.act.payload, {"col": col, "value": value})
            ctx.set(pe.act.valid, 1)
            accepted = False
            while not accepted:
                _, _, accepted = await ctx.tick().sample(pe.act.ready)
                cycles += 1
        ctx.set(pe.act.valid, 0)
        while ctx.get(pe.busy):
            await ctx.tick()
            cycles += 1

        rows_out = []
        for row in range(rows):
            ctx.set(pe.acc_addr, row)
            await ctx.tick()
            rows_out.append(ctx.get(pe.acc_rdata))
        result["accumulators"] = np.array(rows_out, dtype=np.int64)
        result["cycles"] = cycles

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return PERun(accumulators=result["accumulators"], cycles=result["cycles"])
