"""A global density target shared out over matrices by their measured pruning sensitivity.

``measure_sensitivity`` prunes one matrix at a time (all others dense) to a probe density and
records how much a score (lower is better, e.g. the validation loss) gets worse: the per-matrix
sensitivity analysis of Han et al., "Learning both weights and connections", NeurIPS 2015,
§3 / Fig. 5, where it guides a threshold per layer chosen by hand. ``allocate_densities``
turns it into densities automatically: each matrix's density proportional to its sensitivity,
between a floor (the probe density) and 1, scaled so that the total number of kept weights
meets the global target; the result is the ``density`` dict
:func:`~lstmforge.compress.compress_model` accepts.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from lstmforge.compress.pruning import check_density, prune_mask
from lstmforge.compress.retrain import matrix_parameters
from lstmforge.errors import InputError

MIN_SENSITIVITY = 1e-12  # keeps the proportional shares defined; such a matrix gets the floor


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
        mask = prune_mask(flat, probe_density, num_pes, balanced, fill=True)
        mask = mask.reshape(tuple(weight.shape))
        with torch.no_grad():
            weight.mul_(torch.as_tensor(mask, dtype=weight.dtype, device=weight.device))
        out[key] = float(score(probe)) - base
    return out


def allocate_densities(
    sizes: dict[str, int],
    global_density: float,
    sensitivity: dict[str, float],
    floor: float = 0.0,
) -> dict[str, float]:
    """Per-matrix densities proportional to sensitivity, meeting ``global_density`` overall.

    Every density lies in [``floor``, 1] (``floor`` <= ``global_density``; the pipeline uses the
    probe density, below which no sensitivity was measured): the proportional share is
    clipped there and the scale found by bisection so that the kept weights meet the budget.
    A matrix whose pruning did not hurt (a change <= 0) gets the floor.
    """
    check_density(global_density, "global density")
    if set(sizes) != set(sensitivity):
        raise InputError("allocate_densities: sizes and sensitivity must name the same matrices")
    if not 0.0 <= floor <= global_density:
        raise InputError(f"allocate_densities: floor {floor} outside [0, {global_density}]")
    bad = [k for k, v in sensitivity.items() if not math.isfinite(v)]
    if bad:
        raise InputError(f"sensitivity: the score of {', '.join(bad)} is not a finite number")
    weight = {k: max(float(sensitivity[k]), MIN_SENSITIVITY) for k in sizes}
    total = sum(sizes.values())

    def densities(scale: float) -> dict[str, float]:
        return {k: min(1.0, max(floor, weight[k] * scale)) for k in sizes}

    def kept(scale: float) -> float:
        return sum(d * sizes[k] for k, d in densities(scale).items()) / total

    low, high = 0.0, 1.0 / min(weight.values())  # kept(high) = 1 >= global_density
    for _ in range(200):  # kept() is continuous and non-decreasing in the scale
        middle = 0.5 * (low + high)
        low, high = (middle, high) if kept(middle) < global_density else (low, middle)
    return densities(high)
