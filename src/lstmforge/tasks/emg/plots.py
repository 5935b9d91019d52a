"""Figures: predicted vs true trajectories, one panel per degree of freedom, and CC per joint."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmforge.io import atomic_path
from lstmforge.tasks.emg.evaluate import SubjectPrediction


def plot_trajectories(
    prediction: SubjectPrediction, path: str | Path, seconds: float | None = 60.0
) -> Path:
    """True (black) and predicted (colour) joint trajectories of one subject's test windows.

    One panel per joint / degree of freedom; ``seconds`` limits the plotted span (None: all).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = prediction.true.shape[0]
    if seconds is not None:
        n = min(n, int(seconds * prediction.window_rate_hz))
    t = np.arange(n) / prediction.window_rate_hz
    joints = len(prediction.joint_names)
    fig, axes = plt.subplots(joints, 1, figsize=(10, 1.3 * joints + 0.6), sharex=True)
    for j, ax in enumerate(np.atleast_1d(axes)):
        ax.plot(t, prediction.true[:n, j], color="black", linewidth=1.0, label="true")
        ax.plot(t, prediction.predicted[:n, j], color="tab:red", linewidth=0.9, label="predicted")
        ax.set_ylabel(prediction.joint_names[j], rotation=0, ha="right", fontsize=8)
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=7, ncol=2)
    np.atleast_1d(axes)[-1].set_xlabel("test time (s, held-out repetitions concatenated)")
    fig.suptitle(f"subject {prediction.subject}: predicted vs true", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)
    return path


def plot_joint_cc(report: dict, path: str | Path) -> Path:
    """Pearson CC per joint (x) for every subject (one marker row per subject) and the mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subjects = report["subjects"]
    joints = list(next(iter(subjects.values()))["per_joint"])
    values = np.array([[s["per_joint"][j]["cc"] for j in joints] for s in subjects.values()])
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(joints)), 3.2))
    x = np.arange(len(joints))
    ax.bar(x, np.nanmean(values, axis=0), color="lightgray", label="mean over subjects")
    for row, name in zip(values, subjects, strict=True):
        ax.plot(x, row, "o", markersize=3, label=f"subject {name}")
    ax.set_xticks(x, joints, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("Pearson CC")
    ax.set_ylim(min(0.0, float(np.nanmin(values))), 1.0)
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)
    return path
