"""Magnitude pruning, plain and load-balance-aware (ESE §3), and the PE load report.

* Plain magnitude pruning keeps the ``round(density * rows * cols)`` largest-magnitude weights
  of a matrix wherever they are, so some PEs end up with many more nonzeros than others.
* Load-balance-aware pruning (Han et al., ESE, FPGA 2017, §3.1) splits the matrix into the
  sub-matrices the PEs own (row r goes to PE r % num_pes) and keeps the same number of
  largest-magnitude weights in each, so every PE does the same work.

Ties in magnitude are broken by position (stable sort), so masks are deterministic.
"""

from __future__ import annotations

import numpy as np

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
    if not isinstance(density, (int, float)) or not 0.0 < float(density) <= 1.0:
        raise InputError(f"{where}: expected a fraction in (0, 1], got {density!r}")
    return float(density)


def magnitude_mask(weight: np.ndarray, density: float) -> np.ndarray:
    """Plain magnitude pruning: keep the largest ``density`` fraction of the whole matrix."""
    check_density(density)
    weight = np.asarray(weight)
    keep = int(round(density * weight.size))
    return _keep_largest(np.abs(weight).ravel(), keep).reshape(weight.shape)


def balanced_mask(weight: np.ndarray, density: float, num_pes: int) -> np.ndarray:
    """Load-balance-aware pruning: the same number of nonzeros in every PE's sub-matrix.

    Each PE keeps ``round(density * rows * cols / num_pes)`` weights (at most all it owns), so
    with rows divisible by ``num_pes`` every PE gets exactly the same count.
    """
    check_density(density)
    if num_pes < 1:
        raise InputError(f"num_pes: expected >= 1, got {num_pes}")
    weight = np.asarray(weight)
    if weight.ndim != 2:
        raise InputError(f"balanced pruning: expected a 2-D matrix, got {list(weight.shape)}")
    per_pe = int(round(density * weight.size / num_pes))
    mask = np.zeros(weight.shape, dtype=bool)
    for pe in range(num_pes):
        sub = np.abs(weight[pe::num_pes])
        mask[pe::num_pes] = _keep_largest(sub.ravel(), min(per_pe, sub.size)).reshape(sub.shape)
    return mask


def prune_mask(weight: np.ndarray, density: float, num_pes: int, balanced: bool) -> np.ndarray:
    """The pruning mask of a 2-D matrix: :func:`balanced_mask` or :func:`magnitude_mask`."""
    if balanced:
        return balanced_mask(weight, density, num_pes)
    return magnitude_mask(weight, density)


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
