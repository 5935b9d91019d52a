"""Figures of the simulator and the demo (matplotlib, Agg backend), written atomically as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lstmforge.io import atomic_path  # noqa: E402


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def timeline_plot(timeline: Sequence[dict[str, Any]], frame: int, path: Path) -> Path:
    """Gantt chart of one time step per PE: MAC passes (lower bar), element-wise block (upper).

    Cycles are counted from the first start in the recorded step.
    """
    kinds = sorted({i["kind"] for i in timeline})
    palette = plt.cm.tab10.colors  # cycled: a deep model has more kinds than colours
    colours = {kind: palette[i % len(palette)] for i, kind in enumerate(kinds)}
    origin = min(i["start"] for i in timeline)
    pes = max(i["pe"] for i in timeline) + 1
    fig, ax = plt.subplots(figsize=(10, 0.22 * pes + 1.5))
    for kind in kinds:
        lane = (0.05, 0.35) if kind.startswith("element-wise") else (-0.4, 0.42)
        spans = [i for i in timeline if i["kind"] == kind]
        for span in spans:
            ax.broken_barh(
                [(span["start"] - origin, max(span["end"] - span["start"], 1))],
                (span["pe"] + lane[0], lane[1]),
                color=colours[kind],
                label=kind if span is spans[0] else None,
            )
    ax.set_xlabel("cycle within the time step")
    ax.set_ylabel("PE")
    ax.set_title(f"one time step (frame {frame}) on one channel")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _save(fig, path)


def bar_per_pe(series: dict[str, Sequence[float]], ylabel: str, title: str, path: Path) -> Path:
    """Grouped bars per PE (e.g. utilisation, or nonzeros before/after balancing)."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / max(len(series), 1)
    for k, (label, values) in enumerate(series.items()):
        ax.bar([p + k * width for p in range(len(values))], values, width, label=label)
    ax.set_xlabel("PE")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def curve_plot(
    curves: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str, path: Path
) -> Path:
    """Line plot of named (x, y) curves, e.g. training and validation loss per epoch."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _save(fig, path)


def pareto_plot(
    points: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]], path: Path
) -> Path:
    """Latency per frame against PEs per channel, one colour per density.

    Marker size grows with memory bandwidth; the line joins each density's fastest point per PE
    count; Pareto-optimal points (in PEs, bandwidth, latency) are outlined in black.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    densities = sorted({p["density"] for p in points}, reverse=True)

    def key(p: dict[str, Any]) -> tuple:
        return (p["density"], p["pes_per_channel"], p["memory_bandwidth_gbs"])

    on_front = {key(p) for p in front}
    shades = plt.cm.viridis_r(np.linspace(0.15, 0.85, len(densities)))
    for colour, density in zip(shades, densities, strict=True):
        mine = [p for p in points if p["density"] == density]
        ax.scatter(
            [p["pes_per_channel"] for p in mine],
            [p["latency_us_per_frame"] for p in mine],
            s=[12 + 8 * p["memory_bandwidth_gbs"] ** 0.5 for p in mine],
            color=colour,
            edgecolors="black",
            linewidths=[1.2 if key(p) in on_front else 0.0 for p in mine],
            alpha=0.85,
        )
        pes = sorted({p["pes_per_channel"] for p in mine})
        best = [
            min(p["latency_us_per_frame"] for p in mine if p["pes_per_channel"] == n) for n in pes
        ]
        ax.plot(pes, best, "-", color=colour, label=f"density {density:.3g}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("PEs per channel (resources); marker size: memory bandwidth")
    ax.set_ylabel("latency per frame (µs)")
    ax.set_title("design space; black outline: Pareto-optimal (PEs, bandwidth, latency)")
    ax.legend(fontsize=8)
    return _save(fig, path)
