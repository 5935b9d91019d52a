"""Per-layer trace and diff: where two back ends (or modes) first disagree.

``trace_run`` records every signal of a run (block input, gate values i/f/g/o, cell state,
layer output, per time step) as float64 in computation order. ``trace_diff`` runs two
configurations on the same artifact and input and reports the first (step, signal) whose values
differ by more than ``atol``, plus the largest difference per signal — the tool hls4ml users
ask for when "emulation != framework".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lstmforge.compress.artifact import CompressedModel
from lstmforge.engine.runner import run


def trace_run(
    cm: CompressedModel, x: Any, state: Any = None, *, mode: str = "integer", backend: str = "fast"
) -> list[tuple[int, str, np.ndarray]]:
    """Every signal of one run as ``(step, site, values)``, in computation order."""
    trace: list[tuple[int, str, np.ndarray]] = []
    run(cm, x, state, mode=mode, backend=backend, trace=trace)
    return trace


@dataclass
class TraceDiff:
    """Result of :func:`trace_diff`.

    ``first``: ``(step, site, max abs difference)`` of the first disagreement, or None;
    ``per_signal``: the largest difference per site over all steps.
    """

    first: tuple[int, str, float] | None
    per_signal: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        first = None
        if self.first is not None:
            first = {"step": self.first[0], "signal": self.first[1], "max_abs_diff": self.first[2]}
        return {"first_disagreement": first, "max_abs_diff_per_signal": self.per_signal}


def trace_diff(
    cm: CompressedModel,
    x: Any,
    a: dict[str, str],
    b: dict[str, str],
    state: Any = None,
    atol: float = 0.0,
) -> TraceDiff:
    """Compare two runs, e.g. ``a={"backend": "reference"}``, ``b={"backend": "fast"}`` or
    ``a={"mode": "integer"}``, ``b={"mode": "float-sparse"}`` (see :func:`trace_run`)."""
    left, right = trace_run(cm, x, state, **a), trace_run(cm, x, state, **b)
    by_key = {(step, site): values for step, site, values in right}
    first, per_signal = None, {}
    for step, site, values in left:
        other = by_key.get((step, site))
        diff = (
            np.inf
            if other is None or other.shape != values.shape
            else float(np.max(np.abs(values - other), initial=0.0))
        )
        per_signal[site] = max(per_signal.get(site, 0.0), diff)
        if first is None and diff > atol:
            first = (step, site, diff)
    return TraceDiff(first, per_signal)
