"""Timing of a whole utterance on one channel: the ESE state flow over layers and frames.

Per frame ``t`` and layer, in the order ESE's controller runs them (Han et al., FPGA 2017, §5.3):

1. one SpMV pass over the broadcast vector ``[x_t ; y_{t-1}]`` through ``W_ih`` and ``W_hh``
   (all four gates; each PE accumulates its interleaved rows). ``x_t`` is double-buffered, so it
   is ready at once; ``y_{t-1}`` entry ``r`` is ready when PE ``r % N`` finished the previous
   frame's projection;
2. the element-wise block of each PE takes its cells as soon as their gate accumulators are
   final (after the MAC pipeline) and streams out ``m_t`` (:mod:`.elementwise`);
3. the projection SpMV ``y_t = W_hr m_t``: column ``j`` is broadcast once cell ``j``'s ``m_t``
   exists, so the projection overlaps the element-wise tail, and PEs that finish early run on
   into the next frame's ``x`` columns (they are only held back by a full FIFO). With
   ``overlap_frames: false`` the next frame's ``x`` columns wait until every output of this frame
   is written.

Layer ``l > 0`` takes layer ``l - 1``'s output of the same frame as its ``x``. Without a
projection, ``m_t`` itself is the recurrent input and the output. The cycle recurrence of a pass
is :mod:`.pass_kernel`; channels run in lockstep on their own utterances, so one channel's
timing is every channel's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstmforge.hw.sim.config import SimConfig
from lstmforge.hw.sim.elementwise import chain_latency, cycles_per_cell, schedule_cells
from lstmforge.hw.sim.pass_kernel import DEPENDENCY, ChannelState, run_pass
from lstmforge.hw.sim.structure import LayerStructure, PEMatrix


def column_bytes(matrix: PEMatrix, config: SimConfig) -> np.ndarray:
    """Bytes the memory unit reads per column: every PE's entries plus one pointer per PE."""
    bits = matrix.entry_counts().sum(axis=1) * config.entry_bits
    return (bits + matrix.num_pes * config.pointer_bits) / 8.0


@dataclass
class Interval:
    """One block of work of one PE in the recorded time step (cycles, end exclusive)."""

    pe: int
    start: int
    end: int
    kind: str


@dataclass
class Timing:
    """Cycle counts of one channel over ``frames`` frames."""

    frames: int
    total_cycles: int
    frame_done: np.ndarray  # [frames] cycle the frame's last output was written
    pe_busy: dict[str, np.ndarray]  # useful / padding / empty_column cycles per PE
    pe_stalls: dict[str, np.ndarray]  # load_imbalance / memory_bandwidth / dependency per PE
    fifo_max: int
    fifo_mean: float
    weight_buffer_peak_bytes: float  # largest per-PE prefetch window (sparse-matrix buffer)
    weight_bytes_per_frame: float
    timeline: list[Interval] = field(default_factory=list)
    timeline_frame: int = 0


def _fifo_occupancy(start: np.ndarray, bcast: np.ndarray, depth: int) -> np.ndarray:
    """Columns waiting in each PE's FIFO right after each broadcast, [S, num_pes]."""
    count = np.zeros(start.shape, dtype=np.int64)
    for back in range(min(depth, start.shape[0])):  # a pass may be narrower than the FIFO
        later = start[: start.shape[0] - back] > bcast[back:, None]
        count[back:] += later
    return count


class _Pass:
    """A pass's static data: cycle cost, entry mix and memory bytes per column."""

    def __init__(self, name: str, matrices: list[PEMatrix], config: SimConfig) -> None:
        entries = np.concatenate([m.entry_counts() for m in matrices])
        useful = np.concatenate([m.useful_counts() for m in matrices])
        self.name = name
        self.cost = np.maximum(entries, 1)
        self.useful = useful.sum(axis=0)
        self.padding = (entries - useful).sum(axis=0)
        self.empty = (entries == 0).sum(axis=0)
        per_column = np.concatenate([column_bytes(m, config) for m in matrices])
        self.nbytes = per_column if config.weight_storage == "stream" else None
        self.total_bytes = float(per_column.sum())
        pe_bytes = entries * config.entry_bits / 8.0 + config.pointer_bits / 8.0
        window = min(config.weight_prefetch_columns, entries.shape[0])
        sums = np.cumsum(np.vstack([np.zeros((1, entries.shape[1])), pe_bytes]), axis=0)
        self.window_bytes = float((sums[window:] - sums[:-window]).max())


