"""The integer engine on LSTM / LSTMP stacks with an output layer.

Oracles: the float module itself (through the float datapath: same dataflow, float64), the
golden per-PE reference loop (the fast path must match it bit for bit), and an error bound
derived from the formats.
"""

import numba
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmforge.compress import compress_model, load
from lstmforge.compress.artifact import SparseMatrix
from lstmforge.compress.compressor import float_weights
from lstmforge.engine import integer_datapath, run, saturation_counts, substitute, trace_diff
from lstmforge.engine.activation_units import ActivationConfig
from lstmforge.engine.blocks import run_lstm
from lstmforge.engine.cell_kernel import (
    TABLE_PAD,
    _lookup_gates,
    _lookup_gates_portable,
    _lookup_output,
    _lookup_output_portable,
    cell_kernel,
    lane_type,
)
from lstmforge.engine.compiled_lstm import run_lstm_compiled
from lstmforge.engine.fixed_point import (
    LSTMShifts,
    QFormat,
    SaturationCounter,
    requantize,
    rescale,
)
from lstmforge.engine.float_datapath import FloatDatapath
from lstmforge.engine.integer_datapath import IntegerDatapath
from lstmforge.engine.requantize_lanes import requantize_add
from lstmforge.engine.spmv import (
    BLOCK,
    CHUNK,
    FEW_VECTORS,
    LANES,
    WINDOW,
    _chunk_rows,
    _chunk_rows_portable,
    _csr_kernel,
    _row_major,
    _row_pairs,
    _store_block,
    _store_block_portable,
    _window,
    _window_portable,
    spmv_fast,
    spmv_fast_requantized,
    spmv_reference,
    window_layout,
    window_product,
    window_vector_kernel,
    window_workspace,
)
from lstmforge.errors import InputError
from lstmforge.nn import LSTM


class _Speechish(nn.Module):
    def __init__(self, proj: int = 8) -> None:
        super().__init__()
        self.rnn = LSTM(5, 16, num_layers=2, proj_size=proj)
        self.head = nn.Linear(proj or 16, 4)

    def forward(self, x, state=None, lengths=None):
        y, state = self.rnn(x, state, lengths)
        return self.head(y), state


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return _Speechish().eval()


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 7, 5, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def cm(model, x):
    return compress_model(model, density=0.5, num_pes=4, calibration=x)


def test_float_dataflow_equals_the_module(model, x):
    """The engine's dataflow with the module's own float weights reproduces the module."""
    double = _Speechish().double().eval()
    double.load_state_dict(model.state_dict())
    from lstmforge.compress.compressor import block_config

    mats, _, vecs = float_weights(double.rnn, "lstm")
    lengths = np.array([7, 4])
    h0 = torch.randn(2, 2, 8, dtype=torch.float64) * 0.5
    c0 = torch.randn(2, 2, 16, dtype=torch.float64)
    y, (h, c) = run_lstm(
        FloatDatapath(mats | vecs),
        block_config(double.rnn, "lstm"),
        x.double().numpy(),
        (h0.numpy(), c0.numpy()),
        lengths,
    )
    with torch.no_grad():
        ref_y, (ref_h, ref_c) = double.rnn(x.double(), (h0, c0), torch.tensor(lengths))
    np.testing.assert_allclose(y, ref_y.numpy(), atol=1e-12)
    np.testing.assert_allclose(h, ref_h.numpy(), atol=1e-12)
    np.testing.assert_allclose(c, ref_c.numpy(), atol=1e-12)


def test_many_vectors_give_c_ordered_outputs(cm):
    """21 vectors take the CSR kernel, whose accumulators come transposed: the linear head's
    output is still a C-ordered array (a tensor from it can be viewed), equal to the
    reference's."""
    x = torch.randn(3, 7, 5, generator=torch.Generator().manual_seed(2))
    y_ref, _ = run(cm, x, backend="reference")
    y_fast, _ = run(cm, x, backend="fast")
    np.testing.assert_array_equal(y_fast, y_ref)
    assert y_fast.flags.c_contiguous and y_fast.shape == (3, 7, 4)


@pytest.mark.parametrize(
    ("lengths", "message"),
    [([7], "2 integers"), ([7.0, 5.0], "2 integers"), ([8, 5], r"in 1\.\.7"), ([0, 5], "1..7")],
)
def test_bad_lengths_are_an_input_error(cm, x, lengths, message):
    with pytest.raises(InputError, match=message):
        run(cm, x, lengths=np.array(lengths))


def test_fast_path_equals_reference_bit_for_bit(cm, x):
    lengths = np.array([7, 5])
    y_ref, (h_ref, c_ref) = run(cm, x, backend="reference", lengths=lengths)
    y_fast, (h_fast, c_fast) = run(cm, x, backend="fast", lengths=lengths)
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(h_fast, h_ref)
    np.testing.assert_array_equal(c_fast, c_ref)
    assert y_ref.shape == (2, 7, 4) and np.all(
        y_ref[1, 5:] == y_ref[1, 5, 0:4]
    )  # padded: bias only


@pytest.mark.parametrize("vectors", [3, FEW_VECTORS])  # window products, the CSR kernel
def test_spmv_fast_equals_reference_when_accumulators_saturate(vectors):
    rng = np.random.default_rng(0)
    codes = rng.choice([-2048, 0, 2047], size=(12, 300), p=[0.3, 0.2, 0.5])
    matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 5, codes.shape)
    v = rng.choice([-32768, 32767], size=(vectors, 300)).astype(np.int64)
    ref_counter, fast_counter = SaturationCounter(), SaturationCounter()
    ref = spmv_reference(matrix, v, ref_counter, "acc")
    np.testing.assert_array_equal(spmv_fast(matrix, v, fast_counter, "acc"), ref)
    assert ref_counter["acc"] == fast_counter["acc"] > 0
    ref_rq = requantize(ref, 3, QFormat(16, 0), ref_counter, "rq")  # batched, fused requantize
    fused_counter = SaturationCounter()
    got = spmv_fast_requantized(matrix, v, 3, 16, fused_counter, "acc", "rq")
    np.testing.assert_array_equal(got, ref_rq)
    assert fused_counter == ref_counter and ref_counter["rq"] > 0
    assert np.any(ref != v @ codes.T)  # clamping mid-sum changed results: the order matters
    for dtype in (np.int16, np.int32):  # narrower codes (a convolution's patches): the same
        narrow_counter = SaturationCounter()
        narrow = v.astype(dtype)
        np.testing.assert_array_equal(spmv_fast(matrix, narrow, narrow_counter, "acc"), ref)
        np.testing.assert_array_equal(spmv_reference(matrix, narrow, narrow_counter, "ref"), ref)
        assert narrow_counter["acc"] == narrow_counter["ref"] == ref_counter["acc"]


