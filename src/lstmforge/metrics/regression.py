"""Regression metrics for continuous kinematics, per output column (joint).

For true values y and predictions ŷ of one joint over T samples:

* Pearson correlation coefficient CC = cov(y, ŷ) / (σ_y σ_ŷ)
* RMSE = sqrt(mean((y − ŷ)²)), in the units of y (degrees where the data are calibrated)
* NRMSE = RMSE / (max(y) − min(y)), normalised by the range of the true trajectory, as in
  the sEMG kinematics literature (e.g. Guo et al., J. Neural Eng. 2021)
* R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (coefficient of determination, can be negative)
* MAE = mean(|y − ŷ|)

A constant column has no defined CC, NRMSE or R²: those come back as NaN.
"""

from __future__ import annotations

import numpy as np

from lstmforge.errors import InputError

METRIC_NAMES = ("cc", "rmse", "nrmse", "r2", "mae")


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred.reshape(-1, 1)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise InputError(
            f"y_true and y_pred must be [T, J] of the same shape, got {y_true.shape}, {y_pred.shape}"
        )
    if y_true.shape[0] < 2:
        raise InputError(f"need at least 2 samples per column, got {y_true.shape[0]}")
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise InputError("y_true and y_pred must be finite (no NaN or infinities)")
    return y_true, y_pred


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def pearson_cc(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Pearson CC per column [J]."""
    y, p = _check(y_true, y_pred)
    dy, dp = y - y.mean(axis=0), p - p.mean(axis=0)
    return _safe_divide((dy * dp).sum(axis=0), np.sqrt((dy**2).sum(axis=0) * (dp**2).sum(axis=0)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Root mean squared error per column [J]."""
    y, p = _check(y_true, y_pred)
    return np.sqrt(np.mean((y - p) ** 2, axis=0))


def nrmse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """RMSE divided by the range of the true values, per column [J]."""
    y, _ = _check(y_true, y_pred)
    return _safe_divide(rmse(y_true, y_pred), y.max(axis=0) - y.min(axis=0))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column [J]."""
    y, p = _check(y_true, y_pred)
    residual = ((y - p) ** 2).sum(axis=0)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - _safe_divide(residual, total)


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Mean absolute error per column [J]."""
    y, p = _check(y_true, y_pred)
    return np.mean(np.abs(y - p), axis=0)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, np.ndarray]:
    """All of :data:`METRIC_NAMES`, each an array with one value per column."""
    functions = {"cc": pearson_cc, "rmse": rmse, "nrmse": nrmse, "r2": r2, "mae": mae}
    return {name: functions[name](y_true, y_pred) for name in METRIC_NAMES}
