"""Sparse matrix times vectors on the integer datapath: the golden loop and fast kernels.

Semantics (``docs/fixed-point.md``): every output row has its own 32-bit accumulator, starting
at 0; the products ``weight_code * activation_code`` (exact) are added in increasing column
order, and the accumulator saturates after every addition.

* :func:`spmv_reference` is the golden model, written as the PE does it: for each PE, walk
  each column's CSC entries (``pos += rel_index + 1``), padding entries included (they add 0).
* :func:`spmv_fast` computes the same integers with numba kernels. A row whose worst case
  (its L1 norm times max |x|, or a bound on its sum of |products|) cannot leave the 32-bit range
  can never saturate, so its sum may be formed in any order; any other row goes to
  :func:`_row_product` (the exact bound, and if it could leave 32 bits the sum in increasing
  column order with the saturating accumulator, :func:`_row_saturating`), which gives
  identical results and clamp counts.
* One vector (batch 1, the recurrent products) goes through :func:`tile_vector_kernel` on a
  tiled copy of the matrix (:class:`TileMatrix`). Gathering an activation per stored weight
  (``vpgatherdd``) costs about 1.3 cycles per weight on the machines we measured
  (docs/benchmarks.md); here the activations come from a register instead. The matrix is cut
  into groups of :data:`LANES` rows and blocks of :data:`BLOCK` columns, and the 8 activations
  of a block (16 bytes of int16 codes) are the table of one ``vpshufb`` indexed by column
  offsets within the block: ESE's idea of short relative indices into a local window of the
  input (Han et al., FPGA 2017, §4). The nonzeros of one (row group, column block) tile are
  stored as *pair slots*: in pair slot k, lane l (row ``8 g + l``) holds the lane's nonzeros
  2k and 2k + 1 of that tile, their weights ``[w, w']`` (int16) and the byte indices of their
  activations in the block's table, ``[2c, 2c + 1, 2c', 2c' + 1]``; a tile has as many pair
  slots as half its longest row, rounded up, and missing entries are weight 0. One step is a
  ``vbroadcasti128`` of the block's activations, a ``vpshufb`` that picks each lane's two,
  and a ``vpmaddwd`` that adds both products into the lane's int32 accumulator
  (:func:`_group`). A row whose L1 norm times max |x| fits 32 bits is taken from the tiles as
  it is; in a group with any other row, the lanes also sum |w| times |x| (shifted right just
  enough to stay in 32 bits) in the same way, a bound on each row's sum of |products|, and a
  row whose bound could leave 32 bits is summed with :func:`_row_product`, as is every row
  when an activation code does not fit int16 or the matrix holds a weight code of -32768
  (whose square ``vpmaddwd`` cannot add twice).
* Several vectors go through :func:`_csr_kernel` on a row-major (CSR) copy, multiplying each
  weight into all vectors at once.

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
BOUND_SHIFT = 16  # bound lanes sum |product| >> 16, so that they stay in int32
ACC_MIN = -(1 << (ACCUMULATOR_BITS - 1))
LANES = 8  # rows per tile group: the int32 lanes of one AVX2 register
BLOCK = 8  # columns per tile block: 8 int16 activations, one 16-byte vpshufb table
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
    |products|, and only a vector whose bound could leave 32 bits
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


def _host_has_avx2() -> bool:
    """Whether numba compiles for this host and the host has AVX2 (``vpshufb`` on 256 bits)."""
    if numba.config.CPU_NAME or not llvmlite.binding.get_process_triple().startswith("x86_64"):
        return False
    return bool(llvmlite.binding.get_host_cpu_features().get("avx2", False))


class TileMatrix(NamedTuple):
    """A matrix in tiles of pair slots (see the module docstring), plus the CSR copy for the
    exact path. Group g's pair slots are ``group_ptr[g] : group_ptr[g + 1]``."""

    group_ptr: np.ndarray  # int64 [groups + 1]
    block: np.ndarray  # int16/int32 [slots]: the column block of each pair slot
    index: np.ndarray  # uint8 [slots, 4 * LANES]: vpshufb byte indices
    weight: np.ndarray  # int16 [slots, 2 * LANES]: the pairs of weights
    columns: int  # the length of the vector it multiplies
    wmax: int  # the largest |weight|
    group_l1: np.ndarray  # int64 [groups]: the largest row L1 norm of each group
    row_ptr: np.ndarray  # CSR copy: int64 [rows + 1]
    cols: np.ndarray
    vals: np.ndarray
    row_l1: np.ndarray  # int64 [rows]: each row's sum of |weight|