def test_spmv_fast_mixes_int32_rows_and_saturating_rows_in_one_call():
    """Rows the static bound clears, rows whose per-vector bounds clear them for some vectors,
    and vectors that clamp (summed in column order), in one batched call: the reference's
    integers and clamp count."""
    rng = np.random.default_rng(1)
    codes = rng.choice([-2048, 2047], size=(16, 400), p=[0.2, 0.8])  # heavy rows clamp
    codes[::2] = rng.integers(-3, 4, size=(8, 400))  # light rows: L1 * max|x| fits 32 bits
    codes[::2, :5] = 0
    matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 4, codes.shape)
    v = rng.choice([-32768, 32767], size=(5, 400), p=[0.2, 0.8]).astype(np.int64)
    v[0] = rng.integers(-9, 10, size=400)  # heavy rows, but this vector cannot make them clamp
    ref_counter, fast_counter = SaturationCounter(), SaturationCounter()
    ref = spmv_reference(matrix, v, ref_counter, "acc")
    np.testing.assert_array_equal(spmv_fast(matrix, v, fast_counter, "acc"), ref)
    assert ref_counter["acc"] == fast_counter["acc"] > 0
    np.testing.assert_array_equal(ref[:, ::2], v @ codes[::2].T)  # light rows: exact sums
    np.testing.assert_array_equal(ref[0], v[0] @ codes.T)  # no clamp for the small vector
    assert np.any(ref[1:, 1::2] != v[1:] @ codes[1::2].T)  # the others clamped


@pytest.mark.parametrize("vectors", [1, 2])
def test_spmv_fast_bounds_do_not_wrap_on_inputs_wider_than_32_bits(vectors):
    """Bound products formed in int64 wrapped for |x| >= 2^48 (and the sum of |products| of
    a long row for |x| = 2^40): the fast path then skipped the clamps."""
    cases = [
        (np.array([[-32768, 1]]), np.array([0, 2**48])),
        (np.full((1, 256), -32768), np.full(256, 2**40)),
    ]
    for codes, x in cases:
        matrix = SparseMatrix.from_codes(codes, QFormat(16, 15), 1, codes.shape)
        v = np.repeat(x[None, :], vectors, axis=0).astype(np.int64)
        ref_counter, fast_counter = SaturationCounter(), SaturationCounter()
        ref = spmv_reference(matrix, v, ref_counter, "acc")
        np.testing.assert_array_equal(spmv_fast(matrix, v, fast_counter, "acc"), ref)
        assert ref_counter["acc"] == fast_counter["acc"] > 0


def test_spmv_fast_single_vector_equals_reference_when_accumulators_saturate():
    """Batch 1 takes the one-vector kernel: same integers and clamp counts, with and without
    rows whose worst case leaves 32 bits."""
    rng = np.random.default_rng(2)
    codes = rng.choice([-2048, 0, 5, 2047], size=(40, 300), p=[0.2, 0.3, 0.2, 0.3])
    codes[:20, 10:] = 0  # short rows: within the bound, no saturation checks needed
    matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 4, codes.shape)
    for v in (
        rng.choice([-32768, 32767], size=(1, 300)),
        rng.integers(-40, 40, size=(1, 300)),
        np.zeros((1, 300), dtype=np.int64),
    ):
        ref_counter, fast_counter = SaturationCounter(), SaturationCounter()
        ref = spmv_reference(matrix, v, ref_counter, "acc")
        np.testing.assert_array_equal(spmv_fast(matrix, v, fast_counter, "acc"), ref)
        assert ref_counter["acc"] == fast_counter["acc"]
        for shift, bits in ((12, 16), (3, 16), (0, 20), (-2, 16), (20, 8)):  # fused requantize
            ref_rq = requantize(ref, shift, QFormat(bits, 0), ref_counter, f"rq{shift}")
            got = spmv_fast_requantized(matrix, v, shift, bits, fast_counter, "acc", f"rq{shift}")
            np.testing.assert_array_equal(got, ref_rq)
            assert ref_counter == fast_counter
        assert not v.any() or any(ref_counter[f"rq{s}"] > 0 for s in (3, 0, -2))


def _window_columns(layout, s):
    """The columns [LANES, 2] that slot s's byte indices point at, checking the form of those
    of stored weights (the others are padding: weight 0)."""
    index = layout.index[s].reshape(LANES, 2, 2).astype(np.int64)
    stored = layout.weight[s].reshape(LANES, 2) != 0
    assert np.all((index[..., 1] == index[..., 0] + 1)[stored])  # both bytes of one code
    assert np.all((index & 0x70) == 0)  # only the low nibble and the half bit
    return layout.start[s] + (index[..., 0] & 15) // 2 + BLOCK * (index[..., 0] >> 7)


