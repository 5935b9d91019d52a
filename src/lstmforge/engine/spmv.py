"""Sparse matrix times vectors on the integer datapath: the golden loop and fast kernels.

Semantics (``docs/fixed-point.md``): every output row has its own 32-bit accumulator, starting
at 0; the products ``weight_code * activation_code`` (exact) are added in increasing column
order, and the accumulator saturates after every addition.

* :func:`spmv_reference` is the golden model, written as the PE does it: for each PE, walk
  each column's CSC entries (``pos += rel_index + 1``), padding entries included (they add 0).
* :func:`spmv_fast` computes the same integers with compiled kernels. A row whose worst case
  (its L1 norm times max |x|) cannot leave the 32-bit range can never saturate, so its sum may
  be formed in any order; for any other row the kernels also track whether a running sum left
  [-2**30, 2**30), and such a row goes to :func:`_row_product` (the exact bound, and if it
  could leave 32 bits the sum in increasing column order with the saturating accumulator,
  :func:`_row_saturating`), which gives identical results and clamp counts.
* One vector (batch 1, the recurrent products), and each of fewer than :data:`FEW_VECTORS`,
  goes through :func:`window_product` on a windowed copy of the matrix
  (:class:`WindowMatrix`), with work arrays made once (:func:`window_workspace`) where a
  layer makes many products. Gathering an activation per stored weight (``vpgatherdd``)
  costs about 1.3 cycles per weight on the machines we measured (docs/benchmarks.md);
  here the activations come from registers instead: ESE's idea of short relative indices
  into a local window of the input (Han et al., FPGA 2017, §4). Rows go in groups of
  :data:`LANES`, one per int32 lane; a group's nonzeros are stored as *pair slots*, each
  with a window of :data:`WINDOW` columns that starts anywhere (the smallest column the
  group has left, :func:`_window_slots`): in a slot, lane l holds up to
  two of its row's next nonzeros inside the window, their weights ``[w, w']`` (int16) and
  the byte indices of their activations, ``[2c, 2c + 1, 2c', 2c' + 1]`` modulo 16 with bit 7
  set for the window's second half (missing entries: weight 0). One slot is two
  ``vbroadcasti128`` of the window's halves (8 activations each), a ``vpshufb`` on each
  (``vpshufb`` writes 0 where bit 7 is set, so each picks its own half), a ``vpor``, and a
  ``vpmaddwd`` that adds both products into the lane's accumulator. Windows that slide to
  the next nonzeros fill 58% of the lanes on an 11%-dense random matrix, against 33% for
  fixed 8 × 8 tiles. A row whose L1 norm times max |x| fits 32 bits is taken as the lanes
  sum it; in a group with any other row, the lanes also keep the OR of their running totals
  (one ``vpor``), which shows whether a row's running sum left [-2**30, 2**30) (see
  :func:`window_product`); such a row is summed with :func:`_row_product`, as is every
  row when an activation code does not fit int16 or the matrix holds a weight code of
  -32768 (whose square ``vpmaddwd`` cannot add twice).
* More vectors go through :func:`_csr_kernel` on a row-major (CSR) copy whose rows are
  also kept as pairs of nonzeros (:func:`_row_pairs`): per chunk of :data:`CHUNK` vectors
  (int16 codes, in cache), each pair of a row's weights multiplies the chunk's codes of its
  two columns with one ``vpmaddwd`` per 8 vectors (:func:`_chunk_rows`), rows that might
  clamp are cleared as in the window kernel, and each block of 8 rows is stored into the
  [vectors, rows] output as 8 × 8 tiles transposed in registers (:func:`_store_block`).

The CSR copy stores weights and column indices in the narrowest integer type that holds them
(int16 for 12-bit weights).
"""

from __future__ import annotations

from typing import NamedTuple

import llvmlite.binding
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from lstmforge.compress.artifact import SparseMatrix
from lstmforge.engine.fixed_point import ACCUMULATOR_BITS, SaturationCounter, saturate

ACC_MAX = (1 << (ACCUMULATOR_BITS - 1)) - 1
CHUNK = 64  # vectors per pass of the CSR kernel (a multiple of 16)
FEW_VECTORS = CHUNK // 4  # fewer vectors than this: a window product each (see _accumulate)
ACC_MIN = -(1 << (ACCUMULATOR_BITS - 1))
LANES = 8  # rows per group: the int32 lanes of one AVX2 register
BLOCK = 8  # 8 int16 activations: one 16-byte vpshufb table
WINDOW = 2 * BLOCK  # columns a pair slot reaches: two tables
BIAS = 1 << 30  # where the window lanes start (see window_product)
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


@numba.njit(inline="always")
def _clamp(v, lo, hi):  # pragma: no cover - compiled
    """:func:`~lstmforge.engine.fixed_point.saturate` on one integer: ``(value, 1 if clamped
    else 0)``, without branches (min/max and a compare)."""
    clamped = min(max(v, lo), hi)
    return clamped, np.int64(clamped != v)


@numba.njit(inline="always")
def _shift_round(x, shift):  # pragma: no cover - compiled
    """:func:`~lstmforge.engine.fixed_point.shift_round` on one integer, without a branch (a
    loop with a fixed shift vectorizes): ``((x << max(-shift, 0)) + r) >> max(shift, 0)``, r
    the half of the step that a right shift drops (0 for a left shift)."""
    right = max(shift, 0)
    half = (1 << max(right - 1, 0)) * min(right, 1)  # 2**(right - 1), or 0
    return ((x << max(-shift, 0)) + half) >> right


