"""Cycle counts of the ESE channel model against schedules worked out by hand."""

import numpy as np
import pytest

from lstmforge.hw.sim.config import load_preset
from lstmforge.hw.sim.elementwise import chain_latency, cycles_per_cell, schedule_cells
from lstmforge.hw.sim.pass_kernel import ChannelState, run_pass
from lstmforge.hw.sim.structure import LayerStructure, PEMatrix
from lstmforge.hw.sim.timing import simulate_timing

# Entries per (column, PE) of an 8x8 matrix over 4 PEs: PE p owns rows p and p + 4, so a count
# of 2 means both rows are nonzero in that column, 1 means row p only. PE 0 is heavy early.
COUNTS = np.array(
    [
        [2, 1, 1, 0],
        [2, 1, 0, 1],
        [2, 0, 1, 1],
        [2, 1, 1, 1],
        [0, 1, 2, 1],
        [1, 1, 1, 1],
        [0, 2, 1, 1],
        [1, 0, 1, 2],
    ]
)


def matrix_from_counts(counts: np.ndarray) -> np.ndarray:
    """The 8x8 integer matrix whose per-PE column counts are ``counts``."""
    dense = np.zeros((8, 8), dtype=np.int64)
    for col, row_counts in enumerate(counts):
        for pe, n in enumerate(row_counts):
            for local in range(n):
                dense[local * 4 + pe, col] = 3 + pe + col  # any nonzero code
    return dense


def test_hand_worked_4pe_8x8_schedule_with_fifo_depth_2():
    matrix = PEMatrix.from_codes("w", matrix_from_counts(COUNTS), num_pes=4)
    np.testing.assert_array_equal(matrix.entry_counts(), COUNTS)
    cost = np.maximum(matrix.entry_counts(), 1)  # an empty column still takes its pop cycle
    state = ChannelState(num_pes=4, fifo_depth=2, prefetch_columns=4)
    start, bcast = run_pass(state, cost, np.zeros(8, dtype=np.int64))
    # Worked by hand: b_s = max(b_{s-1} + 1, max_p start[s - 2, p]); PE 0 needs 2 cycles per
    # column for columns 0-3, so columns 5 and 6 wait for PE 0 to pop columns 3 and 4.
    np.testing.assert_array_equal(bcast, [0, 1, 2, 3, 4, 6, 8, 9])
    expected_start = np.array(
        [
            [0, 0, 0, 0],
            [2, 1, 1, 1],
            [4, 2, 2, 2],
            [6, 3, 3, 3],
            [8, 4, 4, 4],
            [9, 6, 6, 6],
            [10, 8, 8, 8],
            [11, 10, 9, 9],
        ]
    )
    np.testing.assert_array_equal(start, expected_start)
    np.testing.assert_array_equal(state.pe_free, [12, 11, 10, 11])
    # PE 1 waits 1 cycle at column 5 and 1 at column 6; PE 2 only at column 6 (its column-4
    # work took 2 cycles); PE 3 like PE 1; PE 0 never waits. All of it is load imbalance.
    np.testing.assert_array_equal(state.stalls[:, 0], [0, 2, 1, 2])
    np.testing.assert_array_equal(state.stalls[:, 1:], 0)


def test_deep_fifo_absorbs_the_imbalance():
    state = ChannelState(num_pes=4, fifo_depth=8, prefetch_columns=4)
    start, bcast = run_pass(state, np.maximum(COUNTS, 1), np.zeros(8, dtype=np.int64))
    np.testing.assert_array_equal(bcast, np.arange(8))
    np.testing.assert_array_equal(state.stalls, 0)
    np.testing.assert_array_equal(state.pe_free, [12, 9, 9, 9])  # each PE: its cost sum


