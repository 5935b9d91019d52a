"""Sparse matrix times vectors on the integer datapath: the golden loop and a fast kernel.

Semantics (``docs/fixed-point.md``): every output row has its own 32-bit accumulator, starting
at 0; the products ``weight_code * activation_code`` (exact) are added in increasing column
order, and the accumulator saturates after every addition.

* :func:`spmv_reference` is the golden model, written as the PE does it: for each PE, walk
  each column's CSC entries (``pos += rel_index + 1``), padding entries included (they add 0).
* :func:`spmv_fast` computes the same integers with a numba kernel over a row-major copy of the
  nonzeros. Each row still sums its products in increasing column order, so the saturating
  accumulator gives identical results; when a row's worst case (sum of |w| times max |x|)
  cannot leave the 32-bit range, the kernel skips the saturation checks, which cannot then fire.
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
def _csr_kernel(row_ptr, cols, vals, x, saturating):  # pragma: no cover - compiled
    n, rows = x.shape[0], row_ptr.size - 1
    acc = np.zeros((n, rows), dtype=np.int64)
    clamps = 0
    for b in range(n):
        xb = x[b]
        for r in range(rows):
            s = 0
            if saturating:
                for e in range(row_ptr[r], row_ptr[r + 1]):
                    s += vals[e] * xb[cols[e]]
                    if s > ACC_MAX:
                        s = ACC_MAX
                        clamps += 1
                    elif s < ACC_MIN:
                        s = ACC_MIN
                        clamps += 1
            else:
                for e in range(row_ptr[r], row_ptr[r + 1]):
                    s += vals[e] * xb[cols[e]]
            acc[b, r] = s
    return acc, clamps


def _row_major(matrix: SparseMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Row-major nonzeros (row_ptr, cols, vals) and the largest row L1 norm, cached."""
    cached = matrix.cache.get("csr")
    if cached is None:
        dense = matrix.dense_codes()
        rows, cols = np.nonzero(dense)  # row-major: each row's columns ascending
        row_ptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=matrix.shape[0]), out=row_ptr[1:])
        l1 = int(np.abs(dense).sum(axis=1).max()) if dense.size else 0
        cached = (row_ptr, cols.astype(np.int32), dense[rows, cols].astype(np.int64), l1)
        matrix.cache["csr"] = cached
    return cached


def spmv_fast(
    matrix: SparseMatrix, x: np.ndarray, counter: SaturationCounter | None = None, site: str = ""
) -> np.ndarray:
    """Same integers as :func:`spmv_reference`, from a compiled kernel."""
    row_ptr, cols, vals, l1 = _row_major(matrix)
    x = np.ascontiguousarray(x, dtype=np.int64)
    saturating = l1 * int(np.abs(x).max(initial=0)) > ACC_MAX
    acc, clamps = _csr_kernel(row_ptr, cols, vals, x, saturating)
    if counter is not None:
        counter.record(site, clamps)
    return acc


BACKENDS = {"reference": spmv_reference, "fast": spmv_fast}