def spmv_reference(
    matrix: SparseMatrix, x: np.ndarray, counter: SaturationCounter | None = None, site: str = ""
) -> np.ndarray:
    """Golden per-PE CSC loop: x [N, cols] integer codes (taken as int64) -> accumulators
    [N, rows] int64. The site is recorded even for a matrix with no stored entries (zero
    clamps), as the fast path records it."""
    num_pes, x = matrix.num_pes, np.asarray(x, dtype=np.int64)
    acc = np.zeros((x.shape[0], matrix.shape[0]), dtype=np.int64)
    if counter is not None:
        counter.record(site, 0)
    for p, pe in enumerate(matrix.pes):
        for j in range(matrix.shape[1]):
            pos = -1
            for e in range(int(pe.col_ptr[j]), int(pe.col_ptr[j + 1])):
                pos += int(pe.rel_index[e]) + 1
                row = pos * num_pes + p
                acc[:, row] = saturate(
                    acc[:, row] + int(pe.values[e]) * x[:, j], ACCUMULATOR_BITS, counter, site
                )
    return acc


@numba.njit(cache=True)
def _row_saturating(row_ptr, cols, vals, x, r):  # pragma: no cover - compiled
    """Row r of a CSR matrix times the vector x, summed in column order with a clamp after
    every addition (the PE's accumulator): ``(sum, clamp count)``."""
    s, clamps = 0, 0
    for e in range(row_ptr[r], row_ptr[r + 1]):
        s, k = _clamp(s + np.int64(vals[e]) * x[cols[e]], ACC_MIN, ACC_MAX)
        clamps += k
    return s, clamps


@numba.njit(cache=True)
def _l1_limit(xmax):  # pragma: no cover - compiled
    """The largest L1 norm l with l * xmax <= ACC_MAX (xmax >= 0), found without forming a
    product (it could wrap int64): rows up to it cannot clamp."""
    return ACC_MAX // max(xmax, 1)


@numba.njit(cache=True)
def _row_product(row_ptr, cols, vals, x, r):  # pragma: no cover - compiled
    """:func:`_row_saturating`, with the exact bound (sum of |products|) first: if it stays in
    32 bits, no partial sum can clamp and the plain sum is returned."""
    s, bound = 0, 0
    for e in range(row_ptr[r], row_ptr[r + 1]):
        p = np.int64(vals[e]) * x[cols[e]]
        s += p
        bound += abs(p)
        if bound > ACC_MAX:  # may clamp (and a longer sum could wrap int64): exact order
            return _row_saturating(row_ptr, cols, vals, x, r)
    return s, 0


def _host_has_avx2() -> bool:
    """Whether numba compiles for this host and the host has AVX2 (``vpshufb`` on 256 bits)."""
    if numba.config.CPU_NAME or not llvmlite.binding.get_process_triple().startswith("x86_64"):
        return False
    return bool(llvmlite.binding.get_host_cpu_features().get("avx2", False))


_I8X16 = ir.VectorType(ir.IntType(8), 16)
_I8X32 = ir.VectorType(ir.IntType(8), 32)
_I16X16 = ir.VectorType(ir.IntType(16), 16)
_I32X8 = ir.VectorType(ir.IntType(32), LANES)
# vpunpcklwd / vpunpckhwd of two registers of 16 int16 codes (within each 128-bit half)
_UNPACK_LOW = [0, 16, 1, 17, 2, 18, 3, 19, 8, 24, 9, 25, 10, 26, 11, 27]
_UNPACK_HIGH = [4, 20, 5, 21, 6, 22, 7, 23, 12, 28, 13, 29, 14, 30, 15, 31]
# the vectors in (low, high) pair-sum lanes are 0-3, 8-11, then 4-7, 12-15: back in order
_IN_ORDER = [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]


def _multiply_add(builder):
    """``vpmaddwd`` on 256 bits: int16 pairs multiplied and added into int32 lanes."""
    signature = ir.FunctionType(_I32X8, [_I16X16, _I16X16])
    return cgutils.get_or_insert_function(builder.module, signature, "llvm.x86.avx2.pmadd.wd")