def test_memory_bandwidth_stalls_hand_worked():
    # 10 bytes per column at 5 bytes/cycle, latency 3: column s arrives at 2s + 2 + 3.
    state = ChannelState(num_pes=2, fifo_depth=4, prefetch_columns=64)
    cost = np.ones((8, 2), dtype=np.int64)
    start, _ = run_pass(state, cost, np.zeros(8), np.full(8, 10.0), 5.0, 3)
    np.testing.assert_array_equal(start[:, 0], 2 * np.arange(8) + 5)
    np.testing.assert_array_equal(state.stalls[:, 1], [5 + 7, 5 + 7])
    np.testing.assert_array_equal(state.stalls[:, [0, 2]], 0)


def test_prefetch_window_limits_the_memory_unit():
    # One column of prefetch: column s cannot be read before column s - 1 is finished.
    state = ChannelState(num_pes=1, fifo_depth=4, prefetch_columns=1)
    cost = np.full((3, 1), 4, dtype=np.int64)
    start, _ = run_pass(state, cost, np.zeros(3), np.full(3, 2.0), 1.0, 1)
    # col 0: issue 0, arrives 3; done 7. col 1: issue max(2, 7) = 7, arrives 10; done 14.
    np.testing.assert_array_equal(start[:, 0], [3, 10, 17])


def test_late_column_is_a_dependency_stall():
    state = ChannelState(num_pes=2, fifo_depth=2, prefetch_columns=4)
    ready = np.array([0, 0, 20, 0])
    start, bcast = run_pass(state, np.ones((4, 2), dtype=np.int64), ready)
    np.testing.assert_array_equal(bcast, [0, 1, 20, 21])
    np.testing.assert_array_equal(state.stalls[:, 2], [18, 18])
    np.testing.assert_array_equal(state.stalls[:, :2], 0)


def test_elementwise_block_rate_and_latency():
    config = load_preset("ese-ku060")
    interval = cycles_per_cell(config, peephole=True)
    assert interval == 8  # eight additions per cell through one ElemAdd
    latency = chain_latency(config, peephole=True)
    # 4 multiplies (2), 5 additions (1), 2 activations (2), one buffer write (1)
    assert latency == 4 * 2 + 5 * 1 + 2 * 2 + 1
    # 2 PEs, 4 cells; gate rows of cell j ready at 10 + j
    gate_ready = np.tile(10 + np.arange(4), 4)
    unit_free = np.zeros(2, dtype=np.int64)
    ready, entry = schedule_cells(gate_ready, 2, interval, latency, unit_free)
    # PE 0 runs cells 0, 2: enters 10, then max(18, 12) = 18; PE 1 cells 1, 3: 11, 19
    np.testing.assert_array_equal(entry, [10, 11, 18, 19])
    np.testing.assert_array_equal(ready, entry + latency)
    np.testing.assert_array_equal(unit_free, [26, 27])


def _layer(rng, inputs, hidden, proj, density, pes):
    def rand(name, rows, cols):
        codes = rng.integers(-100, 101, (rows, cols)) * (rng.random((rows, cols)) < density)
        return PEMatrix.from_codes(name, codes, pes)

    w_hr = rand("w_hr", proj, hidden) if proj else None
    return LayerStructure(
        rand("w_ih", 4 * hidden, inputs), rand("w_hh", 4 * hidden, proj or hidden), w_hr, True
    )


@pytest.mark.parametrize("proj", [0, 6])
def test_every_pe_cycle_is_accounted_for(proj):
    rng = np.random.default_rng(1)
    layers = [_layer(rng, 5, 8, proj, 0.4, 4), _layer(rng, proj or 8, 8, proj, 0.4, 4)]
    config = load_preset("ese-ku060").replace(pes_per_channel=4, memory_bandwidth_gbs=0.5)
    timing = simulate_timing(layers, config, frames=5)
    per_pe = sum(timing.pe_busy.values()) + sum(timing.pe_stalls.values())
    np.testing.assert_array_equal(per_pe, np.full(4, timing.total_cycles))
    assert timing.pe_stalls["memory_bandwidth"].sum() > 0  # 2.5 bytes per cycle is too little
    assert np.all(np.diff(timing.frame_done) > 0)