def _window_dense(layout, shape):
    """Decode a windowed layout back to dense codes, checking that each slot's window starts
    at one of its nonzeros and that every row's nonzeros come in column order."""
    dense = np.zeros(shape, dtype=np.int64)
    for g in range(layout.group_ptr.size - 1):
        last = np.full(LANES, -1)
        for s in range(layout.group_ptr[g], layout.group_ptr[g + 1]):
            columns, weights = _window_columns(layout, s), layout.weight[s].reshape(LANES, 2)
            stored = weights != 0  # the others are padding (weight 0)
            assert np.all(
                (columns[stored] >= layout.start[s]) & (columns[stored] < layout.start[s] + WINDOW)
            )
            assert layout.start[s] in columns[stored]  # the window starts at a nonzero
            for lane in range(LANES):
                row = g * LANES + lane
                mine = columns[lane][stored[lane]]
                if row >= shape[0]:
                    assert mine.size == 0  # lanes past the last row are padding
                    continue
                assert np.all(np.diff(np.concatenate([[last[lane]], mine])) > 0)
                if mine.size:
                    last[lane] = mine[-1]
                np.add.at(dense[row], columns[lane], weights[lane])
    return dense


def _adversarial(rng):
    wide = np.zeros((19, 40), dtype=np.int64)
    wide[[0, 5, 6, 18]] = rng.integers(-2048, 2048, size=(4, 40))  # empty rows around them
    wide[7, :] = 2047  # one row longer than all others
    long_row = np.zeros((9, 300), dtype=np.int64)
    long_row[4] = rng.choice([-2048, 2047], size=300)
    at_limit = np.zeros((3, 64), dtype=np.int64)  # L1 norms 65535, 65536 (= ACC_MAX // 32768 + 1)
    at_limit[0, :33] = [2047] * 32 + [31]
    at_limit[1, :33] = [2047] * 32 + [32]
    at_limit[2, ::9] = -2048
    return {
        "empty rows and a long row": wide,
        "all zero": np.zeros((10, 7), dtype=np.int64),
        "one row": rng.integers(-2048, 2048, size=(1, 33)),
        "one saturating row among short ones": long_row,
        "random": rng.choice([-2048, 0, 0, 0, 3, 2047], size=(37, 50)),
        "rows at the no-clamp limit": at_limit,
    }


def test_window_layout_round_trip_and_kernels_on_adversarial_matrices():
    rng = np.random.default_rng(5)
    for name, codes in _adversarial(rng).items():
        matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 3, codes.shape)
        layout = window_layout(matrix)
        np.testing.assert_array_equal(_window_dense(layout, codes.shape), codes, err_msg=name)
        cols = codes.shape[1]
        for x in (
            rng.choice([-32768, 32767], size=cols),
            np.full(cols, -32768),
            rng.integers(-50, 50, size=cols),
            rng.integers(-40000, 40000, size=cols),  # wider than int16: exact path only
            rng.choice([-32768, 32768], size=cols),  # +32768 does not fit int16 either
        ):
            ref_counter, fast_counter = SaturationCounter(), SaturationCounter()
            ref = spmv_reference(matrix, x[None, :], ref_counter, "acc")[0]
            acc = np.full(codes.shape[0], 99, dtype=np.int64)
            clamps = window_vector_kernel(layout, x, acc)
            np.testing.assert_array_equal(acc, ref, err_msg=name)
            assert clamps == ref_counter["acc"], name
            np.testing.assert_array_equal(
                spmv_fast(matrix, x[None, :], fast_counter, "acc")[0], ref
            )
            assert fast_counter == ref_counter
        with pytest.raises(ValueError, match="does not fit the matrix"):  # never reads past x
            window_vector_kernel(layout, np.zeros(cols + 1, dtype=np.int64), acc)
        work = window_workspace(layout)
        with pytest.raises(ValueError, match="do not fit the matrix"):
            window_product(layout, np.zeros(cols + 1, dtype=np.int64), work)


@pytest.mark.parametrize("out_type", [np.int32, np.int64])
def test_requantize_add_lanes_equal_numpy_rescale_plus_addends(out_type):
    """Requantized accumulators plus two addends, eight codes per int32 register and the
    rest in a plain loop, equal NumPy's rescale (round half up, saturate) plus the addends,
    with the same clamp count: accumulators at both ends of 32 bits, right and left shifts
    up to and past 31 bits, formats from 2 to 32 bits (an int32 output holds three codes of
    at most 30), 1 or 4 rows, widths that are not a multiple of eight."""
    rng = np.random.default_rng(5)
    extremes = np.array([-(2**31), 2**31 - 1, -(2**31) + 1, 2**30, -(2**30) - 1, 0, 1, -1])
    for rows in (1, 4):
        for width in (1, 7, 8, 13, 24):
            for bits in (2, 8, 16, 29, 30, 32) if out_type is np.int64 else (2, 8, 16, 29, 30):
                p_lo, p_hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
                for shift in (-31, -12, -1, 0, 1, 2, 15, 31, 32, 40):
                    codes = rows * width
                    acc = rng.integers(-(2**31), 2**31, codes + 5).astype(np.int32)
                    acc[: extremes.size] = extremes[: acc.size]
                    inputs = rng.integers(p_lo, p_hi + 1, codes + 3).astype(np.int32)
                    bias = rng.integers(p_lo, p_hi + 1, codes).astype(np.int32)
                    out = np.full((rows, width + 3), 7, dtype=out_type)
                    clamps = requantize_add(acc, inputs, bias, out, shift, bits, width)
                    counter = SaturationCounter()
                    v = rescale(acc[:codes].astype(np.int64), shift, QFormat(bits, 0), counter, "r")
                    expected = inputs[:codes].astype(np.int64) + v + bias
                    where = f"rows {rows}, width {width}, bits {bits}, shift {shift}"
                    np.testing.assert_array_equal(out[:, :width].ravel(), expected, err_msg=where)
                    assert np.all(out[:, width:] == 7), where  # past the width: untouched
                    assert clamps == counter["r"], where
    with pytest.raises(ValueError, match="fewer codes than G \\* W"):
        requantize_add(acc[:3], inputs, bias, out, 0, 16, width)