def _chunk_rows_codegen(context, builder, signature, args):
    """LLVM IR of a block of rows' pairs of nonzeros times a chunk of vectors: per pair, the
    chunk's CHUNK int16 activations of both columns interleaved (``vpunpcklwd``,
    ``vpunpckhwd``) and multiplied by the two weights with ``vpmaddwd``, into lanes that
    start at :data:`BIAS`; in a tracked row also the OR of every new total into the flag
    lanes. One call per block of rows: a call per row would pay numba's reference counting
    of every array on each."""
    registers = CHUNK // 16  # of 16 int16 codes, per column of the chunk
    i64, i32x16 = ir.IntType(64), ir.VectorType(ir.IntType(32), 16)
    pair_ptr, pair_cols, pair_weights, x_a, tracked_a, sums_a, flags_a = (
        context.make_array(signature.args[i])(context, builder, args[i])
        for i in (0, 1, 2, 3, 5, 6, 7)
    )
    top = args[4]
    multiply_add = _multiply_add(builder)
    totals = [cgutils.alloca_once(builder, _I32X8) for _ in range(2 * registers)]
    flags = [cgutils.alloca_once(builder, _I32X8) for _ in totals]
    x_rows = builder.bitcast(x_a.data, _I16X16.as_pointer())  # x [columns, CHUNK] int16

    def at(pointer, index):
        return builder.gep(pointer, [ir.Constant(i64, index) if isinstance(index, int) else index])

    def codes(p, k):  # column k of pair p: its CHUNK codes, a register at a time
        offset = builder.add(builder.mul(p, ir.Constant(i64, 2)), ir.Constant(i64, k))
        column = builder.sext(builder.load(at(pair_cols.data, offset)), i64)
        first_register = builder.mul(column, ir.Constant(i64, registers))
        return [
            builder.load(at(x_rows, builder.add(first_register, ir.Constant(i64, h))), align=2)
            for h in range(registers)
        ]

    def pairs(first, stop, tracked):
        with cgutils.for_range_slice(builder, first, stop, ir.Constant(i64, 1)) as (p, _):
            word = builder.load(at(pair_weights.data, p))
            splat = builder.insert_element(ir.Constant(_I32X8, None), word, ir.Constant(i64, 0))
            splat = builder.shuffle_vector(splat, splat, ir.Constant(_I32X8, None))
            weights = builder.bitcast(splat, _I16X16)
            left, right = codes(p, 0), codes(p, 1)
            for h in range(registers):
                for k, order in enumerate((_UNPACK_LOW, _UNPACK_HIGH)):
                    interleaved = builder.shuffle_vector(
                        left[h], right[h], ir.Constant(i32x16, order)
                    )
                    slot = totals[2 * h + k]
                    total = builder.add(
                        builder.load(slot), builder.call(multiply_add, [interleaved, weights])
                    )
                    builder.store(total, slot)
                    if tracked:
                        flag = flags[2 * h + k]
                        builder.store(builder.or_(builder.load(flag), total), flag)

    in_order = ir.Constant(i32x16, _IN_ORDER)
    unbias = ir.Constant(i32x16, [BIAS] * 16)
    height = cgutils.unpack_tuple(builder, tracked_a.shape)[0]
    with cgutils.for_range(builder, height) as loop:
        i = loop.index
        r = builder.add(top, i)
        first = builder.load(at(pair_ptr.data, r))
        stop = builder.load(at(pair_ptr.data, builder.add(r, ir.Constant(i64, 1))))
        for slot in totals:
            builder.store(ir.Constant(_I32X8, [BIAS] * LANES), slot)
        for flag in flags:
            builder.store(ir.Constant(_I32X8, None), flag)
        is_tracked = builder.icmp_unsigned(
            "!=", builder.load(at(tracked_a.data, i)), ir.Constant(ir.IntType(8), 0)
        )
        with builder.if_else(is_tracked) as (then, otherwise):
            with then:
                pairs(first, stop, True)
            with otherwise:
                pairs(first, stop, False)
        for array, values, offset in ((sums_a, totals, unbias), (flags_a, flags, None)):
            row = builder.mul(i, ir.Constant(i64, registers))  # row i of each
            row = builder.gep(builder.bitcast(array.data, i32x16.as_pointer()), [row])
            for h in range(registers):
                low, high = builder.load(values[2 * h]), builder.load(values[2 * h + 1])
                lanes = builder.shuffle_vector(low, high, in_order)
                if offset is not None:  # the sums without the bias (modulo 2**32)
                    lanes = builder.sub(lanes, offset)
                builder.store(lanes, at(row, h), align=4)
    return context.get_dummy_value()


@intrinsic
def _chunk_rows_intrinsic(
    typingctx, pair_ptr, pair_cols, pair_weights, x, top, tracked, sums, flags
):
    """The numba intrinsic of :func:`_chunk_rows_codegen`."""
    arguments = (pair_ptr, pair_cols, pair_weights, x, top, tracked, sums, flags)
    return types.void(*arguments), _chunk_rows_codegen


@numba.njit(cache=True)
def _chunk_rows_portable(pair_ptr, pair_cols, pair_weights, x, top, tracked, sums, flags):
    """Plain-loop equivalent of :func:`_chunk_rows_intrinsic` (any CPU): the same lanes and
    flags."""
    for i in range(tracked.size):
        for v in range(CHUNK):
            total, flag = np.int64(BIAS), np.int64(0)
            for p in range(pair_ptr[top + i], pair_ptr[top + i + 1]):
                word = np.int64(pair_weights[p])
                low, high = (word << 48) >> 48, word >> 16  # the two int16 weights
                pair = low * x[pair_cols[p, 0], v] + high * x[pair_cols[p, 1], v]
                total = _wrap32(total + pair)
                flag |= total
            sums[i, v], flags[i, v] = _wrap32(total - BIAS), flag if tracked[i] else 0


_chunk_rows = _chunk_rows_intrinsic if _host_has_avx2() else _chunk_rows_portable
"""``_chunk_rows(pair_ptr, pair_cols, pair_weights, x, top, tracked, sums, flags)``: rows
``top + i`` (i < ``tracked.size``, at most LANES), their pairs (:func:`_row_pairs`) times the
chunk ``x`` [columns, CHUNK] int16, into row i of ``sums`` [LANES, CHUNK] int32 (each sum
modulo 2**32) and of ``flags`` [LANES, CHUNK] int32: the OR of the lanes' totals (which
start at BIAS) after every pair where ``tracked[i]``, else 0."""


# the three rounds of an 8 x 8 int32 transpose (vpunpck*dq, vpunpck*qdq, vperm2i128)
_LOW_32, _HIGH_32 = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
_LOW_64, _HIGH_64 = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
_LOW_128, _HIGH_128 = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]


