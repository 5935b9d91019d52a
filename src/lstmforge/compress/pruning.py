"""Magnitude pruning, plain and load-balance-aware (ESE §3), and the PE load report.

* Plain magnitude pruning keeps the ``round(density * rows * cols)`` largest-magnitude weights
  of a matrix wherever they are, so some PEs end up with many more nonzeros than others.
* Load-balance-aware pruning (Han et al., ESE, FPGA 2017, §3.1) splits the matrix into the
  sub-matrices the PEs own (row r goes to PE r % num_pes) and keeps the same number of
  largest-magnitude weights in each, so every PE does the same work.

Ties in magnitude are broken by position (stable sort), so masks are deterministic.

**Gap filling** (``fill_gaps=True``): the per-PE CSC format spends a padding entry (value 0,
rel_index 15) on every run of 16 zero rows before a weight (EIE §III-B). Such an entry costs as
much memory and as many PE cycles as a weight, so instead of padding, the largest-magnitude
weight inside the 16-row window is kept. The magnitude budget is lowered so that kept weights
plus fills still make ``density``: at ~10% density, about 1 entry in 8 would otherwise be
padding. The encoder then emits no padding at all, and every stored entry is a real weight.
"""

from __future__ import annotations

import numbers

import numba
import numpy as np

from lstmforge.compress.csc import MAX_GAP
from lstmforge.errors import InputError


def _keep_largest(magnitude: np.ndarray, keep: int) -> np.ndarray:
    """Boolean mask of the ``keep`` largest entries of a flat array (stable on ties)."""
    mask = np.zeros(magnitude.size, dtype=bool)
    if keep > 0:
        order = np.argsort(-magnitude, kind="stable")
        mask[order[:keep]] = True
    return mask


def check_density(density: float, where: str = "density") -> float:
    """A density must be a number in (0, 1]."""
    real = isinstance(density, numbers.Real) and not isinstance(density, bool)
    if not real or not 0.0 < float(density) <= 1.0:
        raise InputError(f"{where}: expected a fraction in (0, 1], got {density!r}")
    return float(density)


def matrix_keys(block: str, name: str) -> tuple[str, ...]:
    """The keys a per-matrix density dict may give matrix ``name`` of block ``block``, most
    specific first."""
    return (f"{block}:{name}", *((f"<root>:{name}",) if block == "" else ()), name)


def density_for(density: float | dict[str, float], block: str, name: str) -> float:
    """The density of matrix ``name`` of block ``block``: ``density`` itself, or its entry
    ``"block:name"`` (``"<root>:name"`` for a root block, as reports spell it) or ``"name"``
    when ``density`` is a per-matrix dict."""
    if isinstance(density, dict):
        for key in matrix_keys(block, name):
            if key in density:
                return check_density(density[key], f"density[{key!r}]")
        raise InputError(f"density: no entry for matrix {block}:{name} (or {name})")
    return check_density(density)


def magnitude_mask(weight: np.ndarray, density: float) -> np.ndarray:
    """Plain magnitude pruning: keep the largest ``density`` fraction of the whole matrix."""
    check_density(density)
    weight = np.asarray(weight)
    keep = int(round(density * weight.size))
    return _keep_largest(np.abs(weight).ravel(), keep).reshape(weight.shape)


def _per_pe_budget(weight: np.ndarray, density: float, num_pes: int) -> int:
    """Nonzeros each PE that owns rows of ``weight`` keeps (row r goes to PE r % num_pes)."""
    return int(round(density * weight.size / min(num_pes, weight.shape[0])))


def balanced_mask(weight: np.ndarray, density: float, num_pes: int) -> np.ndarray:
    """Load-balance-aware pruning: the same number of nonzeros in every PE's sub-matrix.

    Each PE that owns rows keeps ``round(density * rows * cols / min(num_pes, rows))`` weights
    (at most all it owns), so with rows divisible by ``num_pes`` every PE gets exactly the same
    count, and PEs without rows (more PEs than rows) take no share of the budget.
    """
    check_density(density)
    if num_pes < 1:
        raise InputError(f"num_pes: expected >= 1, got {num_pes}")
    weight = np.asarray(weight)
    if weight.ndim != 2:
        raise InputError(f"balanced pruning: expected a 2-D matrix, got {list(weight.shape)}")
    per_pe = _per_pe_budget(weight, density, num_pes)
    mask = np.zeros(weight.shape, dtype=bool)
    for pe in range(num_pes):
        sub = np.abs(weight[pe::num_pes])
        mask[pe::num_pes] = _keep_largest(sub.ravel(), min(per_pe, sub.size)).reshape(sub.shape)
    return mask