def test_requantize_add_without_addends_and_in_place():
    """No addends (None), and the accumulators requantized in place as a [G, W] array."""
    rng = np.random.default_rng(6)
    for shift in (-3, 0, 5, 31, 33):
        acc = rng.integers(-(2**31), 2**31, (3, 21)).astype(np.int32)
        counter = SaturationCounter()
        expected = rescale(acc.astype(np.int64), shift, QFormat(12, 0), counter, "r")
        out = np.empty((3, 21), dtype=np.int64)
        assert requantize_add(acc.ravel(), None, None, out, shift, 12, 21) == counter["r"]
        np.testing.assert_array_equal(out, expected)
        assert requantize_add(acc.ravel(), None, None, acc, shift, 12, 21) == counter["r"]
        np.testing.assert_array_equal(acc, expected)
    assert requantize_add(acc.ravel(), None, None, out, 0, 12, np.int32(21)) == 0  # any int


def test_csr_kernel_on_adversarial_matrices_into_int64_and_int32():
    """Several vectors (two chunks and a part) through the CSR kernel: the reference's
    integers and clamp count, into [N, rows] of int64 or of int32 (which holds every
    accumulator), rows contiguous or further apart than their length, or columns contiguous
    (the transpose of a [rows, N] array, stored a row of sums at a time); an output with
    neither contiguous is refused."""
    rng = np.random.default_rng(11)
    n = 2 * CHUNK + 5
    for name, codes in _adversarial(rng).items():
        matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 3, codes.shape)
        row_ptr, cols, vals, row_l1 = _row_major(matrix)
        pairs = _row_pairs(matrix)
        for x in (
            rng.choice([-32768, 32767], size=(n, codes.shape[1])),
            rng.integers(-50, 50, size=(n, codes.shape[1])),
            rng.integers(-40000, 40000, size=(n, codes.shape[1])),  # products over 2**30
        ):
            counter = SaturationCounter()
            ref = spmv_reference(matrix, x, counter, "acc")
            for out in (
                np.empty((n, codes.shape[0]), np.int64),
                np.empty((n, codes.shape[0]), np.int32),
                np.empty((n, codes.shape[0] + 16), np.int32)[:, : codes.shape[0]],
                np.empty((codes.shape[0], n), np.int64).T,
                np.empty((codes.shape[0], n + 16), np.int32)[:, :n].T,
            ):
                xt = np.ascontiguousarray(x.T)
                clamps = _csr_kernel(row_ptr, cols, vals, row_l1, pairs, xt, out)
                np.testing.assert_array_equal(out, ref, err_msg=name)
                assert clamps == counter["acc"], name
        narrow = np.zeros((codes.shape[1] - 1, n), dtype=np.int64)  # never read past x
        with pytest.raises(ValueError, match="does not fit the matrix"):
            _csr_kernel(row_ptr, cols, vals, row_l1, pairs, narrow, np.empty((n, codes.shape[0])))
        with pytest.raises(ValueError, match="does not fit the matrix"):
            _csr_kernel(row_ptr, cols, vals, row_l1, pairs, xt, np.empty((n - 1, codes.shape[0])))
        if codes.shape[0] > 1:  # (one code a row: any layout, see the next test)
            with pytest.raises(ValueError, match="nor its columns are contiguous"):
                out = np.empty((n, 2 * codes.shape[0]))[:, ::2]
                _csr_kernel(row_ptr, cols, vals, row_l1, pairs, xt, out)


def test_csr_kernel_takes_one_row_in_any_layout():
    """With one row, each output row is one code: a transposed [1, N] array will do."""
    codes = np.array([[3, 0, -5, 7]])
    matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 1, codes.shape)
    x = np.arange(-40, 40).reshape(20, 4)
    out = np.empty((1, 20), dtype=np.int64).T
    clamps = _csr_kernel(*_row_major(matrix), _row_pairs(matrix), np.ascontiguousarray(x.T), out)
    np.testing.assert_array_equal(out[:, 0], x @ codes[0])
    assert clamps == 0


def test_reference_and_fast_record_the_site_of_an_empty_matrix():
    """A matrix with no stored entries: both paths record its site (with zero clamps)."""
    matrix = SparseMatrix.from_codes(np.zeros((4, 3), dtype=np.int64), QFormat(12, 11), 2, (4, 3))
    for vectors in (1, FEW_VECTORS):
        x = np.ones((vectors, 3), dtype=np.int64)
        ref_counter, fast_counter = SaturationCounter(), SaturationCounter()
        np.testing.assert_array_equal(spmv_reference(matrix, x, ref_counter, "acc"), 0)
        np.testing.assert_array_equal(spmv_fast(matrix, x, fast_counter, "acc"), 0)
        assert list(ref_counter.items()) == list(fast_counter.items()) == [("acc", 0)]


@numba.njit
def _call_chunk_rows(pair_ptr, pair_cols, pair_weights, x, top, tracked, sums, flags):
    _chunk_rows(pair_ptr, pair_cols, pair_weights, x, top, tracked, sums, flags)


def test_chunk_row_kernels_and_their_portable_loop_agree():
    """The compiled pair loop over a block of rows (AVX2 where the host has it) and the plain
    loop give each vector of the chunk the row's sum (modulo 2**32), in vector order, and
    the same flags in tracked rows (0 in the others); rows of odd and even
    length, flags raised and not, a block shorter than LANES that leaves the other rows
    alone."""
    rng = np.random.default_rng(14)
    codes = np.zeros((4, 40), dtype=np.int64)
    codes[1, ::2] = 2047  # 20 nonzeros
    codes[2, 1::2] = -2048  # 20
    codes[3, 7] = 5  # one
    matrix = SparseMatrix.from_codes(codes, QFormat(12, 11), 1, codes.shape)
    pair_ptr, pair_cols, pair_weights, _, _ = _row_pairs(matrix)
    x = rng.integers(-32768, 32768, size=(40, CHUNK)).astype(np.int16)
    x[:, :3] = 32767  # vectors whose sums pass 2**30
    expected = codes[1:] @ x.astype(np.int64)
    wrapped = (expected + (1 << 31)) % (1 << 32) - (1 << 31)
    plain_flags = None
    for tracked in ([1, 1, 1], [0, 1, 0], [1, 0, 1]):
        tracked = np.array(tracked, dtype=np.uint8)
        for kernel in (_call_chunk_rows, _chunk_rows_portable):
            sums, flags = np.full((LANES, CHUNK), 7, np.int32), np.full((LANES, CHUNK), 7, np.int32)
            kernel(pair_ptr, pair_cols, pair_weights, x, 1, tracked, sums, flags)
            np.testing.assert_array_equal(sums[:3], wrapped, err_msg=f"{kernel} {tracked}")
            assert np.all(sums[3:] == 7) and np.all(flags[3:] == 7)  # only rows 0-2
            assert not flags[:3][tracked == 0].any()
            if plain_flags is None:
                plain_flags = flags[:3] < 0
            np.testing.assert_array_equal(flags[:3][tracked == 1] < 0, plain_flags[tracked == 1])
    assert plain_flags[:2, :3].all() and not plain_flags[2].any()  # long rows of extreme codes