_I8X16 = ir.VectorType(ir.IntType(8), 16)
_I8X32 = ir.VectorType(ir.IntType(8), 32)
_I16X16 = ir.VectorType(ir.IntType(16), 16)
_I32X8 = ir.VectorType(ir.IntType(32), LANES)


def _group_codegen(bounded: bool):
    """LLVM IR of the AVX2 group loop: per pair slot ``vbroadcasti128`` of the block's
    activations, ``vpshufb``, ``vpmaddwd``, ``vpaddd``; ``bounded`` adds the same on the
    magnitudes (``vpabsw`` of the weights) into the bound lanes."""

    def codegen(context, builder, signature, args):
        arrays = [
            context.make_array(signature.args[i])(context, builder, args[i])
            for i in (0, 1, 2, 3, 4, 7, 8)
        ]
        block_a, index_a, weight_a, table_a, magnitude_a, sums_a, bounds_a = arrays
        start, stop = args[5], args[6]
        shuffle = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_I8X32, [_I8X32, _I8X32]), "llvm.x86.avx2.pshuf.b"
        )
        multiply_add = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(_I32X8, [_I16X16, _I16X16]),
            "llvm.x86.avx2.pmadd.wd",
        )
        absolute = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_I16X16, [_I16X16, ir.IntType(1)]), "llvm.abs.v16i16"
        )
        i8p = ir.IntType(8).as_pointer()
        both_halves = ir.Constant(ir.VectorType(ir.IntType(32), 32), list(range(16)) * 2)
        total = cgutils.alloca_once_value(builder, ir.Constant(_I32X8, None))
        bound = cgutils.alloca_once_value(builder, ir.Constant(_I32X8, None))

        def lookup(array, b, indices):  # the block's 8 int16 codes, picked per lane
            row = builder.gep(builder.bitcast(array.data, i8p), [b])
            window = builder.load(builder.bitcast(row, _I8X16.as_pointer()), align=1)
            table = builder.shuffle_vector(window, window, both_halves)
            return builder.bitcast(builder.call(shuffle, [table, indices]), _I16X16)

        def vector_at(array, offset, vector):
            pointer = builder.gep(builder.bitcast(array.data, i8p), [offset])
            return builder.load(builder.bitcast(pointer, vector.as_pointer()), align=1)

        one = ir.Constant(start.type, 1)
        with cgutils.for_range_slice(builder, start, stop, one, inc=True) as (s, _):
            b = builder.sext(builder.load(builder.gep(block_a.data, [s])), s.type)
            b = builder.mul(b, ir.Constant(s.type, 2 * BLOCK))  # byte offset of the block
            offset = builder.mul(s, ir.Constant(s.type, 32))
            indices = vector_at(index_a, offset, _I8X32)
            weights = vector_at(weight_a, offset, _I16X16)
            pair_sums = builder.call(multiply_add, [lookup(table_a, b, indices), weights])
            builder.store(builder.add(builder.load(total), pair_sums), total)
            if bounded:
                magnitudes = builder.call(absolute, [weights, ir.Constant(ir.IntType(1), 0)])
                high = builder.call(multiply_add, [lookup(magnitude_a, b, indices), magnitudes])
                builder.store(builder.add(builder.load(bound), high), bound)
        for array, value in ((sums_a, total), (bounds_a, bound)):
            pointer = builder.bitcast(array.data, _I32X8.as_pointer())
            builder.store(builder.load(value), pointer, align=4)
        return context.get_dummy_value()

    return codegen


