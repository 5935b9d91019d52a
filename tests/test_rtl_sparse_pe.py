# amaranth: UnusedElaboratable=no
"""The sparse PE (ESE §5 / EIE §4) in Amaranth's simulator: hand-worked streams and the engine."""

import numpy as np
import pytest

pytest.importorskip("amaranth")

from lstmforge.compress.artifact import SparseMatrix  # noqa: E402
from lstmforge.compress.csc import PECSC  # noqa: E402
from lstmforge.engine.fixed_point import QFormat  # noqa: E402
from lstmforge.engine.spmv import spmv_reference  # noqa: E402
from lstmforge.errors import InputError  # noqa: E402
from lstmforge.hw.rtl.pe_simulation import run_sparse_pe  # noqa: E402
from lstmforge.hw.rtl.sparse_pe import PEParams, SparsePE, check_pe_weights  # noqa: E402

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
    return PECSC(
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


def test_column_zero_starts_a_new_pass_over_the_column_lengths():
    # the pointer memory holds column lengths; column starts are their running sum
    weights = _weights(HAND_COLUMNS)
    assert SparsePE(PEParams(rows=40, cols=6, entries=16), weights)._initial_contents()[1] == [
        4,
        0,
        4,
        3,
        1,
        2,
    ]
    stream = list(enumerate(HAND_ACTIVATIONS))
    params = PEParams(rows=40, cols=6, entries=16, pointer_bits=3)
    once = run_sparse_pe(SparsePE(params, weights), stream)
    twice = run_sparse_pe(SparsePE(params, weights), stream + stream)
    np.testing.assert_array_equal(twice.accumulators, 2 * once.accumulators)
    assert twice.cycles == 2 * sum(max(len(col), 1) for col in HAND_COLUMNS) + 3


def test_pointer_width_must_hold_the_longest_column():
    assert PEParams(rows=40, cols=6, entries=16).pointer_bits == 6  # a column of 40 entries
    with pytest.raises(InputError, match="4 entries needs more than pointer_bits=2"):
        check_pe_weights(
            PEParams(rows=40, cols=6, entries=16, pointer_bits=2), _weights(HAND_COLUMNS)
        )


@pytest.mark.parametrize(
    ("field", "weights"),
    [
        ("col_ptr", PECSC(np.array([1]), np.array([0]), np.array([0, 1]))),
        ("rel_index", PECSC(np.array([1]), np.array([16]), np.array([0, 1, 1]))),
        ("values", PECSC(np.array([4096]), np.array([0]), np.array([0, 1, 1]))),
        ("col_ptr", PECSC(np.array([1, 2]), np.array([0, 0]), np.array([0, 2, 1]))),
    ],
)
def test_bad_weights_are_rejected(field, weights):
    with pytest.raises(InputError, match=field):
        check_pe_weights(PEParams(rows=4, cols=2, entries=4), weights)


def test_weight_memory_capacity_is_checked():
    weights = PECSC(np.array([1, 2]), np.array([0, 0]), np.array([0, 2]))
    with pytest.raises(InputError, match="exceed"):
        check_pe_weights(PEParams(rows=4, cols=1, entries=1), weights)


@pytest.mark.parametrize(
    ("rows", "cols", "num_pes", "density", "seed"),
    [
        (120, 16, 2, 0.08, 0),  # sparse: long zero runs, many padding entries
        (21, 19, 2, 0.6, 1),  # dense: back-to-back rows, few empty columns
        (150, 10, 3, 0.04, 2),  # very sparse: empty columns, gaps far beyond 16
    ],
)
def test_random_spmv_matches_engine(rows, cols, num_pes, density, seed):

    rng = np.random.default_rng(seed)
    codes = rng.integers(-2048, 2048, size=(rows, cols)) * (rng.random((rows, cols)) < density)
    matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), num_pes, (rows, cols))
    assert sum(pe.padding for pe in matrix.pes) > 0 or density > 0.5
    x = rng.integers(-(2**15), 2**15, size=cols)
    x[rng.random(cols) < 0.2] = 0
    expected = spmv_reference(matrix, x[None, :])[0]

    for p, pe_weights in enumerate(matrix.pes):
        local_rows = len(range(p, rows, num_pes))
        params = PEParams(rows=local_rows, cols=cols, entries=max(1, pe_weights.entries))
        run = run_sparse_pe(SparsePE(params, pe_weights), list(enumerate(x.tolist())))
        np.testing.assert_array_equal(run.accumulators, expected[p::num_pes])
        busy = sum(max(n, 1) for n in np.diff(pe_weights.col_ptr))
        assert run.cycles == busy + (3 if pe_weights.col_ptr[-1] > pe_weights.col_ptr[-2] else 1)


def test_saturating_spmv_matches_engine():
    # a dense row of full-scale products leaves the 32-bit range several times over

    codes = np.array([[2047] * 40 + [-2048] * 10, [-2048] * 45 + [2047] * 5])
    matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 1, codes.shape)
    x = np.full(50, 32767)
    expected = spmv_reference(matrix, x[None, :])[0]
    assert expected[0] < 2**31 - 1 and expected[1] > -(2**31)  # clamped, then moved back
    pe = SparsePE(PEParams(rows=2, cols=50, entries=100), matrix.pes[0])
    run = run_sparse_pe(pe, list(enumerate(x.tolist())))
    np.testing.assert_array_equal(run.accumulators, expected)


def test_pe_parameters_are_checked():
    with pytest.raises(InputError, match="rows"):
        PEParams(rows=0, cols=4, entries=4)
    with pytest.raises(InputError, match="acc_bits"):
        PEParams(rows=4, cols=4, entries=4, weight_bits=12, act_bits=16, acc_bits=27)
    assert PEParams(rows=4, cols=4, entries=4, acc_bits=28).acc_bits == 28


def test_preload_must_cover_every_row():
    pe = SparsePE(PEParams(rows=4, cols=1, entries=1))
    with pytest.raises(InputError, match="expected 4 accumulator values"):
        run_sparse_pe(pe, [(0, 1)], initial=[0, 0])
