"""Frame-prediction metrics: per-frame MSE and MAE, SSIM, PSNR, and per-sequence cross-entropy.

Conventions (frames in [0, 1], arrays ``[B, T, H, W]`` or ``[B, T, C, H, W]``):

* **MSE / MAE per frame** — the squared (absolute) error summed over the pixels of a frame and
  averaged over frames and sequences. This is the OpenSTL convention (Tan et al., NeurIPS 2023
  Datasets & Benchmarks, the numbers of its Moving MNIST tables), not the per-pixel mean.
* **Cross-entropy per sequence** — binary cross-entropy of the predicted pixel intensities
  against the true ones, summed over all pixels of all predicted frames and averaged over
  sequences: the metric of Shi et al. (NIPS 2015), Table 1.
* **SSIM** — Wang et al. (IEEE TIP 2004) with an 11 x 11 Gaussian window (sigma 1.5),
  K1 = 0.01, K2 = 0.03, data range 1, population covariances, averaged over the valid
  (unpadded) window positions of each frame and then over frames; this matches
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``.
* **PSNR** — ``10 log10(1 / MSE_pixel)`` per frame, averaged over frames.

Every function returns per-lead-time values ``[T]`` (mean over sequences); average them for
the overall score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1, SSIM_K2 = 0.01, 0.03
PSNR_FLOOR_MSE = 1e-10


def _frames(x: torch.Tensor) -> torch.Tensor:
    """View ``[B, T, H, W]`` or ``[B, T, C, H, W]`` as ``[B, T, C, H, W]`` in float64."""
    x = torch.as_tensor(x).to(torch.float64)
    return x.unsqueeze(2) if x.dim() == 4 else x


def frame_mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Squared error summed over each frame's pixels, mean over sequences: ``[T]``."""
    return ((_frames(pred) - _frames(true)) ** 2).sum(dim=(2, 3, 4)).mean(dim=0)


def frame_mae(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Absolute error summed over each frame's pixels, mean over sequences: ``[T]``."""
    return (_frames(pred) - _frames(true)).abs().sum(dim=(2, 3, 4)).mean(dim=0)


def psnr(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio (data range 1) per frame, mean over sequences: ``[T]``."""
    mse = ((_frames(pred) - _frames(true)) ** 2).mean(dim=(2, 3, 4))
    return (10.0 * torch.log10(1.0 / mse.clamp_min(PSNR_FLOOR_MSE))).mean(dim=0)


def cross_entropy(prob: torch.Tensor, true: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Binary cross-entropy summed over each frame's pixels, mean over sequences: ``[T]``.

    Summing the result over lead times gives the per-sequence cross-entropy of Shi et al.
    """
    p = _frames(prob).clamp(eps, 1.0 - eps)
    t = _frames(true)
    return -(t * torch.log(p) + (1.0 - t) * torch.log1p(-p)).sum(dim=(2, 3, 4)).mean(dim=0)


def _gaussian_window(channels: int) -> torch.Tensor:
    coords = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()


def ssim(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Structural similarity per frame (mean over channels), mean over sequences: ``[T]``."""
    x, y = _frames(pred), _frames(true)
    batch, steps, channels, height, width = x.shape
    x = x.reshape(batch * steps, channels, height, width)
    y = y.reshape(batch * steps, channels, height, width)
    window = _gaussian_window(channels)

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, window, groups=channels)  # valid positions only

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3)).reshape(batch, steps).mean(dim=0)


class FrameScores:
    """Accumulates predicted and true frames ``[B, T, ...]`` in [0, 1] batch by batch.

    ``result()`` gives ``cross_entropy`` (per sequence: summed over lead times, Shi et al.),
    ``mse``, ``mae`` (per frame, OpenSTL), ``ssim`` and ``psnr`` averaged over lead times, and
    ``per_lead`` with each of them as a list over lead time.
    """

    METRICS = {
        "cross_entropy": cross_entropy,
        "mse": frame_mse,
        "mae": frame_mae,
        "ssim": ssim,
        "psnr": psnr,
    }

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        """Add a batch (probabilities / intensities and the truth, same shape)."""
        batch = len(pred)
        for name, metric in self.METRICS.items():
            self.sums[name] = self.sums.get(name, 0) + batch * metric(pred, true)
        self.count += batch

    def result(self) -> dict:
        """Overall scores as floats, plus ``per_lead`` lists."""
        if not self.count:
            raise ValueError("no frames were added")
        per_lead = {name: (s / self.count) for name, s in self.sums.items()}
        overall = {name: float(v.mean()) for name, v in per_lead.items()}
        overall["cross_entropy"] = float(per_lead["cross_entropy"].sum())
        return overall | {"per_lead": {k: v.tolist() for k, v in per_lead.items()}}