@numba.njit
def _call_store_block(sums, out, first, top, width):
    _store_block(sums, out, first, top, width)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_store_block_transposes_into_rows_of_any_stride(dtype):
    """The block store (8 x 8 transposes in registers where the host has AVX2) writes
    ``out[first + b, top + i] = sums[i, b]`` for b < width and nothing else, into int32 or
    int64 rows lying further apart than their length, as the plain loop does."""
    rng = np.random.default_rng(15)
    sums = rng.integers(-(2**31), 2**31, size=(LANES, CHUNK)).astype(np.int32)
    for width in (CHUNK, CHUNK - 3, 1):
        outputs = []
        for kernel in (_call_store_block, _store_block_portable):
            out = np.full((CHUNK + 5, 40 + 16), 7, dtype=dtype)[:, :40]
            kernel(sums, out, 2, 16, width)
            outputs.append(out.copy())
        np.testing.assert_array_equal(outputs[0], outputs[1])
        expected = np.full((CHUNK + 5, 40), 7, dtype=dtype)
        expected[2 : 2 + width, 16 : 16 + LANES] = sums[:, :width].T
        np.testing.assert_array_equal(outputs[0], expected)


def test_windows_fill_more_lanes_than_fixed_tiles():
    """On an 11%-dense random pattern the sliding windows need far fewer pair slots than
    fixed 8 x 8 tiles would (a tile needs half its longest row, rounded up)."""
    rng = np.random.default_rng(9)
    codes = np.where(rng.random((512, 256)) < 0.11, rng.integers(1, 2048, (512, 256)), 0)
    layout = window_layout(SparseMatrix.from_codes(codes, QFormat(12, 11), 4, codes.shape))
    per_tile = (codes != 0).reshape(64, LANES, 32, BLOCK).sum(axis=3).max(axis=1)
    tile_slots = ((per_tile + 1) // 2).sum()
    fill = np.count_nonzero(codes) / (2 * LANES * layout.start.size)
    assert layout.start.size < 0.65 * tile_slots and fill > 0.5


@numba.njit
def _call_window(start, index, weight, table, group_ptr, tracked, sums, flags):
    return _window(start, index, weight, table, group_ptr, tracked, sums, flags)


def test_window_group_kernels_sum_and_flag_each_lane():
    """The compiled loop over the row groups (AVX2 where the host has it) and the plain loop
    give each lane its exact sum (modulo 2**32) and, in a tracked group, a flag whose sign
    bit is set exactly where a running sum at a slot boundary left [-2**30, 2**30); an
    untracked group's flags are 0; both return the OR of all flags."""
    rng = np.random.default_rng(6)
    codes = np.zeros((24, 40), dtype=np.int64)
    codes[:8, ::2] = 2047  # 20 nonzeros a row: up to 20 * 2047 * 32767 > 2**30
    codes[8:16] = rng.choice([-2048, 0, 0, 2047], size=(8, 40))
    codes[16:, 3] = -5  # one nonzero a row
    groups = 3
    layout = window_layout(SparseMatrix.from_codes(codes, QFormat(12, 11), 2, codes.shape))
    for x in (rng.integers(-3000, 3000, size=40), np.full(40, 32767), np.full(40, -32768)):
        table = np.zeros(x.size + WINDOW, dtype=np.int16)
        table[: x.size] = x
        left = np.zeros((groups, LANES), dtype=bool)
        for g in range(groups):
            first, stop = layout.group_ptr[g], layout.group_ptr[g + 1]
            running = np.zeros(LANES, dtype=np.int64)
            for s in range(first, stop):  # the slot boundaries, from the decoded layout
                weights = layout.weight[s].reshape(LANES, 2).astype(np.int64)
                running += (weights * x[np.minimum(_window_columns(layout, s), x.size - 1)]).sum(1)
                left[g] |= (running < -(1 << 30)) | (running >= 1 << 30)
            np.testing.assert_array_equal(running, codes[g * LANES : (g + 1) * LANES] @ x)
        assert x[0] != 32767 or left[0].all()  # the test reaches the flag
        wrapped = (codes @ x + (1 << 31)) % (1 << 32) - (1 << 31)
        for tracked in ([1, 1, 1], [0, 1, 0], [1, 0, 1], [0, 0, 0]):
            tracked = np.array(tracked, dtype=np.uint8)
            for kernel in (_call_window, _window_portable):
                sums, flags = (
                    np.full(groups * LANES, 7, np.int32),
                    np.full(groups * LANES, 7, np.int32),
                )
                arrays = (layout.start, layout.index, layout.weight, table, layout.group_ptr)
                every_flag = kernel(*arrays, tracked, sums, flags)
                np.testing.assert_array_equal(sums, wrapped)
                assert every_flag == np.bitwise_or.reduce(flags)
                expected = left & tracked[:, None].astype(bool)
                np.testing.assert_array_equal(flags.reshape(groups, LANES) < 0, expected)
                assert not flags.reshape(groups, LANES)[tracked == 0].any()


@pytest.mark.parametrize("proj", [0, 40])
def test_compiled_layers_equal_reference_with_saturation_everywhere(proj):
    """One compiled call per layer gives the step-by-step reference's integers and the same
    clamp count at every site, in the same order, with recurrent accumulators that saturate,
    lengths, an initial state and two layers."""
    torch.manual_seed(4)
    net = LSTM(5, 48, num_layers=2, proj_size=proj).eval()
    with torch.no_grad():
        for name in ("weight_hh_l0", "weight_hh_l1"):
            getattr(net, name).fill_(1.9)  # codes near the largest: sums pile up
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(8))
    cm = compress_model(net, density=0.9, num_pes=4, calibration=x * 0.05)
    block, lengths = cm.blocks[0], np.array([4, 2])
    state = (np.full((2, 2, proj or 48), 1.0), np.full((2, 2, 48), -0.2))
    x_np = x.double().numpy() * 30
    results, counters = [], []
    for backend in ("reference", "fast"):
        counter = SaturationCounter()
        dp = IntegerDatapath(cm, block, backend, counter)
        runner = run_lstm_compiled if backend == "fast" else run_lstm
        results.append(runner(dp, block.config, x_np, state, lengths))
        counters.append(counter)
    (y_ref, (h_ref, c_ref)), (y_fast, (h_fast, c_fast)) = results
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(h_fast, h_ref)
    np.testing.assert_array_equal(c_fast, c_ref)
    assert list(counters[1].items()) == list(counters[0].items())
    for site in ("weight_hh_l0.accumulate", "weight_hh_l1.requantize", "l1.preactivation"):
        assert counters[0][f"<root>.{site}"] > 0, site
    assert np.all(y_ref[1, 2:] == 0)  # past the length: zeros, state held