def _group_intrinsic(bounded: bool):
    """A numba intrinsic ``(block, index, weight, table, magnitude, start, stop, sums,
    bounds)`` running :func:`_group_codegen`."""

    def typer(typingctx, block, index, weight, table, magnitude, start, stop, sums, bounds):
        arguments = (block, index, weight, table, magnitude, start, stop, sums, bounds)
        return types.void(*arguments), _group_codegen(bounded)

    return intrinsic(typer)


@numba.njit(cache=True)
def _group_portable(block, index, weight, table, magnitude, start, stop, sums, bounds):
    """Plain-loop body of :func:`_group` and :func:`_group_bounded` (any CPU); the bounds
    only where ``magnitude`` is given (not empty)."""
    sums[:] = 0
    bounds[:] = 0
    bounded = magnitude.size > 0
    for s in range(start, stop):
        base = np.int64(block[s]) * BLOCK
        for lane in range(LANES):
            for half in range(2):
                column = base + (index[s, 4 * lane + 2 * half] >> 1)
                w = np.int32(weight[s, 2 * lane + half])
                sums[lane] += w * table[column]
                if bounded:
                    bounds[lane] += abs(w) * magnitude[column]


if _host_has_avx2():
    _group, _group_bounded = _group_intrinsic(False), _group_intrinsic(True)
else:
    _group = _group_bounded = _group_portable
"""``_group(block, index, weight, table, magnitude, start, stop, sums, bounds)``: the pair
slots ``start:stop`` of one row group times the activations ``table`` (int16, BLOCK per
column block, zero-padded): each lane's int32 sum into ``sums`` [LANES]. ``_group_bounded``
also sums ``|w| * magnitude[c]`` into ``bounds`` (``magnitude``: |x| >> s, so that with the
row's L1 norm, ``(bound + L1) << s`` bounds the row's sum of |products|). Callers guarantee
that the bound lanes stay in 32 bits, and take a sum lane only where it cannot have left them
(the static bound, or the row's bound)."""


