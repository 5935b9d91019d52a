"""Training losses for nowcasting.

* ``bce``: per-pixel binary cross-entropy on logits (Shi et al., NIPS 2015, Sec. 4.1, Moving
  MNIST), summed over the pixels of a frame and averaged over frames and sequences; the model
  output is a logit, the prediction its sigmoid.
* ``mse``: mean squared error of the [0, 1]-scaled reflectivity (radar); the model output is
  the prediction itself (a linear output: a sigmoid would saturate on the many dry pixels and
  starve the rain pixels of gradient), clipped to [0, 1] when forecasting.
* ``balanced-mse``: the same, each pixel weighted by the rain rate of the truth — 1, 2, 5, 10,
  30 for rates below 2, 5, 10, 30 and above 30 mm/h (Shi et al., NIPS 2017, Sec. 4.4, B-MSE),
  so that rare heavy rain is not ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lstmforge.data.units import DBZ_MAX, ZR_A_HKO, ZR_B_HKO
from lstmforge.errors import InputError

LOSSES = ("bce", "mse", "balanced-mse")
BALANCE_EDGES_MMH = (2.0, 5.0, 10.0, 30.0)
BALANCE_WEIGHTS = (1.0, 2.0, 5.0, 10.0, 30.0)


def balanced_weights(target_unit: torch.Tensor) -> torch.Tensor:
    """B-MSE pixel weights from the [0, 1]-scaled reflectivity of the truth (HKO's Z-R)."""
    dbz = target_unit.clamp(0.0, 1.0) * DBZ_MAX
    rain = (10.0 ** (dbz / 10.0) / ZR_A_HKO) ** (1.0 / ZR_B_HKO)
    edges = torch.tensor(BALANCE_EDGES_MMH, dtype=rain.dtype, device=rain.device)
    weights = torch.tensor(BALANCE_WEIGHTS, dtype=rain.dtype, device=rain.device)
    return weights[torch.bucketize(rain, edges, right=True)]


def to_prediction(name: str, output: torch.Tensor) -> torch.Tensor:
    """Frames in [0, 1] from the model output of a model trained with loss ``name``."""
    return torch.sigmoid(output) if name == "bce" else output.clamp(0.0, 1.0)


def nowcast_loss(name: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss ``name`` of the model ``output`` against ``target`` in [0, 1]."""
    if name == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(output, target, reduction="none")
        return per_pixel.flatten(2).sum(-1).mean()
    pred = output
    if name == "mse":
        return F.mse_loss(pred, target)
    if name == "balanced-mse":
        return (balanced_weights(target) * (pred - target) ** 2).mean()
    raise InputError(f"--loss: expected one of {', '.join(LOSSES)}, got {name!r}")
