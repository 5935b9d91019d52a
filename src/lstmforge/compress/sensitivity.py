"""A global density target shared out over matrices by their measured pruning sensitivity.

``measure_sensitivity`` prunes one matrix at a time (all others dense) to a probe density and
records how much a score (lower is better, e.g. the validation loss) gets worse: the per-matrix
sensitivity analysis of Han et al., "Learning both weights and connections", NeurIPS 2015,
§3 / Fig. 5. ``allocate_densities`` then gives each matrix a density proportional to its
sensitivity, scaled so that the total number of kept weights meets the global target; the
result is the ``density`` dict :func:`~lstmforge.compress.compress_model` accepts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from lstmforge.compress.pruning import check_density, prune_mask
from lstmforge.compress.retrain import matrix_parameters
from lstmforge.errors import InputError

MIN_SENSITIVITY = 1e-6  # a matrix that does not care still keeps a share of the budget


def measure_sensitivity(
    model: nn.Module,
    score: Callable[[nn.Module], float],
    *,
    probe_density: float,
    num_pes: int,
    balanced: bool = True,
) -> dict[str, float]:
    """``{"block:param": score(pruned copy) - score(model)}`` with one matrix pruned at a time."""
    check_density(probe_density, "probe_density")
    base = float(score(model))
    out = {}
    for block, _, name in matrix_parameters(model):
        key = f"{block}:{name}"
        probe = copy.deepcopy(model)
        target = dict(probe.named_modules())[block]
        weight = getattr(target, name)
        flat = weight.detach().reshape(weight.shape[0], -1).cpu().double().numpy()
        mask = prune_mask(flat, probe_density, num_pes, balanced).reshape(tuple(weight.shape))
        with torch.no_grad():
            weight.mul_(torch.as_tensor(mask, dtype=weight.dtype, device=weight.device))
        out[key] = float(score(probe)) - base
    return out


def allocate_densities(
    sizes: dict[str, int], global_density: float, sensitivity: dict[str, float]
) -> dict[str, float]:
    """Per-matrix densities proportional to sensitivity, meeting ``global_density`` overall.

    A matrix's density is capped at 1; the budget it cannot use goes to the others.
    """
    check_density(global_density, "global density")
    if set(sizes) != set(sensitivity):
        raise InputError("allocate_densities: sizes and sensitivity must name the same matrices")
    weight = {k: max(float(sensitivity[k]), MIN_SENSITIVITY) for k in sizes}
    budget = global_density * sum(sizes.values())
    density: dict[str, float] = {}
    free = dict(sizes)
    while free:
        scale = (budget - sum(density[k] * sizes[k] for k in density)) / sum(
            weight[k] * free[k] for k in free
        )
        capped = [k for k in free if weight[k] * scale >= 1.0]
        if not capped:
            density |= {k: weight[k] * scale for k in free}
            break
        for k in capped:
            density[k] = 1.0
            del free[k]
    return density
