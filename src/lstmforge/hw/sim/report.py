"""The simulator's result: a dataclass whose ``to_dict()`` is the ``--json`` object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SimReport:
    """Figures of one simulation (units in the field names; per-PE lists indexed by PE).

    ``outputs`` (float, [channels, frames, outputs]) is what the channels computed and
    ``final_state`` the recurrent state after the last frame (the layout of
    :func:`lstmforge.engine.run`); neither is part of :meth:`to_dict`.
    """

    config: dict[str, Any]
    model: dict[str, Any]
    frames: int
    channels: int
    cycles_per_utterance: int
    cycles_per_frame: float
    first_frame_cycles: int
    latency_us_per_frame: float
    latency_us_per_utterance: float
    gops_sparse: float
    gops_dense_equivalent: float
    frames_per_second: float
    pe_utilisation_mean: float
    pe_utilisation: list[float]
    cycle_breakdown: dict[str, float]  # fraction of PE-cycles, summing to 1
    stall_cycles_per_pe: dict[str, list[int]]
    memory: dict[str, float]
    buffers: dict[str, float]
    energy_j_per_frame: dict[str, float]
    power_w: float
    saturations: dict[str, int]
    timeline: list[dict[str, Any]]
    timeline_frame: int
    outputs: np.ndarray | None = field(default=None, repr=False)
    final_state: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Every figure as plain JSON values (numbers, lists, dicts), without ``outputs``."""
        data = dataclasses.asdict(self)
        data.pop("outputs")
        data.pop("final_state")
        return data