@numba.njit(cache=True)
def tile_vector_kernel(m, x):  # pragma: no cover - compiled
    """:class:`TileMatrix` ``m`` times one vector x [columns] int64: accumulators [rows] int64
    and the clamp count (the integers and count of the saturating column-order sum).

    A group whose rows' L1 norms times max |x| fit 32 bits runs :func:`_group`; any other runs
    :func:`_group_bounded`, whose bound with s the smallest shift that keeps the bound lanes in
    32 bits (``max L1 * (max|x| >> s)``) clears most rows; a row it does not clear is summed
    with :func:`_row_product`."""
    rows, groups = m.row_ptr.size - 1, m.group_ptr.size - 1
    acc = np.empty(rows, dtype=np.int64)
    xmax = np.max(np.abs(x)) if x.size else 0
    clamps = 0
    if x.size and (np.max(x) > INT16_MAX or np.min(x) < INT16_MIN) or m.wmax > INT16_MAX:
        for r in range(rows):  # codes the lanes do not hold
            acc[r], k = _row_product(m.row_ptr, m.cols, m.vals, x, r)
            clamps += k
        return acc, clamps
    limit = ACC_MAX // xmax if xmax else 1 << 62  # row_l1 <= limit: the row cannot clamp
    shift, l1_max = 0, np.max(m.group_l1) if groups else 0
    while (xmax >> shift) > INT16_MAX or l1_max * (xmax >> shift) > ACC_MAX:
        shift += 1
    padded = -(-m.columns // BLOCK) * BLOCK
    table = np.zeros(padded, dtype=np.int16)
    table[: m.columns] = x[: m.columns]
    magnitude = np.zeros(padded if l1_max > limit else 0, dtype=np.int16)  # bounded groups only
    if magnitude.size:
        for j in range(m.columns):
            magnitude[j] = abs(x[j]) >> shift
    sums = np.empty(LANES, dtype=np.int32)
    bounds = np.zeros(LANES, dtype=np.int32)
    for g in range(groups):
        start, stop = m.group_ptr[g], m.group_ptr[g + 1]
        static = m.group_l1[g] <= limit
        if static:
            _group(m.block, m.index, m.weight, table, magnitude, start, stop, sums, bounds)
        else:
            _group_bounded(m.block, m.index, m.weight, table, magnitude, start, stop, sums, bounds)
        for lane in range(min(LANES, rows - g * LANES)):
            r = g * LANES + lane
            # static: L1 norm times max |x| fits; else sum |p| <= (bound + L1) << shift fits
            if static or (np.int64(bounds[lane]) + m.row_l1[r]) << shift <= ACC_MAX:
                acc[r] = sums[lane]
            else:
                acc[r], k = _row_product(m.row_ptr, m.cols, m.vals, x, r)
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


def tile_layout(matrix: SparseMatrix) -> TileMatrix:
    """The tiled copy of ``matrix`` (see :class:`TileMatrix`), cached on the matrix."""
    cached = matrix.cache.get("tiles")
    if cached is not None:
        return cached
    row_ptr, cols, vals, row_l1 = _row_major(matrix)
    rows, columns = matrix.shape
    groups, blocks = -(-rows // LANES), -(-columns // BLOCK)
    row = np.repeat(np.arange(rows), np.diff(row_ptr))
    col = cols.astype(np.int64)
    lane, block = row % LANES, col // BLOCK
    tile = (row // LANES) * blocks + block  # row-major over (group, block)
    # entry's rank within its (row, block) run: entries are sorted by row, then column
    run = row * blocks + block
    first = np.ones(run.size, dtype=bool)
    first[1:] = run[1:] != run[:-1]
    position = np.arange(run.size)
    rank = position - np.maximum.accumulate(np.where(first, position, 0))
    per_lane = np.bincount(tile * LANES + lane, minlength=groups * blocks * LANES)
    pairs = (per_lane.reshape(groups * blocks, LANES).max(axis=1) + 1) // 2
    tile_start = np.zeros(groups * blocks + 1, dtype=np.int64)
    np.cumsum(pairs, out=tile_start[1:])
    slots = int(tile_start[-1])
    slot, half = tile_start[tile] + rank // 2, rank % 2
    weight = np.zeros((slots, 2 * LANES), dtype=np.int16)
    index = np.zeros((slots, 4 * LANES), dtype=np.uint8)
    weight[slot, 2 * lane + half] = vals  # codes of at most 16 bits (the CSC encoding's rule)
    offset = 2 * (col % BLOCK)
    index[slot, 4 * lane + 2 * half] = offset
    index[slot, 4 * lane + 2 * half + 1] = offset + 1
    group_ptr = tile_start[::blocks] if blocks else np.zeros(groups + 1, dtype=np.int64)
    block_type = np.int16 if blocks <= INT16_MAX else np.int32
    slot_block = np.repeat(np.tile(np.arange(blocks), groups), pairs).astype(block_type)
    group_l1 = np.zeros(groups * LANES, dtype=np.int64)
    group_l1[:rows] = row_l1
    cached = TileMatrix(
        np.ascontiguousarray(group_ptr, dtype=np.int64),
        slot_block,
        index,
        weight,
        columns,
        int(np.abs(vals.astype(np.int64)).max(initial=0)),
        group_l1.reshape(groups, LANES).max(axis=1, initial=0),
        row_ptr,
        cols,
        vals,
        row_l1,
    )
    matrix.cache["tiles"] = cached
    return cached


def _accumulate(matrix: SparseMatrix, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Accumulators [N, rows] of x [N, cols] int64 (a view of one contiguous array) and the
    clamp count: the tile kernel for one vector, the CSR kernel for several."""
    if x.shape[0] == 1:
        acc, clamps = tile_vector_kernel(tile_layout(matrix), x[0])
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
