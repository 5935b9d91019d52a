"""The sparse PE (ESE §5 / EIE §4) in Amaranth's simulator: hand-worked streams and the engine."""

import numpy as np
import pytest

pytest.importorskip("amaranth")

from lstmforge.errors import InputError  # noqa: E402
from lstmforge.hw.rtl.pe_simulation import run_sparse_pe  # noqa: E402
from lstmforge.hw.rtl.sparse_pe import PEParams, PEWeights, SparsePE  # noqa: E402

PAD = (0, 15)

# Six columns over 40 local rows, encoded by hand: gaps of exactly 15 (no padding) and 16 (one
# padding entry), two paddings before row 33 and row 39, empty columns, and the same row updated
# by the last entry of column 4 and the first entry of column 5 on back-to-back cycles.
HAND_COLUMNS = [
    [(5, 0), (-7, 15), PAD, (11, 0)],  # rows 0, 16 (gap 15), pad at 32, 33 (gap 16)
    [],  # empty
    [PAD, PAD, (3, 1), (-2, 5)],  # pads at 15 and 31, rows 33, 39
    [PAD, PAD, (4, 7)],  # pads at 15 and 31, row 39
    [(9, 0)],  # row 0
    [(-6, 0), (8, 4)],  # rows 0, 5
]
HAND_ACTIVATIONS = [100, 50, -3, 5, 2, -1]


def _weights(columns):
    entries = [e for col in columns for e in col]
    col_ptr = np.cumsum([0] + [len(col) for col in columns])
    return PEWeights(
        values=np.array([v for v, _ in entries], dtype=np.int64),
        rel_index=np.array([z for _, z in entries], dtype=np.int64),
        col_ptr=col_ptr,
    )


def test_hand_worked_column_stream():
    weights = _weights(HAND_COLUMNS)
    pe = SparsePE(PEParams(rows=40, cols=6, entries=16), weights)
    initial = list(range(40))  # a "bias" of r in row r
    run = run_sparse_pe(pe, list(enumerate(HAND_ACTIVATIONS)), initial=initial)

    expected = np.arange(40)
    expected[0] = 0 + 5 * 100 + 9 * 2 + (-6) * (-1)  # 524
    expected[5] = 5 + 8 * (-1)
    expected[16] = 16 + (-7) * 100
    expected[33] = 33 + 11 * 100 + 3 * (-3)
    expected[39] = 39 + (-2) * (-3) + 4 * 5
    np.testing.assert_array_equal(run.accumulators, expected)
    # one entry per cycle, one cycle per empty column, no bubble between columns,
    # plus the three-stage drain (pointer read, fetch, decode/multiply -> accumulate)
    issue_cycles = sum(max(len(col), 1) for col in HAND_COLUMNS)
    assert run.cycles == issue_cycles + 3


def test_accumulator_saturates_after_every_addition():
    # row 1 preloaded near the top: the first product clamps it, the second pulls it back down
    weights = _weights([[(0, 15), (2047, 0)], [(-1, 1)]])
    pe = SparsePE(PEParams(rows=17, cols=2, entries=3), weights)
    top = 2**31 - 1
    initial = [0] * 17
    initial[16] = top - 1000
    initial[1] = -(2**31) + 5
    run = run_sparse_pe(pe, [(0, 32767), (1, 1000)], initial=initial)
    assert run.accumulators[16] == top  # clamped, not wrapped
    assert run.accumulators[1] == -(2**31)  # -2**31 + 5 - 1000 clamps at the bottom
    assert run.accumulators[0] == 0


def test_columns_in_any_order_and_repeated():
    weights = _weights(HAND_COLUMNS)
    pe = SparsePE(PEParams(rows=40, cols=6, entries=16), weights)
    run = run_sparse_pe(pe, [(1, 9), (4, 3), (4, 3)])
    expected = np.zeros(40, dtype=np.int64)
    expected[0] = 2 * 9 * 3
    np.testing.assert_array_equal(run.accumulators, expected)
    assert run.cycles == 3 + 3


@pytest.mark.parametrize(
    ("field", "weights"),
    [
        ("col_ptr", PEWeights(np.array([1]), np.array([0]), np.array([0, 1]))),
        ("rel_index", PEWeights(np.array([1]), np.array([16]), np.array([0, 1, 1]))),
        ("values", PEWeights(np.array([4096]), np.array([0]), np.array([0, 1, 1]))),
        ("col_ptr", PEWeights(np.array([1, 2]), np.array([0, 0]), np.array([0, 2, 1]))),
    ],
)
def test_bad_weights_are_rejected(field, weights):
    with pytest.raises(InputError, match=field):
        weights.check(PEParams(rows=4, cols=2, entries=4))


def test_weight_memory_capacity_is_checked():
    weights = PEWeights(np.array([1, 2]), np.array([0, 0]), np.array([0, 2]))
    with pytest.raises(InputError, match="exceed"):
        weights.check(PEParams(rows=4, cols=1, entries=1))
