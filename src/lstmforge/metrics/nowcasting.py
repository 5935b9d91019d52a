"""Nowcasting skill scores: CSI, POD, FAR, FSS at several scales, rainfall MSE, correlation.

Definitions (Shi et al., NIPS 2015, Sec. 4.2; Jolliffe & Stephenson, "Forecast Verification",
2012): an event is a rain rate of at least the threshold; with H hits, M misses and F false
alarms, ``CSI = H / (H + M + F)``, ``POD = H / (H + M)``, ``FAR = F / (H + F)``. The counts are
summed over all pixels and sequences before the ratio (per lead time, and over all lead times
for the overall score), as pysteps' ``det_cat_fct`` does with ``axis=None``.

The fractions skill score (Roberts & Lean, Mon. Wea. Rev. 2008) compares the fractions of
event pixels in ``s x s`` windows (zero padding outside the frame, as pysteps):
``FSS = 1 - sum (Pf - Po)^2 / (sum Pf^2 + sum Po^2)``, sums over all fields.

Correlation is the paper's uncentred one, ``sum(P T) / (sqrt(sum P^2) sqrt(sum T^2) + eps)``.
Rainfall MSE is the mean squared rain-rate error in (mm/h)^2.

All functions take arrays ``[..., T, H, W]`` (T = lead time) and are pure; :class:`NowcastScores`
accumulates them batch by batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

THRESHOLDS_MMH = (0.5, 2.0, 5.0, 10.0, 30.0)
FSS_SCALES = (1, 5, 15, 31)
EPS = 1e-9


def contingency_counts(
    pred: np.ndarray, obs: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits, misses and false alarms per lead time for arrays ``[..., T, H, W]``."""
    p, o = pred >= threshold, obs >= threshold
    axes = tuple(a for a in range(p.ndim) if a != p.ndim - 3)
    hits = np.sum(p & o, axis=axes)
    misses = np.sum(~p & o, axis=axes)
    false_alarms = np.sum(p & ~o, axis=axes)
    return hits, misses, false_alarms


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (the score is undefined there)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def csi(hits: np.ndarray, misses: np.ndarray, false_alarms: np.ndarray) -> np.ndarray:
    """Critical success index H / (H + M + F)."""
    return _ratio(hits, hits + misses + false_alarms)


def pod(hits: np.ndarray, misses: np.ndarray) -> np.ndarray:
    """Probability of detection H / (H + M)."""
    return _ratio(hits, hits + misses)


def far(hits: np.ndarray, false_alarms: np.ndarray) -> np.ndarray:
    """False alarm ratio F / (H + F)."""
    return _ratio(false_alarms, hits + false_alarms)