def _transposed(builder, rows: list) -> list:
    """The columns of the 8 x 8 int32 block whose rows are the registers ``rows``."""

    def shuffle(a, b, order):
        return builder.shuffle_vector(a, b, ir.Constant(_I32X8, order))

    pairs = []
    for k in range(0, 8, 2):
        pairs += [shuffle(rows[k], rows[k + 1], _LOW_32), shuffle(rows[k], rows[k + 1], _HIGH_32)]
    quads = []
    for a, b in ((0, 2), (1, 3), (4, 6), (5, 7)):
        quads += [shuffle(pairs[a], pairs[b], _LOW_64), shuffle(pairs[a], pairs[b], _HIGH_64)]
    low = [shuffle(quads[j], quads[j + 4], _LOW_128) for j in range(4)]
    return low + [shuffle(quads[j], quads[j + 4], _HIGH_128) for j in range(4)]


def _store_block_codegen(context, builder, signature, args):
    """LLVM IR of :func:`_store_block`: the block in 8 x 8 tiles, each transposed in
    registers (24 shuffles) and stored as eight runs of LANES codes (sign-extended for an
    int64 ``out``)."""
    sums_a, out_a = (
        context.make_array(signature.args[i])(context, builder, args[i]) for i in (0, 1)
    )
    first, top, width = args[2], args[3], args[4]
    i64, bits = ir.IntType(64), signature.args[1].dtype.bitwidth
    run = ir.VectorType(ir.IntType(bits), LANES)
    tiles = CHUNK // LANES
    sums_rows = builder.bitcast(sums_a.data, _I32X8.as_pointer())
    stride = cgutils.unpack_tuple(builder, out_a.strides)[0]
    start = builder.bitcast(out_a.data, ir.IntType(8).as_pointer())
    start = builder.gep(start, [builder.mul(top, ir.Constant(i64, bits // 8))])
    for tile in range(tiles):
        rows = [
            builder.load(builder.gep(sums_rows, [ir.Constant(i64, i * tiles + tile)]), align=4)
            for i in range(LANES)
        ]
        for j, column in enumerate(_transposed(builder, rows)):
            b = ir.Constant(i64, tile * LANES + j)
            with builder.if_then(builder.icmp_signed("<", b, width)):
                offset = builder.mul(builder.add(first, b), stride)
                pointer = builder.bitcast(builder.gep(start, [offset]), run.as_pointer())
                value = column if bits == 32 else builder.sext(column, run)
                builder.store(value, pointer, align=bits // 8)
    return context.get_dummy_value()


@intrinsic
def _store_block_intrinsic(typingctx, sums, out, first, top, width):
    """The numba intrinsic of :func:`_store_block_codegen`."""
    return types.void(sums, out, first, top, width), _store_block_codegen


@numba.njit(cache=True)
def _store_block_portable(sums, out, first, top, width):  # pragma: no cover - compiled
    """Plain-loop equivalent of :func:`_store_block_intrinsic` (any CPU; any number of
    rows; any layout of ``out``), a row of sums at a time: where ``out``'s columns are
    contiguous, each row's run of sums is stored as it comes."""
    for i in range(sums.shape[0]):
        for b in range(width):
            out[first + b, top + i] = sums[i, b]


_store_block = _store_block_intrinsic if _host_has_avx2() else _store_block_portable
"""``_store_block(sums, out, first, top, width)``: ``out[first + b, top + i] = sums[i, b]``
for the LANES rows of ``sums`` [LANES, CHUNK] int32 and b < ``width``; ``out`` [N, rows]
int32 or int64, its rows contiguous. A loop of scalar copies took about 1.5 cycles a code."""


@numba.njit(cache=True)
def _csr_kernel(row_ptr, cols, vals, row_l1, pairs, xt, out):  # pragma: no cover - compiled
    """CSR matrix times the vectors xt [cols, N] into ``out`` [N, rows] (int64, or int32:
    the accumulators are 32-bit), whose rows or whose columns are contiguous (the transpose
    of a C-order [rows, N] array: each row's sums are stored as they come by
    :func:`_store_block_portable`, without the transposes of :func:`_store_block`); returns
    the clamp count. ``pairs``: the matrix's :func:`_row_pairs`.

    The vectors go in chunks of :data:`CHUNK`, copied into int16 (the chunk stays in cache
    while every row reads it), and each row is formed a pair of its nonzeros at a time times
    the chunk's vectors (:func:`_chunk_rows`). A row whose L1 norm times max |x| fits the
    accumulator cannot clamp; for the others the lanes also keep the OR of their biased
    running totals, as the window kernel does (see :func:`window_product`): a lane
    whose flag is clear is exact, a flagged one is summed again in column order with the
    saturating accumulator. Codes the lanes do not hold (activations outside int16, a weight
    code of -32768 or wider) go that way at once."""
    rows, n = row_ptr.size - 1, xt.shape[1]
    pair_ptr, pair_cols, pair_weights, columns, wmax = pairs
    if xt.shape[0] != columns or out.shape[0] != n or out.shape[1] != rows:
        raise ValueError("_csr_kernel: xt or out does not fit the matrix")  # loops trust them
    by_row = n > 1 and out.strides[0] == out.itemsize  # each row's sums contiguous
    if not by_row and rows > 1 and out.strides[1] != out.itemsize:  # (one code a row: any)
        raise ValueError("_csr_kernel: neither out's rows nor its columns are contiguous")
    low = high = 0
    for j in range(xt.shape[0]):  # one pass: the range of x
        for b in range(n):
            low, high = min(low, xt[j, b]), max(high, xt[j, b])
    xmax = max(high, -low)
    lanes = wmax <= INT16_MAX and INT16_MIN <= low and high <= INT16_MAX
    x16 = np.zeros((xt.shape[0], CHUNK), dtype=np.int16)  # zeros past the last vector
    sums = np.empty((LANES, CHUNK), dtype=np.int32)
    flags = np.empty((LANES, CHUNK), dtype=np.int32)
    limit = _l1_limit(xmax)
    tracked = np.empty(LANES, dtype=np.uint8)
    clamps = 0
    for first in range(0, n, CHUNK):
        width = min(CHUNK, n - first)
        for j in range(xt.shape[0] if lanes else 0):
            for b in range(width):
                x16[j, b] = xt[j, first + b]
        for top in range(0, rows, LANES):  # LANES rows of the chunk, then their stores
            height = min(LANES, rows - top)
            for i in range(height):  # a row that cannot clamp is not tracked
                tracked[i] = row_l1[top + i] > limit
            static = lanes and not tracked[:height].any()
            if lanes:
                _chunk_rows(
                    pair_ptr, pair_cols, pair_weights, x16, top, tracked[:height], sums, flags
                )
            else:
                flags[:] = -1  # every vector of every row: exact path
            if height == LANES and not by_row:
                _store_block(sums, out, first, top, width)
            else:  # the last rows, or columns contiguous
                _store_block_portable(sums[:height], out, first, top, width)
            for i in range(0 if static else height):
                for b in range(width):
                    if flags[i, b] < 0:
                        x = xt[:, first + b]
                        out[first + b, top + i], k = _row_product(row_ptr, cols, vals, x, top + i)
                        clamps += k
    return clamps


class WindowMatrix(NamedTuple):
    """A matrix as windowed pair slots (see the module docstring), plus the CSR copy for the
    exact path. Group g's pair slots are ``group_ptr[g] : group_ptr[g + 1]``."""

    group_ptr: np.ndarray  # int64 [groups + 1]
    start: np.ndarray  # int32 [slots]: the first column of each slot's window
    index: np.ndarray  # uint8 [slots, 4 * LANES]: vpshufb byte indices (bit 7: second half)
    weight: np.ndarray  # int16 [slots, 2 * LANES]: the pairs of weights
    columns: int  # the length of the vector it multiplies
    wmax: int  # the largest |weight|
    group_l1: np.ndarray  # int64 [groups]: the largest row L1 norm of each group
    row_ptr: np.ndarray  # CSR copy: int64 [rows + 1]
    cols: np.ndarray
    vals: np.ndarray
    row_l1: np.ndarray  # int64 [rows]: each row's sum of |weight|


@numba.njit(cache=True)
def _window_slots(row_ptr, cols, vals):  # pragma: no cover - compiled
    """The pair slots of a CSR matrix: ``(group_ptr, start, index, weight)``.

    Per group of LANES rows, greedily: the window starts at the smallest column not yet
    taken in any of the group's rows, and each row puts into the slot its next one or two
    nonzeros that fall inside the window's WINDOW columns. A first pass counts the slots, a
    second fills them."""
    rows = row_ptr.size - 1
    groups = -(-rows // LANES)
    group_ptr = np.zeros(groups + 1, dtype=np.int64)
    nxt = np.empty(LANES, dtype=np.int64)  # each lane's next nonzero
    end = np.empty(LANES, dtype=np.int64)
    start = np.zeros(0, dtype=np.int32)
    index = np.zeros((0, 4 * LANES), dtype=np.uint8)
    weight = np.zeros((0, 2 * LANES), dtype=np.int16)
    for fill in (False, True):
        if fill:
            slots = group_ptr[groups]
            start = np.zeros(slots, dtype=np.int32)
            index = np.zeros((slots, 4 * LANES), dtype=np.uint8)
            weight = np.zeros((slots, 2 * LANES), dtype=np.int16)
        s = 0
        for g in range(groups):
            for lane in range(LANES):
                r = min(g * LANES + lane, rows)  # lanes past the last row: empty
                nxt[lane], end[lane] = row_ptr[r], row_ptr[min(r + 1, rows)]
            while True:
                first = -1
                for lane in range(LANES):
                    if nxt[lane] < end[lane]:
                        col = np.int64(cols[nxt[lane]])
                        first = col if first < 0 else min(first, col)
                if first < 0:
                    break
                for lane in range(LANES):
                    for half in range(2):
                        e = nxt[lane]
                        if e == end[lane] or np.int64(cols[e]) >= first + WINDOW:
                            break
                        if fill:
                            offset = np.int64(cols[e]) - first
                            code = 2 * (offset % BLOCK) + 128 * (offset // BLOCK)
                            index[s, 4 * lane + 2 * half] = code
                            index[s, 4 * lane + 2 * half + 1] = code + 1
                            weight[s, 2 * lane + half] = vals[e]
                        nxt[lane] = e + 1
                if fill:
                    start[s] = first
                s += 1
            group_ptr[g + 1] = s
    return group_ptr, start, index, weight


def _window_codegen(context, builder, signature, args):
    """LLVM IR of the AVX2 loop over all row groups: per pair slot two ``vbroadcasti128`` of
    the window's halves, a ``vpshufb`` on each (the index with bit 7 flipped for the second),
    ``vpor``, ``vpmaddwd``, ``vpaddd`` into lanes that start at :data:`BIAS`; in a tracked
    group also a ``vpor`` of every new total into the flag lanes. One call per matrix: a call
    per group would pay numba's reference counting of every array on each. Returns the OR
    of every flag lane."""
    start_a, index_a, weight_a, table_a, group_ptr_a, tracked_a, sums_a, flags_a = (
        context.make_array(signature.args[i])(context, builder, args[i]) for i in range(8)
    )
    i64 = ir.IntType(64)
    shuffle = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_I8X32, [_I8X32, _I8X32]), "llvm.x86.avx2.pshuf.b"
    )
    multiply_add = _multiply_add(builder)
    i8p = ir.IntType(8).as_pointer()
    both_halves = ir.Constant(ir.VectorType(ir.IntType(32), 32), list(range(16)) * 2)
    flip = ir.Constant(_I8X32, [-128] * 32)
    total = cgutils.alloca_once(builder, _I32X8)
    flags = cgutils.alloca_once(builder, _I32X8)
    every_flag = cgutils.alloca_once_value(builder, ir.Constant(_I32X8, None))

    def vector_at(array, offset, vector):
        pointer = builder.gep(builder.bitcast(array.data, i8p), [offset])
        return builder.load(builder.bitcast(pointer, vector.as_pointer()), align=1)

    def half_table(offset):  # 8 int16 codes, the same in both 128-bit halves
        window = vector_at(table_a, offset, _I8X16)
        return builder.shuffle_vector(window, window, both_halves)

    def slots(first, stop, tracked):
        with cgutils.for_range_slice(builder, first, stop, ir.Constant(i64, 1)) as (s, _):
            column = builder.sext(builder.load(builder.gep(start_a.data, [s])), i64)
            low = builder.add(column, column)  # byte offset of the window
            high = builder.add(low, ir.Constant(i64, 2 * BLOCK))
            offset = builder.mul(s, ir.Constant(i64, 32))
            indices = vector_at(index_a, offset, _I8X32)
            picked = builder.or_(
                builder.call(shuffle, [half_table(low), indices]),
                builder.call(shuffle, [half_table(high), builder.xor(indices, flip)]),
            )
            weights = vector_at(weight_a, offset, _I16X16)
            pair_sums = builder.call(multiply_add, [builder.bitcast(picked, _I16X16), weights])
            new_total = builder.add(builder.load(total), pair_sums)
            builder.store(new_total, total)
            if tracked:
                builder.store(builder.or_(builder.load(flags), new_total), flags)

    groups = builder.sub(cgutils.unpack_tuple(builder, group_ptr_a.shape)[0], ir.Constant(i64, 1))
    with cgutils.for_range(builder, groups) as loop:
        g = loop.index
        first = builder.load(builder.gep(group_ptr_a.data, [g]))
        stop = builder.load(builder.gep(group_ptr_a.data, [builder.add(g, ir.Constant(i64, 1))]))
        builder.store(ir.Constant(_I32X8, [BIAS] * LANES), total)
        builder.store(ir.Constant(_I32X8, None), flags)
        is_tracked = builder.icmp_unsigned(
            "!=", builder.load(builder.gep(tracked_a.data, [g])), ir.Constant(ir.IntType(8), 0)
        )
        with builder.if_else(is_tracked) as (then, otherwise):
            with then:
                slots(first, stop, True)
            with otherwise:
                slots(first, stop, False)
        unbiased = builder.sub(builder.load(total), ir.Constant(_I32X8, [BIAS] * LANES))
        group_flags = builder.load(flags)
        builder.store(builder.or_(builder.load(every_flag), group_flags), every_flag)
        for array, value in ((sums_a, unbiased), (flags_a, group_flags)):  # the group's lanes
            lanes = builder.gep(builder.bitcast(array.data, _I32X8.as_pointer()), [g])
            builder.store(value, lanes, align=4)
    reduce_or = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.IntType(32), [_I32X8]), "llvm.vector.reduce.or.v8i32"
    )
    return builder.call(reduce_or, [builder.load(every_flag)])


@intrinsic
def _window_intrinsic(typingctx, start, index, weight, table, group_ptr, tracked, sums, flags):
    """The numba intrinsic of :func:`_window_codegen`."""
    arguments = (start, index, weight, table, group_ptr, tracked, sums, flags)
    return types.int32(*arguments), _window_codegen


@numba.njit(inline="always")
def _wrap32(v):  # pragma: no cover - compiled
    """v modulo 2**32 as a signed 32-bit value (what an int32 lane holds)."""
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


@numba.njit(cache=True)
def _window_portable(start, index, weight, table, group_ptr, tracked, sums, flags):
    """Plain-loop equivalent of :func:`_window_intrinsic` (any CPU): the same lanes, flags
    and result."""
    every_flag = np.int32(0)
    for g in range(group_ptr.size - 1):
        for lane in range(LANES):
            total, flag = np.int64(BIAS), np.int64(0)
            for s in range(group_ptr[g], group_ptr[g + 1]):
                pair = np.int64(0)
                for half in range(2):
                    code = np.int64(index[s, 4 * lane + 2 * half])
                    column = start[s] + (code & 15) // 2 + BLOCK * (code >> 7)
                    pair += np.int64(weight[s, 2 * lane + half]) * table[column]
                total = _wrap32(total + pair)
                flag |= total
            sums[g * LANES + lane] = _wrap32(total - BIAS)
            flags[g * LANES + lane] = flag if tracked[g] else 0
            every_flag |= flags[g * LANES + lane]
    return every_flag


_window = _window_intrinsic if _host_has_avx2() else _window_portable
"""``_window(start, index, weight, table, group_ptr, tracked, sums, flags)``: every row
group's pair slots (group g's: ``group_ptr[g]:group_ptr[g + 1]``) times the activations
``table`` (int16, zero-padded by WINDOW): into the group's LANES entries of ``sums`` (int32),
each lane's sum (modulo 2**32), and of ``flags`` the OR of the lane's totals (which start at
BIAS) after every slot where ``tracked[g]`` (else 0), whose sign bit says that a sum at a slot
boundary left [-2**30, 2**30). Returns the OR of all flags."""


@numba.njit(cache=True)
def window_workspace(m):  # pragma: no cover - compiled
    """The work arrays of :func:`window_product` on :class:`WindowMatrix` ``m``, made once
    for many products: ``(table, tracked, sums, flags)``, the activations as int16 (zeros
    past the vector, which no product writes) and per-group and per-lane arrays."""
    groups = m.group_ptr.size - 1
    return (
        np.zeros(m.columns + WINDOW, dtype=np.int16),
        np.empty(groups, dtype=np.uint8),
        np.empty(groups * LANES, dtype=np.int32),
        np.empty(groups * LANES, dtype=np.int32),
    )


@numba.njit(cache=True)
def window_product(m, x, work):  # pragma: no cover - compiled
    """:class:`WindowMatrix` ``m`` times one vector x [columns] (integer codes) into the
    first ``rows`` entries of ``work``'s sums (int32: the accumulators are 32-bit;
    ``work`` from :func:`window_workspace`); returns the clamp count (the integers and count
    of the saturating column-order sum).

    A group whose rows' L1 norms times max |x| fit 32 bits cannot clamp; any other is
    tracked by :func:`_window`, and a lane whose flag is clear is exact too. Each slot adds a
    pair of products (each under 2**30 in magnitude) to the biased lane; while every
    slot-boundary sum stays in [-2**30, 2**30), a partial sum after one more product stays
    under 2**31, so the saturating accumulator never clamps. The first boundary sum outside
    lies within 2**31 of the last inside, so its biased total shows the sign bit whether or
    not the int32 lane wrapped. A flagged row is summed with :func:`_row_product`."""
    table, tracked, sums, flags = work
    rows, groups = m.row_ptr.size - 1, m.group_ptr.size - 1
    if (
        x.size != m.columns
        or table.size != m.columns + WINDOW
        or tracked.size != groups
        or sums.size != groups * LANES
        or flags.size != groups * LANES
    ):  # the loops below trust these sizes
        raise ValueError("window_product: x or the work arrays do not fit the matrix")
    low = high = clamps = 0
    for j in range(x.size):  # one pass: the range of x, and x into the table
        low, high = min(low, x[j]), max(high, x[j])
        table[j] = x[j]
    if low < INT16_MIN or high > INT16_MAX or m.wmax > INT16_MAX:
        for r in range(rows):  # codes the lanes do not hold
            sums[r], k = _row_product(m.row_ptr, m.cols, m.vals, x, r)
            clamps += k
        return clamps
    limit = _l1_limit(max(high, -low))
    for g in range(groups):  # a group whose rows cannot clamp is not tracked
        tracked[g] = m.group_l1[g] > limit
    if _window(m.start, m.index, m.weight, table, m.group_ptr, tracked, sums, flags) < 0:
        for r in range(rows):  # some row is flagged (flagged rows are rare)
            if flags[r] < 0:
                sums[r], k = _row_product(m.row_ptr, m.cols, m.vals, x, r)
                clamps += k
    return clamps


@numba.njit(cache=True)
def window_vector_kernel(m, x, acc):  # pragma: no cover - compiled
    """:func:`window_product` into ``acc`` [rows] (any integer type), with work arrays of
    its own; returns the clamp count."""
    if x.size != m.columns or acc.size != m.row_ptr.size - 1:
        raise ValueError("window_vector_kernel: x or acc does not fit the matrix")
    work = window_workspace(m)
    clamps = window_product(m, x, work)
    sums = work[2]
    for r in range(acc.size):
        acc[r] = sums[r]
    return clamps


@numba.njit(cache=True)
def requantize_kernel(acc, shift, bits):  # pragma: no cover - compiled
    """:func:`~lstmforge.engine.fixed_point.requantize` in place (round half up, saturate to
    ``bits``); returns the number of clamped values."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    clamps = 0
    for r in range(acc.size):
        acc[r], k = _clamp(_shift_round(acc[r], shift), lo, hi)
        clamps += k
    return clamps


def _narrowest(bits: int) -> type:
    """The smallest signed NumPy integer type of at least ``bits`` bits (16 or 32)."""
    return np.int16 if bits <= 16 else np.int32


def _row_major(matrix: SparseMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-major nonzeros (row_ptr, cols, vals) and each row's L1 norm, cached on the matrix."""
    cached = matrix.cache.get("csr")
    if cached is None:
        dense = matrix.dense_codes()
        rows, cols = np.nonzero(dense)  # row-major: each row's columns ascending
        row_ptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=matrix.shape[0]), out=row_ptr[1:])
        row_l1 = np.abs(dense).sum(axis=1).astype(np.int64)
        values = dense[rows, cols]
        value_type = _narrowest(int(np.abs(values).max()).bit_length() + 1 if values.size else 1)
        col_type = _narrowest(max(matrix.shape[1], 1).bit_length() + 1)
        cached = (row_ptr, cols.astype(col_type), values.astype(value_type), row_l1)
        matrix.cache["csr"] = cached
    return cached


def _largest(vals: np.ndarray) -> int:
    """The largest |weight code| (0 for none): above INT16_MAX, the lanes cannot take them."""
    return int(np.abs(vals.astype(np.int64)).max(initial=0))


def _row_pairs(matrix: SparseMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Each row's nonzeros in pairs, in column order, for the CSR kernel: ``(pair_ptr,
    pair_cols, pair_weights)``, row r's pairs being ``pair_ptr[r] : pair_ptr[r + 1]``,
    ``pair_cols`` [pairs, 2] int32 their columns, ``pair_weights`` [pairs] int32 their two
    weights as int16 halves (the first in the low half); then the column count and the largest
    |weight|. A row of odd length ends with a pair whose second weight is 0 (on the first's
    column). Cached on the matrix; the weight words are meaningful where every weight fits
    int16."""
    cached = matrix.cache.get("pairs")
    if cached is None:
        row_ptr, cols, vals, _ = _row_major(matrix)
        lengths = np.diff(row_ptr)
        pair_ptr = np.zeros(row_ptr.size, dtype=np.int64)
        np.cumsum((lengths + 1) // 2, out=pair_ptr[1:])
        row = np.repeat(np.arange(lengths.size), (lengths + 1) // 2)
        first = row_ptr[row] + 2 * (np.arange(row.size) - pair_ptr[row])
        second = np.minimum(first + 1, row_ptr[row + 1] - 1)
        pair_cols = np.stack([cols[first], cols[second]], axis=1).astype(np.int32)
        low = vals[first].astype(np.int64) & 0xFFFF
        high = np.where(second > first, vals[second].astype(np.int64), 0) & 0xFFFF
        pair_weights = (low | (high << 16)).astype(np.uint32).view(np.int32)
        cached = (pair_ptr, pair_cols, pair_weights, matrix.shape[1], _largest(vals))
        matrix.cache["pairs"] = cached
    return cached


def window_layout(matrix: SparseMatrix) -> WindowMatrix:
    """The windowed copy of ``matrix`` (see :class:`WindowMatrix`), cached on the matrix."""
    cached = matrix.cache.get("windows")
    if cached is None:
        row_ptr, cols, vals, row_l1 = _row_major(matrix)
        groups = -(-matrix.shape[0] // LANES)
        group_l1 = np.zeros(groups * LANES, dtype=np.int64)
        group_l1[: matrix.shape[0]] = row_l1
        cached = WindowMatrix(
            *_window_slots(row_ptr, cols, vals),
            matrix.shape[1],
            _largest(vals),
            group_l1.reshape(groups, LANES).max(axis=1, initial=0),
            row_ptr,
            cols,
            vals,
            row_l1,
        )
        matrix.cache["windows"] = cached
    return cached


def _accumulate(matrix: SparseMatrix, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Accumulators [N, rows] of x [N, cols] int16, int32 or int64 (a view of one contiguous
    array) and the clamp count: the window kernel for each of a few vectors (the CSR kernel
    forms a whole chunk of CHUNK however few it holds), the CSR kernel for more (its
    accumulators as the transpose of a C-order [rows, N] array)."""
    if x.shape[0] < FEW_VECTORS:
        acc = np.empty((x.shape[0], matrix.shape[0]), dtype=np.int64)
        layout = window_layout(matrix)
        return acc, sum(window_vector_kernel(layout, v, out) for v, out in zip(x, acc, strict=True))
    row_ptr, cols, vals, row_l1 = _row_major(matrix)
    xt = np.ascontiguousarray(x.T)
    acc = np.empty((matrix.shape[0], x.shape[0]), dtype=np.int64).T  # stored a row at a time
    clamps = _csr_kernel(row_ptr, cols, vals, row_l1, _row_pairs(matrix), xt, acc)
    return acc, clamps


def _integer_codes(x) -> np.ndarray:
    """x as an integer array, in its own integer type (the kernels take int16 to int64),
    else as int64."""
    x = np.asarray(x)
    return x if x.dtype in (np.int16, np.int32, np.int64) else x.astype(np.int64)


def spmv_fast(
    matrix: SparseMatrix, x: np.ndarray, counter: SaturationCounter | None = None, site: str = ""
) -> np.ndarray:
    """Same integers as :func:`spmv_reference`, from a compiled kernel (for many vectors,
    the transpose of a C-order [rows, N] array)."""
    acc, clamps = _accumulate(matrix, _integer_codes(x))
    if counter is not None:
        counter.record(site, clamps)
    return acc


def spmv_fast_requantized(
    matrix: SparseMatrix,
    x: np.ndarray,
    shift: int,
    bits: int,
    counter: SaturationCounter,
    site: str,
    requantize_site: str,
) -> np.ndarray:
    """:func:`spmv_fast` followed by ``requantize`` (shift, then saturate to ``bits``), both
    compiled."""
    acc, clamps = _accumulate(matrix, _integer_codes(x))
    counter.record(site, clamps)
    counter.record(requantize_site, requantize_kernel(np.ravel(acc, order="K"), shift, bits))
    return acc


BACKENDS = {"reference": spmv_reference, "fast": spmv_fast}
