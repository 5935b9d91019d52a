"""The JSON objects the commands write (``--json``, the demo's ``summary.json``), recognised.

Each command writes one JSON object of its own shape; :func:`kind_of` tells them apart by the
fields only that command writes (:data:`SIGNATURES`), and :func:`load_run` reads one file into a
:class:`Run`, raising :class:`~lstmforge.errors.InputError` naming the file when it is missing,
not JSON, or not an object any lstmforge command writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmforge.errors import InputError

SIGNATURES: dict[str, frozenset[str]] = {
    "demo": frozenset({"per", "simulation", "training", "simulator_matches_engine"}),
    "compress": frozenset({"footprint", "pe_load", "activation_unit_error", "metrics"}),
    "simulate": frozenset({"cycles_per_frame", "pe_utilisation", "cycle_breakdown", "timeline"}),
    "sweep": frozenset({"points", "pareto_front"}),
    "speech-evaluate": frozenset({"per", "substitution_rate", "deletion_rate", "insertion_rate"}),
    "speech-profile": frozenset({"seconds", "share_percent", "lstm_share_percent"}),
    "emg-evaluate": frozenset({"subjects", "summary"}),
    "emg-stream": frozenset({"latency_mean_ms", "window_period_ms", "max_abs_diff_vs_offline"}),
    "nowcast-evaluate": frozenset({"results", "arch", "dataset"}),
    "export-c": frozenset({"prefix", "files", "memory_bytes"}),
    "rtl": frozenset({"design", "verilog"}),
}
"""Per kind (the command that writes it), the fields that identify its JSON object."""


@dataclass(frozen=True)
class Run:
    """One command's JSON output: ``name`` (for headings), its ``kind`` and the object."""

    name: str
    kind: str
    data: dict[str, Any]


def kind_of(data: Any) -> str | None:
    """The kind of a JSON value (see :data:`SIGNATURES`), or None when no command writes it."""
    if not isinstance(data, dict):
        return None
    return next((kind for kind, keys in SIGNATURES.items() if keys <= data.keys()), None)


def load_run(path: str | Path) -> Run:
    """Read one JSON file written by an lstmforge command."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: JSON file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    kind = kind_of(data)
    if kind is None:
        raise InputError(
            f"{path}: not the JSON output of an lstmforge command (expected the object written "
            f"by one of: {', '.join(SIGNATURES)})"
        )
    return Run(path.name, kind, data)
