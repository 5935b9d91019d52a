"""Per-PE CSC encoding: round trips on random and adversarial matrices, and hand-worked streams."""

import numpy as np
import pytest

from lstmforge.compress.csc import MAX_GAP, decode, encode, encode_pe, local_rows
from lstmforge.errors import InputError


def _round_trip(matrix: np.ndarray, num_pes: int) -> list:
    pes = encode(matrix, num_pes)
    np.testing.assert_array_equal(decode(pes, *matrix.shape), matrix)
    for pe in pes:
        assert pe.values.dtype == np.int16 and pe.rel_index.dtype == np.uint8
        assert pe.col_ptr.dtype == np.int32 and pe.col_ptr.size == matrix.shape[1] + 1
        assert pe.rel_index.size == 0 or pe.rel_index.max() <= MAX_GAP
    return pes


@pytest.mark.parametrize("density", [0.0, 0.02, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("num_pes", [1, 3, 8])
def test_random_round_trip(density, num_pes):
    rng = np.random.default_rng(7)
    matrix = rng.integers(-2048, 2048, size=(70, 23)) * (rng.random((70, 23)) < density)
    _round_trip(matrix, num_pes)


def test_hand_worked_column_with_gaps_15_16_31():
    # one PE, one column: nonzeros at rows 15 (gap 15), 32 (gap 16), 64 (gap 31)
    column = np.zeros((65, 1), dtype=np.int64)
    column[[15, 32, 64], 0] = [5, -6, 7]
    pe = encode_pe(column)
    # gap 15 fits; gap 16 needs one padding (advances 16) then rel 0; gap 31 needs pad + rel 15
    assert pe.values.tolist() == [5, 0, -6, 0, 7]
    assert pe.rel_index.tolist() == [15, 15, 0, 15, 15]
    assert pe.col_ptr.tolist() == [0, 5]
    np.testing.assert_array_equal(decode([pe], 65, 1), column)


def test_adversarial_shapes():
    rng = np.random.default_rng(1)
    empty_cols = rng.integers(1, 9, size=(40, 6))
    empty_cols[:, [0, 3, 5]] = 0
    _round_trip(empty_cols, 4)
    one_row = np.array([[0, 3, 0, -1]])
    _round_trip(one_row, 1)
    _round_trip(one_row, 4)  # more PEs than rows: three PEs own nothing
    all_zero_pe = rng.integers(1, 9, size=(16, 5))
    all_zero_pe[1::4] = 0  # PE 1 of 4 holds only zeros
    pes = _round_trip(all_zero_pe, 4)
    assert pes[1].entries == 0 and pes[1].col_ptr.tolist() == [0] * 6
    long_gap = np.zeros((4 * 100, 2), dtype=np.int64)
    long_gap[-1, 1] = 9  # 99 zero local rows in PE 3 before its last row
    pes = _round_trip(long_gap, 4)
    assert pes[3].padding == 99 // 16 and pes[3].nonzeros == 1
    assert _round_trip(np.zeros((0, 3), dtype=np.int64), 2)[0].entries == 0


def test_local_rows():
    assert [local_rows(10, 4, p) for p in range(4)] == [3, 3, 2, 2]
    assert [local_rows(2, 4, p) for p in range(4)] == [1, 1, 0, 0]


def test_decode_rejects_malformed_streams():
    matrix = np.zeros((20, 2), dtype=np.int64)
    matrix[[3, 19], [0, 1]] = [1, 2]
    pe = encode(matrix, 1)[0]
    bad_rel = pe.rel_index.copy()
    bad_rel[0] = 16
    with pytest.raises(InputError, match="rel_index"):
        decode([type(pe)(pe.values, bad_rel, pe.col_ptr)], 20, 2)
    bad_ptr = pe.col_ptr.copy()
    bad_ptr[-1] += 1
    with pytest.raises(InputError, match="col_ptr"):
        decode([type(pe)(pe.values, pe.rel_index, bad_ptr)], 20, 2)
    with pytest.raises(InputError, match="past the PE's last row"):
        decode([pe], 10, 2)
    zero_value = pe.values.copy()
    zero_value[0] = 0
    with pytest.raises(InputError, match="padding"):
        decode([type(pe)(zero_value, pe.rel_index, pe.col_ptr)], 20, 2)
    with pytest.raises(InputError, match="16 bits"):
        encode(np.array([[40000]]), 1)