def fss_sums(
    pred: np.ndarray, obs: np.ndarray, threshold: float, scale: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per lead time: sum Pf^2, sum Pf Po, sum Po^2 of the ``scale x scale`` event fractions."""
    size = (1,) * (pred.ndim - 2) + (scale, scale)
    frac_p = ndimage.uniform_filter((pred >= threshold).astype(np.float64), size, mode="constant")
    frac_o = ndimage.uniform_filter((obs >= threshold).astype(np.float64), size, mode="constant")
    axes = tuple(a for a in range(pred.ndim) if a != pred.ndim - 3)
    return (
        np.sum(frac_p**2, axis=axes),
        np.sum(frac_p * frac_o, axis=axes),
        np.sum(frac_o**2, axis=axes),
    )


def fss_from_sums(sum_pp: np.ndarray, sum_po: np.ndarray, sum_oo: np.ndarray) -> np.ndarray:
    """FSS = 1 - (sum Pf^2 - 2 sum Pf Po + sum Po^2) / (sum Pf^2 + sum Po^2)."""
    return 1.0 - _ratio(sum_pp - 2.0 * sum_po + sum_oo, sum_pp + sum_oo)


def fss(pred: np.ndarray, obs: np.ndarray, threshold: float, scale: int) -> float:
    """The fractions skill score of all fields in ``pred``/``obs`` together."""
    sums = [np.sum(s) for s in fss_sums(pred, obs, threshold, scale)]
    return float(fss_from_sums(*sums))


class NowcastScores:
    """Accumulates rain-rate forecasts and observations ``[B, T, H, W]`` (mm/h) batch by batch.

    ``result()`` gives overall scores (all lead times together) named ``csi_0.5``,
    ``pod_0.5``, ``far_0.5``, ... for every threshold, ``fss_<thr>_s<scale>``, ``mse`` and
    ``correlation``, and the same per lead time under ``per_lead`` (lists of length T).
    """

    def __init__(
        self,
        thresholds: Sequence[float] = THRESHOLDS_MMH,
        fss_scales: Sequence[int] = FSS_SCALES,
    ) -> None:
        self.thresholds = tuple(thresholds)
        self.fss_scales = tuple(fss_scales)
        self.counts: dict[float, np.ndarray] = {}
        self.fss: dict[tuple[float, int], np.ndarray] = {}
        self.moments: np.ndarray | None = None  # per lead: sum e^2, sum P T, sum P^2, sum T^2
        self.pixels: np.ndarray | None = None

    def update(self, pred: np.ndarray, obs: np.ndarray) -> None:
        """Add a batch of rain rates ``[B, T, H, W]`` (predictions and truth, same shape)."""
        pred, obs = np.asarray(pred, np.float64), np.asarray(obs, np.float64)
        if pred.shape != obs.shape or pred.ndim != 4:
            raise ValueError(f"expected equal [B, T, H, W] arrays, got {pred.shape}, {obs.shape}")
        for thr in self.thresholds:
            batch = np.stack(contingency_counts(pred, obs, thr))
            self.counts[thr] = self.counts.get(thr, 0) + batch
            for scale in self.fss_scales:
                sums = np.stack(fss_sums(pred, obs, thr, scale))
                self.fss[(thr, scale)] = self.fss.get((thr, scale), 0) + sums
        moments = np.stack(
            [
                np.sum((pred - obs) ** 2, axis=(0, 2, 3)),
                np.sum(pred * obs, axis=(0, 2, 3)),
                np.sum(pred**2, axis=(0, 2, 3)),
                np.sum(obs**2, axis=(0, 2, 3)),
            ]
        )
        pixels = np.full(pred.shape[1], pred.shape[0] * pred.shape[2] * pred.shape[3])
        self.moments = moments if self.moments is None else self.moments + moments
        self.pixels = pixels if self.pixels is None else self.pixels + pixels

    def _scores(self, reduce: bool) -> dict[str, np.ndarray]:
        def r(values: np.ndarray) -> np.ndarray:
            return values.sum(axis=-1) if reduce else values

        out: dict[str, np.ndarray] = {}
        for thr in self.thresholds:
            hits, misses, false_alarms = r(self.counts[thr])
            out[f"csi_{thr:g}"] = csi(hits, misses, false_alarms)
            out[f"pod_{thr:g}"] = pod(hits, misses)
            out[f"far_{thr:g}"] = far(hits, false_alarms)
        for (thr, scale), sums in self.fss.items():
            out[f"fss_{thr:g}_s{scale}"] = fss_from_sums(*r(sums))
        sq_err, cross, pp, tt = r(self.moments)
        out["mse"] = sq_err / r(self.pixels)
        out["correlation"] = cross / (np.sqrt(pp) * np.sqrt(tt) + EPS)
        return out

    def result(self) -> dict:
        """Overall scores as floats, plus ``per_lead``: the same names as lists over lead time."""
        if self.moments is None:
            raise ValueError("no forecasts were added")
        overall = {k: float(v) for k, v in self._scores(reduce=True).items()}
        per_lead = {k: [float(x) for x in v] for k, v in self._scores(reduce=False).items()}
        return overall | {"per_lead": per_lead}
