"""Pictures of nowcasts: frame strips (PNG), animations (GIF) and skill against lead time.

All figures are written atomically (:func:`lstmforge.io.atomic_path`) with matplotlib's Agg
backend. Frames are on the model's [0, 1] scale; radar frames are drawn in dBZ.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

from lstmforge.data.units import DBZ_MAX  # noqa: E402
from lstmforge.io import atomic_path  # noqa: E402


def _style(radar: bool) -> dict:
    if radar:
        return {"cmap": "turbo", "vmin": 0.0, "vmax": DBZ_MAX}
    return {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}


def _scale(frames: np.ndarray, radar: bool) -> np.ndarray:
    return frames * DBZ_MAX if radar else frames


def frame_strip(
    path: Path,
    past: np.ndarray,
    future: np.ndarray,
    forecasts: dict[str, np.ndarray],
    radar: bool,
) -> Path:
    """One row of input frames, one of true frames, one per method's forecast ([T, H, W] each)."""
    rows = [("input", past), ("truth", future), *forecasts.items()]
    cols = max(len(frames) for _, frames in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.2 * cols, 1.3 * len(rows)), squeeze=False)
    for r, (name, frames) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(frames):
                ax.imshow(_scale(frames[c], radar), **_style(radar))
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return path


def animation(
    path: Path, future: np.ndarray, forecasts: dict[str, np.ndarray], radar: bool
) -> Path:
    """An animated GIF: the truth next to each method's forecast, one frame per lead time."""
    panels = [("truth", future), *forecasts.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.4), squeeze=False)
    images = []
    for ax, (name, frames) in zip(axes[0], panels, strict=True):
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        images.append(ax.imshow(_scale(frames[0], radar), **_style(radar)))

    def draw(t: int) -> list:
        for image, (_, frames) in zip(images, panels, strict=True):
            image.set_data(_scale(frames[t], radar))
        return images

    anim = FuncAnimation(fig, draw, frames=len(future), blit=False)
    with atomic_path(path) as tmp:
        anim.save(tmp, writer=PillowWriter(fps=3))
    plt.close(fig)
    return path


def skill_vs_lead(
    path: Path, results: dict[str, dict], metrics: list[str], minutes_per_step: float | None
) -> Path:
    """One panel per metric: each method's per-lead-time score."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for name, scores in results.items():
            values = scores["per_lead"][metric]
            steps = np.arange(1, len(values) + 1)
            lead = steps * minutes_per_step if minutes_per_step else steps
            ax.plot(lead, values, marker="o", markersize=3, label=name)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("lead time (min)" if minutes_per_step else "lead time (frames)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path


def write_figures(
    out_dir: Path,
    results: dict[str, dict],
    past: np.ndarray,
    future: np.ndarray,
    forecasts: dict[str, np.ndarray],
    radar: bool,
) -> list[Path]:
    """Strips and GIFs for every example sequence and the skill-vs-lead plot; returns paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(len(past)):
        per_method = {name: f[i] for name, f in forecasts.items()}
        written.append(
            frame_strip(out_dir / f"example_{i:02d}.png", past[i], future[i], per_method, radar)
        )
        written.append(animation(out_dir / f"example_{i:02d}.gif", future[i], per_method, radar))
    metrics = (
        ["csi_0.5", "csi_5", "mse", "fss_0.5_s15"]
        if radar
        else ["cross_entropy", "mse", "ssim", "psnr"]
    )
    written.append(
        skill_vs_lead(out_dir / "skill_vs_lead.png", results, metrics, 6.0 if radar else None)
    )
    return written