def test_single_layer_single_pe_frame_by_hand():
    # One PE, no projection, 1 input, 1 cell, no padding: the gate pass is two columns (x, h)
    # with 4 and 0 entries -> 4 + 1 cycles; then the cell's m_t leaves after the MAC pipeline
    # and the element-wise chain, and the next frame's h column waits for it.
    config = load_preset("ese-ku060").replace(
        pes_per_channel=1, weight_storage="onchip", onchip_weight_kib=1
    )
    w_ih = PEMatrix.from_codes("w_ih", np.array([[1], [2], [3], [4]]), 1)
    w_hh = PEMatrix.from_codes("w_hh", np.zeros((4, 1), dtype=np.int64), 1)
    layer = LayerStructure(w_ih, w_hh, None, peephole=True)
    timing = simulate_timing([layer], config, frames=2)
    chain = chain_latency(config, True)
    first = 5 + config.mac_latency + chain
    assert timing.frame_done[0] == first
    # frame 1: x column at cycle 5 (PE free), 4 cycles; h column waits for m_0 at `first`;
    # then 1 cycle; the cell enters when the element-wise unit is free again (5+3+8 <= ...)
    second = first + 1 + config.mac_latency + chain
    assert timing.frame_done[1] == second
    assert timing.total_cycles == second


def test_imbalance_stalls_land_on_the_light_pes_only():
    # 4 PEs; PE 0 owns 3 nonzeros per column of the gate matrices, the others 1: with a 1-deep
    # FIFO every column broadcast waits for PE 0, so PEs 1-3 stall 2 cycles per column on load
    # imbalance and PE 0 never stalls on it.
    config = load_preset("ese-ku060").replace(
        pes_per_channel=4, fifo_depth=1, weight_storage="onchip", onchip_weight_kib=1
    )
    hidden = 4  # 16 gate rows: PE p owns rows p, p + 4, p + 8, p + 12
    w_ih = np.zeros((16, 6), dtype=np.int64)
    w_ih[[0, 4, 8], :] = 1  # PE 0: 3 entries per column
    w_ih[[1, 2, 3], :] = 1  # PEs 1-3: 1 entry per column
    w_hh = np.zeros((16, hidden), dtype=np.int64)
    w_hh[[0, 4, 8, 1, 2, 3], :] = 1
    layer = LayerStructure(
        PEMatrix.from_codes("w_ih", w_ih, 4), PEMatrix.from_codes("w_hh", w_hh, 4), None, True
    )
    timing = simulate_timing([layer], config, frames=1)
    imbalance = timing.pe_stalls["load_imbalance"]
    assert imbalance[0] == 0
    # x columns: 6 columns, each 2 stalled cycles after the first (FIFO depth 1 lets one run ahead)
    assert np.all(imbalance[1:] >= 2 * (6 - 1))
    np.testing.assert_array_equal(imbalance[1:], imbalance[1])
    assert timing.pe_busy["useful"].tolist() == [30, 10, 10, 10]


def test_serial_frames_add_the_state_flow_to_every_frame():
    rng = np.random.default_rng(2)
    layers = [_layer(rng, 6, 8, 4, 0.5, 4)]
    config = load_preset("ese-ku060").replace(pes_per_channel=4)
    overlapped = simulate_timing(layers, config, frames=6)
    serial = simulate_timing(layers, config.replace(overlap_frames=False), frames=6)
    assert np.all(np.diff(serial.frame_done) > np.diff(overlapped.frame_done))
    assert serial.pe_stalls["dependency"].sum() > overlapped.pe_stalls["dependency"].sum()
    # serial: frame t + 1 cannot begin before frame t is done, so frames do not overlap
    first_x_start = [i.start for i in serial.timeline if i.kind == "gates L0"]
    assert min(first_x_start) >= serial.frame_done[serial.timeline_frame - 1]