def test_compiled_layers_over_several_input_chunks(cm):
    """The compiled layers form the input products CHUNK steps at a time: over three chunks,
    with a sequence that ends inside the second, the step-by-step reference's integers and
    clamp counts."""
    block, lengths = cm.blocks[0], np.array([2 * CHUNK + 6, CHUNK + 3])
    x = np.random.default_rng(12).normal(size=(2, 2 * CHUNK + 6, 5)) * 3
    state = (np.full((2, 2, 8), 0.5), np.full((2, 2, 16), -0.25))
    results, counters = [], []
    for backend, runner in (("reference", run_lstm), ("fast", run_lstm_compiled)):
        counters.append(SaturationCounter())
        dp = IntegerDatapath(cm, block, backend, counters[-1])
        results.append(runner(dp, block.config, x, state, lengths))
    (y_ref, state_ref), (y_fast, state_fast) = results
    np.testing.assert_array_equal(y_fast, y_ref)
    for ref, fast in zip(state_ref, state_fast, strict=True):
        np.testing.assert_array_equal(fast, ref)
    assert list(counters[1].items()) == list(counters[0].items())
    assert np.all(y_ref[1, CHUNK + 3 :] == 0) and np.any(y_ref[1, CHUNK + 2])


def test_compiled_layers_refuse_a_state_of_another_shape(cm, x):
    """The compiled layers write the state in place: a misfitting one is refused first."""
    block, x_np = cm.blocks[0], x.double().numpy()
    dp = IntegerDatapath(cm, block, "fast")
    h = np.zeros((2, x_np.shape[0], 8))
    with pytest.raises(InputError, match=r"expected state \(h \[2, 2, 8\], c \[2, 2, 16\]\)$"):
        run_lstm_compiled(dp, block.config, x_np, (h, np.zeros((2, x_np.shape[0] + 1, 16))))


def test_compiled_layers_decline_what_they_do_not_cover(cm, x):
    block, x_np = cm.blocks[0], x.double().numpy()
    for dp in (
        IntegerDatapath(cm, block, "reference"),
        IntegerDatapath(cm, block, "fast", trace=[]),
        FloatDatapath.from_block(block),
    ):
        assert run_lstm_compiled(dp, block.config, x_np, None) is None
    dp = IntegerDatapath(cm, block, "fast")
    assert run_lstm_compiled(dp, block.config, x_np[:, :0], None) is None
    assert not dp.counter  # declined before touching anything


@pytest.mark.parametrize("interpolate", [True, False])
@pytest.mark.parametrize("proj", [8, 0])
@pytest.mark.parametrize(("hidden", "lanes"), [(16, None), (13, None), (13, np.int64)])
def test_fused_cell_kernel_equals_numpy_cell_on_saturating_inputs(
    model, x, interpolate, proj, hidden, lanes, monkeypatch
):
    """The fast path's compiled element-wise unit gives the NumPy unit's integers and the same
    saturation count at every site, on inputs that clamp at every saturation point: in the
    lanes the plan picks (int32 here) and in int64 lanes, with a cell count that does not fill
    the last register of lanes."""
    if lanes is not None:
        monkeypatch.setattr(integer_datapath, "lane_type", lambda *args: lanes)
    torch.manual_seed(3)
    net = LSTM(5, hidden, num_layers=2, proj_size=proj).eval()
    with torch.no_grad():  # large peepholes: their products saturate too
        for name in ("weight_ci_l0", "weight_cf_l0", "weight_co_l0"):
            getattr(net, name).mul_(40)
    activation = ActivationConfig(index_bits=9, interpolate=interpolate)
    cm = compress_model(net, density=0.5, num_pes=4, calibration=x * 0.1, activation=activation)
    block = cm.blocks[0]
    rng = np.random.default_rng(4)
    pre, cell_fmt = cm.activation.input_format, block.formats["l0.cell"]
    partial = rng.integers(2 * pre.min_code, 2 * pre.max_code + 1, size=(3, 4 * hidden))
    partial[0] = 0
    c_prev = rng.integers(cell_fmt.min_code, cell_fmt.max_code + 1, size=(3, hidden))
    c_prev[1, :4] = [cell_fmt.min_code, cell_fmt.max_code, 0, -1]
    hidden_key = "gate" if proj else "l0.output"
    results, counters = [], []
    for backend in ("reference", "fast"):
        counter = SaturationCounter()
        dp = IntegerDatapath(cm, block, backend, counter)
        results.append(dp.cell(partial, c_prev, 0, hidden_key))
        counters.append(counter)
        assert (dp._fused != {}) == (backend == "fast")  # the fast path used the kernel
        if dp._fused:
            (peep, *_), _ = dp._fused[(0, hidden_key, (hidden,))]
            assert peep.dtype == (lanes or np.int32)
    for ref, fast in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(fast, ref)
    assert counters[1] == counters[0]
    assert list(counters[1]) == list(counters[0])  # same sites, in the same order
    for site in ("preactivation", "cell"):
        assert counters[0][f"<root>.l0.{site}"] > 0, site
    assert "<root>.weight_ci_l0" in counters[0]  # peephole sites are recorded as well