def simulate_timing(layers: list[LayerStructure], config: SimConfig, frames: int) -> Timing:
    """Cycle-level timing of ``frames`` time steps of the stacked layers on one channel."""
    num_pes = layers[0].w_ih.num_pes
    state = ChannelState(num_pes, config.fifo_depth, config.weight_prefetch_columns)
    gates = [_Pass(f"gates L{k}", [ly.w_ih, ly.w_hh], config) for k, ly in enumerate(layers)]
    projs = [
        _Pass(f"projection L{k}", [ly.w_hr], config) if ly.w_hr is not None else None
        for k, ly in enumerate(layers)
    ]
    unit_free = np.zeros(num_pes, dtype=np.int64)
    recurrent_ready = [np.zeros(ly.w_hh.shape[1], dtype=np.int64) for ly in layers]
    frame_done = np.zeros(frames, dtype=np.int64)
    record = frames // 2
    timeline: list[Interval] = []
    fifo_max, fifo_sum, fifo_n = 0, 0, 0
    bpc, lat = config.bytes_per_cycle, config.memory_latency_cycles

    def stream(step: _Pass, ready: np.ndarray) -> None:
        nonlocal fifo_max, fifo_sum, fifo_n
        start, bcast = run_pass(state, step.cost, ready, step.nbytes, bpc, lat)
        occupancy = _fifo_occupancy(start, bcast, config.fifo_depth)
        fifo_max = max(fifo_max, int(occupancy.max()))
        fifo_sum, fifo_n = fifo_sum + int(occupancy.sum()), fifo_n + occupancy.size
        if t == record:
            for p in range(num_pes):
                timeline.append(Interval(p, int(start[0, p]), int(state.pe_free[p]), step.name))

    for t in range(frames):
        frame_start = 0 if config.overlap_frames or t == 0 else frame_done[t - 1]
        inputs_ready = np.full(layers[0].w_ih.shape[1], frame_start, dtype=np.int64)
        for k, layer in enumerate(layers):
            stream(gates[k], np.concatenate([inputs_ready, recurrent_ready[k]]))
            rows = np.arange(layer.w_ih.shape[0])
            gate_ready = state.pe_free[rows % num_pes] + config.mac_latency
            interval = cycles_per_cell(config, layer.peephole)
            m_ready, entry = schedule_cells(
                gate_ready, num_pes, interval, chain_latency(config, layer.peephole), unit_free
            )
            if t == record:
                for p in range(num_pes):
                    mine = entry[p::num_pes]
                    if mine.size:
                        timeline.append(
                            Interval(
                                p, int(mine[0]), int(mine[-1]) + interval, f"element-wise L{k}"
                            )
                        )
            if projs[k] is not None:
                stream(projs[k], m_ready)
                out_rows = np.arange(layer.output_size)
                outputs_ready = (
                    state.pe_free[out_rows % num_pes]
                    + config.mac_latency
                    + config.buffer_write_latency
                )
            else:
                outputs_ready = m_ready
            recurrent_ready[k] = outputs_ready
            inputs_ready = outputs_ready
        frame_done[t] = int(inputs_ready.max())

    total = int(max(frame_done[-1], state.pe_free.max()))
    steps = [*gates, *(p for p in projs if p is not None)]
    busy = {
        "useful": sum(s.useful for s in steps) * frames,
        "padding": sum(s.padding for s in steps) * frames,
        "empty_column": sum(s.empty for s in steps) * frames,
    }
    stalls = state.stalls.copy()
    stalls[:, DEPENDENCY] += total - state.pe_free  # draining the last frame's state flow
    return Timing(
        frames=frames,
        total_cycles=total,
        frame_done=frame_done,
        pe_busy=busy,
        pe_stalls={
            "load_imbalance": stalls[:, 0],
            "memory_bandwidth": stalls[:, 1],
            "dependency": stalls[:, 2],
        },
        fifo_max=fifo_max,
        fifo_mean=fifo_sum / max(fifo_n, 1),
        weight_buffer_peak_bytes=max(s.window_bytes for s in steps),
        weight_bytes_per_frame=sum(s.total_bytes for s in steps),
        timeline=timeline,
        timeline_frame=record,
    )
