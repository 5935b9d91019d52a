"""Configuration of the simulated ESE accelerator: one flat YAML mapping, validated.

The architecture follows Han et al., "ESE: Efficient Speech Recognition Engine with Sparse LSTM
on FPGA" (FPGA 2017), chapter 5: ``channels`` independent channels of ``pes_per_channel``
processing elements; per PE an activation FIFO of ``fifo_depth`` broadcast columns, a sparse
matrix buffer fed by the memory management unit, one multiply-accumulate per cycle, and
element-wise (ElemMul/ElemAdd) and activation units. ``weight_storage`` is ``stream`` (weights
read from off-chip memory every frame at ``memory_bandwidth_gbs``, shared by all channels, which
run in lockstep on their own utterances) or ``onchip`` (a resident copy of at most
``onchip_weight_kib``; loaded once). ``overlap_frames`` lets a PE run on into the next frame's
(double-buffered) input columns while the current frame's projection finishes; without it a
frame starts only when the previous frame's outputs are all written.

A configuration file may start from a shipped preset (``preset: ese-ku060``) and override some
fields; every field must end up set, and unknown fields are rejected.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lstmforge.errors import InputError

PRESET_DIR = Path(__file__).with_name("presets")
WEIGHT_STORAGE = ("stream", "onchip")


@dataclass(frozen=True)
class SimConfig:
    """One accelerator configuration (field meanings: docs/simulator.md, "Configuration")."""

    clock_mhz: float
    channels: int
    pes_per_channel: int
    weight_bits: int
    index_bits: int
    pointer_bits: int
    activation_bits: int
    fifo_depth: int
    overlap_frames: bool
    weight_storage: str
    onchip_weight_kib: float
    weight_prefetch_columns: int
    memory_bandwidth_gbs: float
    memory_latency_cycles: int
    mac_latency: int
    elem_mul_latency: int
    elem_add_latency: int
    activation_latency: int
    buffer_write_latency: int
    elem_mul_units: int
    elem_add_units: int
    activation_units: int

    @property
    def bytes_per_cycle(self) -> float:
        """Sustained off-chip bandwidth in bytes per clock cycle."""
        return self.memory_bandwidth_gbs * 1e9 / (self.clock_mhz * 1e6)

    @property
    def entry_bits(self) -> int:
        """Bits of one stored sparse-matrix entry (weight code + relative index)."""
        return self.weight_bits + self.index_bits

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with some fields changed, validated again."""
        return from_mapping({**dataclasses.asdict(self), **changes}, source="override")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain mapping (what a YAML config file holds)."""
        return dataclasses.asdict(self)


_INT_MIN = {
    "channels": 1,
    "pes_per_channel": 1,
    "weight_bits": 2,
    "index_bits": 1,
    "pointer_bits": 1,
    "activation_bits": 2,
    "fifo_depth": 1,
    "weight_prefetch_columns": 1,
    "memory_latency_cycles": 0,
    "mac_latency": 0,
    "elem_mul_latency": 0,
    "elem_add_latency": 0,
    "activation_latency": 0,
    "buffer_write_latency": 0,
    "elem_mul_units": 1,
    "elem_add_units": 1,
    "activation_units": 1,
}
_POSITIVE_FLOAT = ("clock_mhz", "memory_bandwidth_gbs")


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: simulator config file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    return data


def load_preset(name: str) -> SimConfig:
    """The shipped preset ``name`` (e.g. ``"ese-ku060"``)."""
    if name not in preset_names():
        raise InputError(f"unknown simulator preset {name!r}; expected one of {preset_names()}")
    path = PRESET_DIR / f"{name}.yaml"
    return from_mapping(_read_yaml(path), source=str(path))


def load_config(path: str | Path) -> SimConfig:
    """Read a YAML config file; ``preset: NAME`` in it supplies the fields it does not set."""
    path = Path(path)
    data = _read_yaml(path)
    base = data.pop("preset", None)
    if base is not None:
        if not isinstance(base, str):
            raise InputError(f"{path}: field 'preset' must be a preset name, got {base!r}")
        data = {**load_preset(base).to_dict(), **data}
    return from_mapping(data, source=str(path))


def from_mapping(data: dict[str, Any], source: str) -> SimConfig:
    """Validate a mapping of fields into a :class:`SimConfig`; errors name ``source`` and field."""
    names = [f.name for f in dataclasses.fields(SimConfig)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise InputError(f"{source}: unknown config field(s) {unknown}; expected fields {names}")
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError(f"{source}: missing config field(s) {missing}")
    values: dict[str, Any] = {}
    for name, minimum in _INT_MIN.items():
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InputError(
                f"{source}: field {name!r} must be an integer >= {minimum}, got {value!r}"
            )
        values[name] = value
    for name in (*_POSITIVE_FLOAT, "onchip_weight_kib"):
        value = data[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise InputError(f"{source}: field {name!r} must be a finite number, got {value!r}")
        if name in _POSITIVE_FLOAT and not value > 0:
            raise InputError(f"{source}: field {name!r} must be > 0, got {value!r}")
        if value < 0:
            raise InputError(f"{source}: field {name!r} must be >= 0, got {value!r}")
        values[name] = float(value)
    if data["weight_storage"] not in WEIGHT_STORAGE:
        raise InputError(
            f"{source}: field 'weight_storage' must be one of {list(WEIGHT_STORAGE)}, "
            f"got {data['weight_storage']!r}"
        )
    values["weight_storage"] = data["weight_storage"]
    if not isinstance(data["overlap_frames"], bool):
        raise InputError(
            f"{source}: field 'overlap_frames' must be true or false, got {data['overlap_frames']!r}"
        )
    values["overlap_frames"] = data["overlap_frames"]
    if values["weight_storage"] == "onchip" and values["onchip_weight_kib"] == 0:
        raise InputError(f"{source}: weight_storage 'onchip' needs onchip_weight_kib > 0")
    if values["index_bits"] > 8:
        raise InputError(f"{source}: field 'index_bits' must be <= 8 (uint8 relative indices)")
    return SimConfig(**values)
