"""Sparse matrix times vectors on the integer datapath: the golden loop and fast kernels.

Semantics (``docs/fixed-point.md``): every output row has its own 32-bit accumulator, starting
at 0; the products ``weight_code * activation_code`` (exact) are added in increasing column
order, and the accumulator saturates after every addition.

* :func:`spmv_reference` is the golden model, written as the PE does it: for each PE, walk
  each column's CSC entries (``pos += rel_index + 1``), padding entries included (they add 0).
* :func:`spmv_fast` computes the same integers with numba kernels. A row whose worst case
  (its L1 norm times max |x|, or a bound on its sum of |products|) cannot leave the 32-bit range
  can never saturate, so its sum may be formed in any order; any other row is summed in
  increasing column order with the saturating accumulator (:func:`_row_saturating`), which
  gives identical results and clamp counts.
* One vector (batch 1, the recurrent products) goes through :func:`sell_vector_kernel` on a
  SELL-C-σ copy of the matrix (Kreutzer et al., "A unified sparse matrix data format for
  efficient general sparse matrix-vector multiplication on modern processors with wide SIMD
  units", SIAM J. Sci. Comput. 36(5), 2014): rows sorted by length (σ = all rows), cut into
  chunks of C = 8, each chunk padded to its longest row and stored column-major, so one step
  of a chunk is 8 weights times 8 gathered activations, multiplied and summed in int32 lanes
  (AVX2 ``vpgatherdd``/``vpmulld`` where the host has it, :func:`_chunk_lanes`) together
  with a bound on each row's sum of |products|. A row whose bound could leave 32 bits is
  summed again in column order with the saturating accumulator.
* Several vectors go through :func:`_csr_kernel` on a row-major (CSR) copy, multiplying each
  weight into all vectors at once.

Both copies store weights and column indices in the narrowest integer type that holds them
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
BOUND_SHIFT = 16  # bound lanes sum |product| >> 16, so that they stay in int32
ACC_MIN = -(1 << (ACCUMULATOR_BITS - 1))
CHUNK = 8  # SELL-C-σ chunk height C: one AVX2 register of int32 lanes


@numba.njit(inline="always")
def _clamp(v, lo, hi):  # pragma: no cover - compiled
    """:func:`~lstmforge.engine.fixed_point.saturate` on one integer: ``(value, 1 if clamped
    else 0)``, without branches (min/max and a compare)."""
    clamped = min(max(v, lo), hi)
    return clamped, np.int64(clamped != v)


@numba.njit(inline="always")
def _shift_round(x, shift):  # pragma: no cover - compiled
    """:func:`~lstmforge.engine.fixed_point.shift_round` on one integer."""
    if shift > 0:
        return (x + (1 << (shift - 1))) >> shift
    return x << (-shift)


def spmv_reference(
    matrix: SparseMatrix, x: np.ndarray, counter: SaturationCounter | None = None, site: str = ""
) -> np.ndarray:
    """Golden per-PE CSC loop: x [N, cols] int64 codes -> accumulators [N, rows] int64."""
    num_pes = matrix.num_pes
    acc = np.zeros((x.shape[0], matrix.shape[0]), dtype=np.int64)
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
def _product_fits(a, b):  # pragma: no cover - compiled
    """a * b <= ACC_MAX for a, b >= 0, without forming a * b (it could wrap int64)."""
    return a == 0 or b <= ACC_MAX // a


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


@numba.njit(cache=True)
def _csr_kernel(row_ptr, cols, vals, row_l1, xt):  # pragma: no cover - compiled
    """CSR matrix times the vectors xt [cols, N]: accumulators [rows, N] and the clamp count.

    Each row is formed one weight times all vectors in int32 lanes (``vpmulld``; AVX2 has no
    64-bit multiply). A row whose L1 norm times max |x| fits the accumulator cannot clamp;
    for the others each lane also sums ``|product| >> 16``, a bound on that vector's sum of
    |products| (as the SELL kernel does), and only a vector whose bound could leave 32 bits
    is summed again in column order with the saturating accumulator. Products that may not
    fit int32 (weights or inputs wider than 16 bits) go that way at once."""
    rows, n = row_ptr.size - 1, xt.shape[1]
    acc = np.zeros((rows, n), dtype=np.int64)
    xmax = np.max(np.abs(xt)) if xt.size else 0
    vmax = np.max(np.abs(vals.astype(np.int64))) if vals.size else 0
    lanes = _product_fits(vmax, xmax)  # every product fits int32
    x32 = xt.astype(np.int32) if lanes else np.zeros((0, n), dtype=np.int32)
    line = np.zeros(n, dtype=np.int32)
    bound = np.zeros(n, dtype=np.int32)
    clamps = 0
    for r in range(rows):
        length = row_ptr[r + 1] - row_ptr[r]
        if not lanes or length >= 1 << 15:  # bound lanes could overflow: exact path
            for b in range(n):
                acc[r, b], k = _row_product(row_ptr, cols, vals, xt[:, b], r)
                clamps += k
            continue
        line[:] = 0
        if _product_fits(row_l1[r], xmax):  # no partial sum can clamp
            for e in range(row_ptr[r], row_ptr[r + 1]):
                v, xc = np.int32(vals[e]), x32[cols[e]]
                for b in range(n):
                    line[b] += v * xc[b]
            for b in range(n):
                acc[r, b] = line[b]
            continue
        bound[:] = 0
        for e in range(row_ptr[r], row_ptr[r + 1]):
            v, xc = np.int32(vals[e]), x32[cols[e]]
            for b in range(n):
                product = np.int32(v * xc[b])
                line[b] += product
                bound[b] += np.int32(abs(product)) >> BOUND_SHIFT
        for b in range(n):
            # sum |p| < sum((|p| >> 16) + 1) << 16: within 32 bits, no partial sum clamped
            if (np.int64(bound[b]) + length) << BOUND_SHIFT <= ACC_MAX:
                acc[r, b] = line[b]
            else:
                acc[r, b], k = _row_product(row_ptr, cols, vals, xt[:, b], r)
                clamps += k
    return acc, clamps


_I32X8 = ir.VectorType(ir.IntType(32), CHUNK)


@intrinsic
def _chunk_lanes_avx2(typingctx, vals, cols, x, start, width, sums, bounds):  # pragma: no cover
    """AVX2 body of :func:`_chunk_lanes`: per step one ``vpgatherdd`` of x[cols], the weights
    sign-extended to int32, ``vpmulld``, ``vpaddd`` into the sums and ``vpabsd``,
    ``vpsrld``, ``vpaddd`` into the bounds."""

    def codegen(context, builder, signature, args):
        vals_a, cols_a, x_a, sums_a, bounds_a = (
            context.make_array(signature.args[i])(context, builder, args[i])
            for i in (0, 1, 2, 5, 6)
        )
        start, width = args[3], args[4]
        i8p = ir.IntType(8).as_pointer()
        gather = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(_I32X8, [_I32X8, i8p, _I32X8, _I32X8, ir.IntType(8)]),
            "llvm.x86.avx2.gather.d.d.256",
        )
        absolute = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_I32X8, [_I32X8, ir.IntType(1)]), "llvm.abs.v8i32"
        )
        zero, all_lanes = ir.Constant(_I32X8, None), ir.Constant(_I32X8, [-1] * CHUNK)
        shift = ir.Constant(_I32X8, [BOUND_SHIFT] * CHUNK)
        base = builder.bitcast(x_a.data, i8p)
        total = cgutils.alloca_once_value(builder, zero)
        bound = cgutils.alloca_once_value(builder, zero)

        def load_lanes(array, dtype, offset):
            vector = ir.VectorType(ir.IntType(dtype.bitwidth), CHUNK)
            pointer = builder.bitcast(builder.gep(array.data, [offset]), vector.as_pointer())
            value = builder.load(pointer, align=1)
            return value if dtype.bitwidth == 32 else builder.sext(value, _I32X8)

        with cgutils.for_range(builder, width) as loop:
            offset = builder.add(start, builder.mul(loop.index, ir.Constant(start.type, CHUNK)))
            w = load_lanes(vals_a, signature.args[0].dtype, offset)
            index = load_lanes(cols_a, signature.args[1].dtype, offset)
            xs = builder.call(gather, [zero, base, index, all_lanes, ir.Constant(ir.IntType(8), 4)])
            product = builder.mul(w, xs)
            builder.store(builder.add(builder.load(total), product), total)
            magnitude = builder.call(absolute, [product, ir.Constant(ir.IntType(1), 0)])
            high = builder.lshr(magnitude, shift)
            builder.store(builder.add(builder.load(bound), high), bound)
        for array, value in ((sums_a, total), (bounds_a, bound)):
            pointer = builder.bitcast(array.data, _I32X8.as_pointer())
            builder.store(builder.load(value), pointer, align=4)
        return context.get_dummy_value()

    return types.void(vals, cols, x, start, width, sums, bounds), codegen


@numba.njit(cache=True)
def _chunk_lanes_portable(vals, cols, x, start, width, sums, bounds):  # pragma: no cover
    """Plain-loop body of :func:`_chunk_lanes` (any CPU)."""
    sums[:] = 0
    bounds[:] = 0
    for k in range(width):
        base = start + k * CHUNK
        for lane in range(CHUNK):
            p = np.int32(vals[base + lane]) * x[cols[base + lane]]
            sums[lane] += p
            bounds[lane] += abs(p) >> BOUND_SHIFT


def _host_has_avx2() -> bool:
    """Whether numba compiles for this host and the host has AVX2 (``vpgatherdd``)."""
    if numba.config.CPU_NAME or not llvmlite.binding.get_process_triple().startswith("x86_64"):
        return False
    return bool(llvmlite.binding.get_host_cpu_features().get("avx2", False))


_chunk_lanes = _chunk_lanes_avx2 if _host_has_avx2() else _chunk_lanes_portable
"""``_chunk_lanes(vals, cols, x, start, width, sums, bounds)``: one SELL chunk, the entries
``vals/cols[start : start + CHUNK * width]`` (column-major, lane = row of the chunk), times the
int32 vector x: each row's sum of products and its sum of ``|product| >> BOUND_SHIFT`` (int32,
CHUNK long each). Callers guarantee that every product fits int32 (max |w| times max |x|
within 32 bits). A row of n entries has sum of |products| < ``(bound + n) << BOUND_SHIFT``;
when that is within 32 bits, no partial sum left 32 bits and the int32 sum is exact."""


class SellMatrix(NamedTuple):
    """A matrix in SELL-C-σ layout (C = :data:`CHUNK`, rows sorted by length), plus the CSR
    copy the saturating fallback walks. Chunk q holds the rows ``perm[q*C : (q+1)*C]``; its
    entries are ``vals/cols[chunk_ptr[q] : chunk_ptr[q+1]]``, entry k of lane l at
    ``chunk_ptr[q] + k*C + l`` (padding: weight 0, column 0)."""

    chunk_ptr: np.ndarray  # int64 [chunks + 1]
    vals: np.ndarray  # int16/int32 weight codes
    cols: np.ndarray  # int16/int32 column indices
    perm: np.ndarray  # int64 [rows]: the row held by each chunk slot
    wmax: int  # the largest |weight|
    row_ptr: np.ndarray  # CSR copy: int64 [rows + 1]
    csr_cols: np.ndarray
    csr_vals: np.ndarray


@numba.njit(cache=True)
def sell_vector_kernel(m, x):  # pragma: no cover - compiled
    """SELL matrix ``m`` times one vector x [cols] int64: accumulators [rows] int64 and the
    clamp count (same integers and count as the saturating column-order sum)."""
    rows, chunks = m.perm.size, m.chunk_ptr.size - 1
    acc = np.empty(rows, dtype=np.int64)
    xmax = np.max(np.abs(x)) if x.size else 0
    clamps = 0
    longest = (m.chunk_ptr[1] - m.chunk_ptr[0]) // CHUNK if chunks else 0  # sorted: first
    if not _product_fits(m.wmax, xmax) or longest >= 1 << (31 - BOUND_SHIFT):
        # a product or a lane's bound may not fit int32: every row on the exact path
        for r in range(rows):
            acc[r], k = _row_product(m.row_ptr, m.csr_cols, m.csr_vals, x, r)
            clamps += k
        return acc, clamps
    x32 = x.astype(np.int32)
    sums = np.empty(CHUNK, dtype=np.int32)
    bounds = np.empty(CHUNK, dtype=np.int32)
    for q in range(chunks):
        width = (m.chunk_ptr[q + 1] - m.chunk_ptr[q]) // CHUNK
        _chunk_lanes(m.vals, m.cols, x32, m.chunk_ptr[q], width, sums, bounds)
        for slot in range(q * CHUNK, min((q + 1) * CHUNK, rows)):
            r, lane = m.perm[slot], slot - q * CHUNK
            entries = m.row_ptr[r + 1] - m.row_ptr[r]
            if (np.int64(bounds[lane]) + entries) << BOUND_SHIFT <= ACC_MAX:  # cannot clamp
                acc[r] = sums[lane]
            else:
                acc[r], k = _row_saturating(m.row_ptr, m.csr_cols, m.csr_vals, x, r)
                clamps += k
    return acc, clamps


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


def sell_layout(matrix: SparseMatrix) -> SellMatrix:
    """The SELL-C-σ copy of ``matrix`` (see :class:`SellMatrix`), cached on the matrix."""
    cached = matrix.cache.get("sell")
    if cached is None:
        row_ptr, cols, vals, _ = _row_major(matrix)
        rows = matrix.shape[0]
        lengths = np.diff(row_ptr)
        perm = np.argsort(-lengths, kind="stable")  # σ = all rows: longest first
        chunks = -(-rows // CHUNK)
        widths = np.zeros(chunks * CHUNK, dtype=np.int64)
        widths[:rows] = lengths[perm]
        chunk_ptr = np.zeros(chunks + 1, dtype=np.int64)
        np.cumsum(CHUNK * widths.reshape(chunks, CHUNK).max(axis=1, initial=0), out=chunk_ptr[1:])
        slot = np.empty(rows, dtype=np.int64)
        slot[perm] = np.arange(rows)
        row_of_entry = np.repeat(np.arange(rows), lengths)
        k = np.arange(row_ptr[-1]) - row_ptr[row_of_entry]  # entry's position within its row
        where = chunk_ptr[slot[row_of_entry] // CHUNK] + k * CHUNK + slot[row_of_entry] % CHUNK
        sell_vals = np.zeros(chunk_ptr[-1], dtype=vals.dtype)
        sell_cols = np.zeros(chunk_ptr[-1], dtype=cols.dtype)
        sell_vals[where], sell_cols[where] = vals, cols
        cached = SellMatrix(
            chunk_ptr,
            sell_vals,
            sell_cols,
            perm.astype(np.int64),
            int(np.abs(vals.astype(np.int64)).max(initial=0)),
            row_ptr,
            cols,
            vals,
        )
        matrix.cache["sell"] = cached
    return cached


def _accumulate(matrix: SparseMatrix, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Accumulators [N, rows] of x [N, cols] int64 (a view of one contiguous array) and the
    clamp count: the SELL kernel for one vector, the CSR kernel for several."""
    if x.shape[0] == 1:
        acc, clamps = sell_vector_kernel(sell_layout(matrix), x[0])
        return acc[None, :], clamps
    row_ptr, cols, vals, row_l1 = _row_major(matrix)
    acc, clamps = _csr_kernel(row_ptr, cols, vals, row_l1, np.ascontiguousarray(x.T))
    return acc.T, clamps


def spmv_fast(
    matrix: SparseMatrix, x: np.ndarray, counter: SaturationCounter | None = None, site: str = ""
) -> np.ndarray:
    """Same integers as :func:`spmv_reference`, from a compiled kernel."""
    acc, clamps = _accumulate(matrix, np.asarray(x, dtype=np.int64))
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
    acc, clamps = _accumulate(matrix, np.asarray(x, dtype=np.int64))
    counter.record(site, clamps)
    counter.record(requantize_site, requantize_kernel(np.ravel(acc, order="K"), shift, bits))
    return acc


BACKENDS = {"reference": spmv_reference, "fast": spmv_fast}