def test_lane_type_takes_int32_only_where_every_intermediate_fits():
    shifts = LSTMShifts.from_formats(
        QFormat(16, 12), QFormat(16, 15), QFormat(16, 11), QFormat(16, 15), (QFormat(12, 14),) * 3
    )
    peepholes = (QFormat(12, 14),) * 3
    assert (
        lane_type(QFormat(16, 12), QFormat(16, 11), QFormat(16, 15), peepholes, shifts, 32767)
        is np.int32
    )
    wide_cell = LSTMShifts.from_formats(
        QFormat(16, 12), QFormat(16, 15), QFormat(24, 11), QFormat(16, 15), (QFormat(12, 14),) * 3
    )
    assert (
        lane_type(QFormat(16, 12), QFormat(24, 11), QFormat(16, 15), peepholes, wide_cell, 32767)
        is np.int64
    )
    left_shift = LSTMShifts(peepholes=(None,) * 3, forget=0, input_gate=0, cell_to_pre=0, hidden=-2)
    assert (
        lane_type(QFormat(16, 12), QFormat(16, 11), QFormat(16, 15), (None,) * 3, left_shift, 32767)
        is np.int64
    )


@numba.njit
def _call_lookups(arrays, n):
    _lookup_gates(arrays, n)
    _lookup_output(arrays, n)


def test_cell_lookups_and_their_portable_loops_agree():
    """The gathers (AVX2 hosts) read a whole lane per entry and keep its low entry: the same
    values as the plain loops, for int16 and int32 tables, in int32 and int64 lanes."""
    rng = np.random.default_rng(13)
    for table_type, lane_type_ in (
        (np.int16, np.int32),
        (np.int16, np.int64),
        (np.int32, np.int64),
    ):
        info = np.iinfo(table_type)
        tables = [
            np.concatenate(
                [rng.integers(info.min, info.max, 1 << 10), np.full(TABLE_PAD, 7)]
            ).astype(table_type)
            for _ in range(2)
        ]
        idx = rng.integers(0, 1 << 10, size=(5, 24)).astype(lane_type_)
        idx[:, :2] = [0, (1 << 10) - 1]  # the first and the last entry
        expected = np.zeros((5, 24), dtype=lane_type_)
        _lookup_gates_portable((idx, expected, *tables), 21)
        _lookup_output_portable((idx, expected, *tables), 21)
        got = np.zeros((5, 24), dtype=lane_type_)
        _call_lookups((idx, got, *tables), 21)
        np.testing.assert_array_equal(got[:, :21], expected[:, :21])
        assert expected[0, 1] == tables[0][(1 << 10) - 1] and expected[2, 0] == tables[1][0]


def test_cell_kernel_refuses_a_pre_activation_beyond_three_codes(cm):
    dp = IntegerDatapath(cm, cm.blocks[0], "fast")
    (peep, sig, tanh, k), _ = dp.cell_kernel_args(0, "gate", (16,))
    partial = np.zeros((1, 64), dtype=np.int64)
    partial[0, 5] = 3 * int(k[0]) - 1
    with pytest.raises(ValueError, match="beyond three P codes"):
        cell_kernel(partial, np.zeros((1, 16), dtype=np.int64), peep, sig, tanh, k)


def test_streaming_in_chunks_is_bit_exact(cm, x):
    y_full, state_full = run(cm, x)
    y1, state = run(cm, x[:, :3])
    y2, state = run(cm, x[:, 3:], state)
    np.testing.assert_array_equal(np.concatenate([y1, y2], axis=1), y_full)
    np.testing.assert_array_equal(state[1], state_full[1])
    state = None
    for t in range(x.shape[1]):  # frame by frame, batch 1
        y_t, state = run(cm, x[:1, t : t + 1], state)
        np.testing.assert_array_equal(y_t[0, 0], y_full[0, t])


def test_integer_vs_float_within_the_quantization_bound(cm, model, x):
    """First step from zero state: |y_int - y_float| is bounded by the format steps.

    Against the float-sparse mode (same dequantized weights), the error at step 0 comes from:
    input rounding (≤ ½ step of the input format, times the row's L1 norm), requantization of
    each accumulator (½ P step), the LUT units, the cell/hidden rounding and the output layer.
    """
    rnn = cm.blocks[0]
    x0 = x[:, :1]
    y_int, _ = run(cm, x0)
    y_flt, _ = run(cm, x0, mode="float-sparse")
    units = cm.report["activation_unit_error"]
    lut = max(units["sigmoid"]["max_abs_error"], units["tanh"]["max_abs_error"])
    half = lambda fmt: 0.5 * fmt.scale  # noqa: E731
    w_ih = np.abs(rnn.matrices["weight_ih_l0"].dense()).sum(axis=1).max()
    pre_err = w_ih * half(rnn.formats["input"]) + 2 * half(cm.activation.input_format)
    gate_err = pre_err + lut + half(cm.activation.output_format)  # slope <= 1
    cell_err = 2 * gate_err + half(rnn.formats["l0.cell"])
    h_err = 2 * (cell_err + gate_err) + half(cm.activation.output_format)
    proj_err = np.abs(rnn.matrices["weight_hr_l0"].dense()).sum(axis=1).max() * h_err + half(
        rnn.formats["l0.output"]
    )
    # layer 1 sees proj_err on its input; the bound grows by the same steps again
    w1 = np.abs(rnn.matrices["weight_ih_l1"].dense()).sum(axis=1).max()
    pre1 = w1 * proj_err + 2 * half(cm.activation.input_format)
    h1 = 2 * (2 * (pre1 + lut) + (pre1 + lut)) + 4 * half(cm.activation.output_format)
    out1 = np.abs(rnn.matrices["weight_hr_l1"].dense()).sum(axis=1).max() * h1 + half(
        rnn.formats["l1.output"]
    )
    head = cm.blocks[1]
    bound = np.abs(head.matrices["weight"].dense()).sum(axis=1).max() * out1 + 2 * half(
        head.formats["output"]
    )
    err = np.abs(y_int - y_flt).max()
    assert 0 < err <= bound
    # over the whole sequence, and against the dense float model (pruning + quantization)
    y_all, _ = run(cm, x)
    y_all_flt, _ = run(cm, x, mode="float-sparse")
    assert np.abs(y_all - y_all_flt).max() < 5e-3


