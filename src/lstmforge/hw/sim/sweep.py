"""Design-space exploration: latency over PEs, memory bandwidth and weight density.

For each density the artifact's LSTM weight codes are pruned further by magnitude (every
matrix to that density; an artifact with per-matrix densities keeps their proportions) with the
compressor's load-balance-aware pruning (ESE §3; like the compressor's default, weights are kept
instead of CSC padding entries where the budget allows) and re-encoded for each PE count with
the compressor's CSC encoder; each point is timed with :func:`.timing.simulate_timing`. A point is
on the Pareto front when no other point of the same density has at most its PEs, at most its
bandwidth and at most its latency, with one of them strictly less.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lstmforge.compress.artifact import CompressedModel
from lstmforge.compress.pruning import prune_mask
from lstmforge.errors import InputError
from lstmforge.hw.sim.config import SimConfig
from lstmforge.hw.sim.simulate import layer_structures, lstm_blocks
from lstmforge.hw.sim.structure import LayerStructure, PEMatrix
from lstmforge.hw.sim.timing import simulate_timing

DENSITY_TOLERANCE = 0.05
"""A sweep density may exceed the artifact's stored density by this fraction (weights quantized
to zero); a matrix never keeps more than it stores."""


def repartition(
    layers: list[LayerStructure],
    density: float,
    num_pes: int,
    balanced: bool = True,
    relative_to: float | None = None,
) -> list[LayerStructure]:
    """The layers pruned to ``density`` (of each matrix, at most what it stores) and re-encoded
    over ``num_pes`` PEs. With ``relative_to`` (the artifact's overall density, for an artifact
    whose matrices have densities of their own) each matrix keeps its stored density times
    ``density / relative_to`` instead: the artifact's own point at ``density = relative_to``."""

    def redo(m: PEMatrix | None) -> PEMatrix | None:
        if m is None:
            return None
        codes = m.to_dense()
        stored = float((codes != 0).mean())
        target = density if relative_to is None else stored * density / relative_to
        kept = min(target, stored)  # cannot bring pruned weights back
        mask = prune_mask(codes, kept, num_pes, balanced, fill=True)
        return PEMatrix.from_codes(m.name, codes * mask, num_pes)

    return [
        LayerStructure(redo(ly.w_ih), redo(ly.w_hh), redo(ly.w_hr), ly.peephole) for ly in layers
    ]


def pareto_front(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points not dominated in (PEs, bandwidth, latency) by a point of the same density."""
    keys = ("pes_per_channel", "memory_bandwidth_gbs", "latency_us_per_frame")

    def dominates(a: dict, b: dict) -> bool:
        return all(a[k] <= b[k] for k in keys) and any(a[k] < b[k] for k in keys)

    return [
        p
        for p in points
        if not any(dominates(q, p) for q in points if q["density"] == p["density"])
    ]


def stored_density(cm: CompressedModel) -> float:
    """Nonzero fraction of the artifact's LSTM weights (the densest a sweep can ask for)."""
    matrices = [m for b in lstm_blocks(cm) for m in b.matrices.values()]
    return sum(m.nonzeros for m in matrices) / sum(m.shape[0] * m.shape[1] for m in matrices)


def sweep(
    cm: CompressedModel,
    config: SimConfig,
    frames: int,
    pes: Sequence[int],
    bandwidths: Sequence[float],
    densities: Sequence[float],
) -> dict[str, Any]:
    """Time every (PEs, bandwidth, density) combination; returns points and the Pareto front."""
    stored = stored_density(cm)
    for density in densities:
        if not 0 < density <= stored * (1 + DENSITY_TOLERANCE):
            raise InputError(
                f"sweep density {density}: expected a value in (0, {stored:.4f}], the artifact's "
                "density (pruned weights cannot come back)"
            )
    layers = [ly for b in lstm_blocks(cm) for ly in layer_structures(b)]
    dense_weights = sum(m.shape[0] * m.shape[1] for ly in layers for m in ly.matrices)
    points = []
    per_matrix = isinstance(cm.settings.get("density"), dict)  # compress --matrix-density etc.
    for density in densities:
        for num_pes in pes:
            pruned = repartition(
                layers, density, num_pes, relative_to=stored if per_matrix else None
            )
            useful = sum(int((m.to_dense() != 0).sum()) for ly in pruned for m in ly.matrices)
            for bandwidth in bandwidths:
                point_config = config.replace(
                    pes_per_channel=num_pes, memory_bandwidth_gbs=bandwidth
                )
                timing = simulate_timing(pruned, point_config, frames)
                cycles = float(timing.frame_done[-1] - timing.frame_done[0]) / max(frames - 1, 1)
                cycles = cycles if frames > 1 else float(timing.frame_done[0])
                points.append(
                    {
                        "density": density,
                        "pes_per_channel": num_pes,
                        "total_pes": num_pes,
                        "memory_bandwidth_gbs": bandwidth,
                        "cycles_per_frame": cycles,
                        "weight_bytes_per_frame": timing.weight_bytes_per_frame,
                        "latency_us_per_frame": cycles / config.clock_mhz,
                        "pe_utilisation": useful / (cycles * num_pes),
                        "gops_dense_equivalent": 2
                        * dense_weights
                        * config.channels
                        / (cycles / config.clock_mhz * 1e-6)
                        / 1e9,
                    }
                )
    return {"points": points, "pareto_front": pareto_front(points)}
