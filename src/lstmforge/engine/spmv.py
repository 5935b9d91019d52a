"""Sparse matrix times vectors on the integer datapath: the golden loop and a fast kernel.

Semantics (``docs/fixed-point.md``): every output row has its own 32-bit accumulator, starting
at 0; the products ``weight_code * activation_code`` (exact) are added in increasing column
order, and the accumulator saturates after every addition.

* :func:`spmv_reference` is the golden model, written as the PE does it: for each PE, walk
  each column's CSC entries (``pos += rel_index + 1``), padding entries included (they add 0).
* :func:`spmv_fast` computes the same integers with a numba kernel over a row-major copy of the
  nonzeros. Each row still sums its products in increasing column order, so the saturating
  accumulator gives identical results; when a row's worst case (sum of |w| times max |x|)
  cannot leave the 32-bit range, the kernel skips the saturation checks, which cannot then
  fire, and multiplies each weight into all vectors of the batch at once. A single vector
  (batch 1, the recurrent products) goes through :func:`_csr_vector_kernel`. The copy stores
  weights and column indices in the narrowest integer type that holds them (int16 for 12-bit
  weights), which halves the memory the gather loop streams through.
"""

from __future__ import annotations

import numba
import numpy as np

from lstmforge.compress.artifact import SparseMatrix
from lstmforge.engine.fixed_point import ACCUMULATOR_BITS, SaturationCounter, saturate

ACC_MAX = (1 << (ACCUMULATOR_BITS - 1)) - 1
ACC_MIN = -(1 << (ACCUMULATOR_BITS - 1))


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
def _row_product(row_ptr, cols, vals, xt, r, b):  # pragma: no cover - compiled
    """Row r times vector b: the saturating sum, and how many times it clamped."""
    s, bound = 0, 0
    for e in range(row_ptr[r], row_ptr[r + 1]):
        p = vals[e] * xt[cols[e], b]
        s += p
        bound += abs(p)
    if bound <= ACC_MAX:  # no partial sum left 32 bits: the plain sum is the saturating one
        return s, 0
    s, clamps = 0, 0
    for e in range(row_ptr[r], row_ptr[r + 1]):
        s += vals[e] * xt[cols[e], b]
        if s > ACC_MAX:
            s = ACC_MAX
            clamps += 1
        elif s < ACC_MIN:
            s = ACC_MIN
            clamps += 1
    return s, clamps


@numba.njit(cache=True)
def _csr_kernel(row_ptr, cols, vals, row_l1, xt):  # pragma: no cover - compiled
    rows, n = row_ptr.size - 1, xt.shape[1]
    acc = np.zeros((rows, n), dtype=np.int64)
    xmax = np.max(np.abs(xt)) if xt.size else 0
    clamps = 0
    for r in range(rows):
        if n > 1 and row_l1[r] * xmax <= ACC_MAX:  # one weight times all vectors (SIMD)
            for e in range(row_ptr[r], row_ptr[r + 1]):
                v, xc = vals[e], xt[cols[e]]
                for b in range(n):
                    acc[r, b] += v * xc[b]
        else:
            for b in range(n):
                acc[r, b], c = _row_product(row_ptr, cols, vals, xt, r, b)
                clamps += c
    return acc, clamps


@numba.njit(cache=True)
def _csr_vector_kernel(row_ptr, cols, vals, row_l1, x):  # pragma: no cover - compiled
    """:func:`_csr_kernel` for one vector x [cols]: accumulators [rows] and the clamp count."""
    rows = row_ptr.size - 1
    acc = np.empty(rows, dtype=np.int64)
    xmax = np.max(np.abs(x)) if x.size else 0
    clamps = 0
    for r in range(rows):
        s = 0
        if row_l1[r] * xmax <= ACC_MAX:  # no partial sum can leave 32 bits
            for e in range(row_ptr[r], row_ptr[r + 1]):
                s += np.int64(vals[e]) * x[cols[e]]
        else:  # the exact bound (sum of |products|) first; saturate only if it is exceeded
            bound = 0
            for e in range(row_ptr[r], row_ptr[r + 1]):
                p = np.int64(vals[e]) * x[cols[e]]
                s += p
                bound += abs(p)
            if bound <= ACC_MAX:
                acc[r] = s
                continue
            s = 0
            for e in range(row_ptr[r], row_ptr[r + 1]):
                s += np.int64(vals[e]) * x[cols[e]]
                if s > ACC_MAX:
                    s = ACC_MAX
                    clamps += 1
                elif s < ACC_MIN:
                    s = ACC_MIN
                    clamps += 1
        acc[r] = s
    return acc, clamps


@numba.njit(cache=True)
def _requantize_kernel(acc, shift, bits):  # pragma: no cover - compiled
    """:func:`~lstmforge.engine.fixed_point.requantize` in place (round half up, saturate to
    ``bits``); returns the number of clamped values."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    clamps = 0
    for r in range(acc.size):
        if shift > 0:
            v = (acc[r] + (1 << (shift - 1))) >> shift
        else:
            v = acc[r] << (-shift)
        if v > hi:
            v = hi
            clamps += 1
        elif v < lo:
            v = lo
            clamps += 1
        acc[r] = v
    return clamps


def _narrowest(bits: int) -> type:
    """The smallest signed NumPy integer type of at least ``bits`` bits (16, 32 or 64)."""
    return np.int16 if bits <= 16 else np.int32 if bits <= 32 else np.int64


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


def spmv_fast(
    matrix: SparseMatrix, x: np.ndarray, counter: SaturationCounter | None = None, site: str = ""
) -> np.ndarray:
    """Same integers as :func:`spmv_reference`, from a compiled kernel."""
    row_ptr, cols, vals, row_l1 = _row_major(matrix)
    x = np.asarray(x, dtype=np.int64)
    if x.shape[0] == 1:
        acc, clamps = _csr_vector_kernel(row_ptr, cols, vals, row_l1, x[0])
        acc = acc[None, :]
    else:
        xt = np.ascontiguousarray(x.T)  # [cols, N]
        acc, clamps = _csr_kernel(row_ptr, cols, vals, row_l1, xt)
        acc = acc.T
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
) -> np.ndarray | None:
    """:func:`spmv_fast` of one vector x [1, cols] followed by ``requantize`` (shift, then
    saturate to ``bits``), both compiled; None for a batch of several vectors."""
    if x.shape[0] != 1:
        return None
    row_ptr, cols, vals, row_l1 = _row_major(matrix)
    acc, clamps = _csr_vector_kernel(row_ptr, cols, vals, row_l1, np.asarray(x[0], np.int64))
    counter.record(site, clamps)
    counter.record(requantize_site, _requantize_kernel(acc, shift, bits))
    return acc[None, :]


BACKENDS = {"reference": spmv_reference, "fast": spmv_fast}