@numba.njit(cache=True)
def _fill_gaps(magnitude, kept, max_gap):  # pragma: no cover - compiled
    """Keep the largest weight of each (max_gap + 1)-row window a column gap would pad."""
    rows, cols = magnitude.shape
    fills = 0
    for j in range(cols):
        prev = -1
        while True:
            nxt = prev + 1
            while nxt < rows and not kept[nxt, j]:
                nxt += 1
            if nxt >= rows:
                break  # zeros after the last weight of a column cost nothing
            while nxt - prev - 1 > max_gap:
                best = prev + 1
                for q in range(prev + 2, prev + max_gap + 2):
                    if magnitude[q, j] > magnitude[best, j]:
                        best = q
                kept[best, j] = True
                fills += 1
                prev = best
            prev = nxt
    return fills


def fill_gaps(weight: np.ndarray, mask: np.ndarray, num_pes: int) -> np.ndarray:
    """``mask`` plus, in every PE's sub-matrix, the weights that replace padding entries."""
    out = mask.copy()
    for pe in range(num_pes):
        sub = np.ascontiguousarray(out[pe::num_pes])
        _fill_gaps(np.abs(weight[pe::num_pes]).astype(np.float64), sub, MAX_GAP)
        out[pe::num_pes] = sub
    return out


def _budgeted(weight: np.ndarray, target: int, keep_largest, num_pes: int) -> np.ndarray:
    """The most largest-magnitude weights whose mask plus gap fills stays within ``target``.

    Entries grow with the number kept, so a bisection over that number finds it.
    """
    low, high = 0, target
    best = fill_gaps(weight, keep_largest(0), num_pes)
    while low <= high:
        keep = (low + high) // 2
        mask = fill_gaps(weight, keep_largest(keep), num_pes)
        if mask.sum() <= target:
            best, low = mask, keep + 1
        else:
            high = keep - 1
    return best


def prune_mask(
    weight: np.ndarray, density: float, num_pes: int, balanced: bool, fill: bool = False
) -> np.ndarray:
    """The pruning mask of a 2-D matrix: :func:`balanced_mask` or :func:`magnitude_mask`,
    with padding replaced by real weights when ``fill`` (module docstring)."""
    if not fill:
        return (
            balanced_mask(weight, density, num_pes) if balanced else magnitude_mask(weight, density)
        )
    check_density(density)
    weight = np.asarray(weight)
    if not balanced:
        return _budgeted(weight, int(round(density * weight.size)), _largest_of(weight), num_pes)
    mask = np.zeros(weight.shape, dtype=bool)
    per_pe = _per_pe_budget(weight, density, num_pes)
    for pe in range(num_pes):
        sub = weight[pe::num_pes]
        mask[pe::num_pes] = _budgeted(sub, min(per_pe, sub.size), _largest_of(sub), 1)
    return mask


def _largest_of(weight: np.ndarray):
    """``k -> mask of the k largest-magnitude entries of weight`` (one sort, stable on ties)."""
    order = np.argsort(-np.abs(weight).ravel(), kind="stable")

    def largest(keep: int) -> np.ndarray:
        mask = np.zeros(weight.size, dtype=bool)
        mask[order[:keep]] = True
        return mask.reshape(weight.shape)

    return largest


def pe_load(mask: np.ndarray, num_pes: int) -> dict[str, float | list[int]]:
    """Nonzeros per PE and the load imbalance they cause.

    ``imbalance`` = max / mean nonzeros per PE (1.0 is perfect); ``utilisation`` = mean / max,
    the fraction of PE cycles doing useful work when every PE waits for the slowest (ESE §3).
    """
    counts = [int(np.count_nonzero(mask[pe::num_pes])) for pe in range(num_pes)]
    mean = float(np.mean(counts))
    peak = max(counts)
    return {
        "nonzeros_per_pe": counts,
        "max": peak,
        "mean": mean,
        "imbalance": peak / mean if mean > 0 else 1.0,
        "utilisation": mean / peak if peak > 0 else 1.0,
    }


def gradual_densities(final_density: float, steps: int) -> list[float]:
    """Densities of a gradual prune schedule ending at ``final_density``.

    The cubic schedule of Zhu & Gupta ("To prune, or not to prune", 2017, eq. 1):
    s_t = s_f + (s_0 - s_f)(1 - t/n)^3 on sparsity s = 1 - density, from s_0 = 0.
    """
    check_density(final_density)
    if steps < 1:
        raise InputError(f"prune steps: expected >= 1, got {steps}")
    final_sparsity = 1.0 - final_density
    return [1.0 - final_sparsity * (1.0 - (1.0 - t / steps) ** 3) for t in range(1, steps + 1)]
