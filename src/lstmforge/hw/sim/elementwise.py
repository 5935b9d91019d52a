"""The element-wise block of a PE: ElemMul, ElemAdd and sigmoid/tanh units (ESE §5.2).

Per cell and time step the block computes, with the peephole LSTM equations of Graves (2013)
as ESE writes them (gate order i, f, g, o; peepholes on c_{t-1} for i, f and on c_t for o):

    i = σ(a_i + b_i + w_ci ⊙ c_{t-1})    f = σ(a_f + b_f + w_cf ⊙ c_{t-1})    g = tanh(a_g + b_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g            o = σ(a_o + b_o + w_co ⊙ c_t)        m_t = o ⊙ tanh(c_t)

It is pipelined one cell at a time: a cell enters every ``cycles_per_cell`` cycles (the busiest
unit type sets the rate) and its ``m_t`` leaves ``chain_latency`` cycles later (the dependency
chain through the units). A cell enters once its four gate accumulators are final.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from lstmforge.hw.sim.config import SimConfig


def op_counts(peephole: bool) -> dict[str, int]:
    """Element-wise operations per cell and step: multiplies, additions, activations."""
    if peephole:
        return {"mul": 6, "add": 8, "act": 5}
    return {"mul": 3, "add": 5, "act": 5}


def cycles_per_cell(config: SimConfig, peephole: bool) -> int:
    """Initiation interval of the block: the busiest unit type sets it."""
    ops = op_counts(peephole)
    return max(
        math.ceil(ops["mul"] / config.elem_mul_units),
        math.ceil(ops["add"] / config.elem_add_units),
        math.ceil(ops["act"] / config.activation_units),
    )


def chain_latency(config: SimConfig, peephole: bool) -> int:
    """Cycles from a cell entering to its m_t written: the critical path through the units."""
    mul, add, act = config.elem_mul_latency, config.elem_add_latency, config.activation_latency
    if peephole:  # i/f: mul, add, add, act -> c: mul, add -> o: mul, add, add, act -> m: mul
        path = 4 * mul + 5 * add + 2 * act
    else:  # i/f: add, act -> c: mul, add -> tanh(c): act -> m: mul
        path = 2 * mul + 2 * add + 2 * act
    return path + config.buffer_write_latency


@numba.njit(cache=True)
def _schedule(cell_ready, num_pes, interval, latency, unit_free, entry):  # pragma: no cover
    out = np.empty(cell_ready.shape[0], dtype=np.int64)
    for j in range(cell_ready.shape[0]):
        p = j % num_pes
        st = max(unit_free[p], cell_ready[j])
        entry[j] = st
        unit_free[p] = st + interval
        out[j] = st + latency
    return out


def schedule_cells(
    gate_ready: np.ndarray,
    num_pes: int,
    interval: int,
    latency: int,
    unit_free: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Run one time step's cells through the blocks; cell ``j`` is in PE ``j % num_pes``.

    ``gate_ready`` [4H] is the cycle each gate accumulator is final; ``unit_free`` [num_pes]
    (updated) is when each block can take its next cell. Returns (m_t ready cycle, entry
    cycle) per cell.
    """
    hidden = gate_ready.shape[0] // 4
    cell_ready = gate_ready.reshape(4, hidden).max(axis=0).astype(np.int64)
    entry = np.empty(hidden, dtype=np.int64)
    ready = _schedule(cell_ready, num_pes, interval, latency, unit_free, entry)
    return ready, entry