def test_dense_twelve_bit_model_tracks_the_float_module(model, x):
    cm = compress_model(model, density=1.0, num_pes=2, calibration=x)
    with torch.no_grad():
        ref, _ = model(x)
    y, _ = run(cm, x)
    assert np.abs(y - ref.numpy()).max() < 5e-3


def test_substitute_integer_and_float_sparse(cm, model, x, tmp_path):
    cm = load(cm.save(tmp_path / "m.lfz"))
    engine_model = substitute(model, cm)
    assert type(engine_model.rnn).__name__ == "EngineLSTM" and type(model.rnn) is LSTM
    with torch.no_grad():
        y, (h, c) = engine_model(x)
        ref, (ref_h, ref_c) = model(x)
    assert y.shape == ref.shape and h.shape == ref_h.shape and c.shape == ref_c.shape
    assert y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), run(cm, x)[0].astype(np.float32))
    assert set(saturation_counts(engine_model)) >= {"rnn.input.quantize", "head.weight.accumulate"}
    pruned = substitute(model, cm, mode="float-sparse")
    kept = (cm.blocks[0].matrices["weight_ih_l0"].dense_codes() != 0).mean()
    assert (pruned.rnn.weight_ih_l0 != 0).float().mean().item() == pytest.approx(kept)
    with torch.no_grad():
        y_pruned, _ = pruned(x)
    assert 0 < np.abs(y_pruned.numpy() - y.numpy()).max() < 5e-3


def test_substitute_refuses_an_artifact_of_another_model(cm):
    other = _Speechish().eval()
    other.rnn = LSTM(5, 12, num_layers=2, proj_size=8)
    for mode in ("integer", "float-sparse"):
        with pytest.raises(
            InputError,
            match=r"'rnn' was compressed from another model \(hidden_size: artifact \d+, module 12",
        ):
            substitute(other, cm, mode=mode)
    other.rnn = nn.Linear(5, 8)
    with pytest.raises(InputError, match=r"'rnn' is a lstm block, the module has a Linear there"):
        substitute(other, cm)


def test_trace_diff_locates_first_disagreement(cm, x):
    same = trace_diff(cm, x, {"backend": "reference"}, {"backend": "fast"})
    assert same.first is None and max(same.per_signal.values()) == 0.0
    diff = trace_diff(cm, x, {"mode": "integer"}, {"mode": "float-sparse"}, atol=1e-9)
    assert diff.first[0] == 0 and diff.first[1].startswith("rnn.")
    assert diff.to_dict()["first_disagreement"]["step"] == 0


def test_narrow_formats_show_saturation(model, x):
    cm = compress_model(model, density=0.5, num_pes=4, activation_bits=6)
    counter = SaturationCounter()
    run(cm, x * 20, counter=counter)
    assert counter["rnn.input.quantize"] > 0


@pytest.mark.parametrize(
    "activation",
    [ActivationConfig(kind="plan"), ActivationConfig(index_bits=8, interpolate=False)],
)
def test_other_activation_units_fast_equals_reference(model, x, activation):
    cm = compress_model(model, density=0.5, num_pes=3, calibration=x, activation=activation)
    y_ref, _ = run(cm, x[:, :3], backend="reference")
    y_fast, _ = run(cm, x[:, :3])
    np.testing.assert_array_equal(y_fast, y_ref)
    y_flt, _ = run(cm, x[:, :3], mode="float-sparse")
    assert np.abs(y_fast - y_flt).max() < 0.1  # PLAN is coarse (max error 0.019 per unit)


def test_packed_and_time_major_inputs_through_substitute(model, cm, x):
    engine_model = substitute(model, cm)
    lengths = torch.tensor([7, 4])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        out, (h, _) = engine_model.rnn(packed)
        padded, _ = pad_packed_sequence(out, batch_first=True)
        direct, (h_direct, _) = engine_model.rnn(x, lengths=lengths)
    np.testing.assert_array_equal(padded.numpy(), direct.numpy()[:, : padded.shape[1]])
    np.testing.assert_array_equal(h.numpy(), h_direct.numpy())


def test_unsupported_configurations_are_rejected():
    with pytest.raises(InputError, match="bidirectional"):
        compress_model(LSTM(3, 4, bidirectional=True), density=0.5, num_pes=2)
    with pytest.raises(InputError, match="no lstmforge LSTM"):
        compress_model(nn.GRU(3, 4), density=0.5, num_pes=2)
    with pytest.raises(InputError, match="num_pes"):
        compress_model(LSTM(3, 4), density=0.5, num_pes=0)


def test_time_major_module_is_substituted_with_time_major_io(x):
    torch.manual_seed(2)
    module = LSTM(5, 8, batch_first=False).eval()
    cm = compress_model(module, density=0.5, num_pes=2, calibration=x.transpose(0, 1))
    engine_module = substitute(module, cm)
    with torch.no_grad():
        y_tm, (h, c) = engine_module(x.transpose(0, 1))
    y_bf, (h_bf, _) = run(cm, x)
    np.testing.assert_array_equal(y_tm.transpose(0, 1).numpy(), y_bf.astype(np.float32))
    np.testing.assert_array_equal(h.numpy(), h_bf.astype(np.float32))
