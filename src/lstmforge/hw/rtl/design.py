"""The configured RTL design of one ESE channel: its units, their Verilog, their resources.

An ESE channel (Han et al., FPGA 2017, §5, Fig. 7) is ``num_pes`` sparse PEs fed by one
activation broadcast, plus the element-wise unit with its sigmoid/tanh units. A design is sized
either from a CompressedModel (the PE holds the largest per-PE share of any one matrix, as the
weights of the next matrix stream in from DRAM; one element-wise unit per recurrent layer,
with that layer's formats) or from bare parameters (the activation units of the given kind,
and an element-wise unit with the activation-input format for the cell and hidden state).

:func:`write_design` writes one Verilog module per unit; :func:`synthesize_design` adds Yosys
resource counts and the per-channel total ``num_pes * PE + one element-wise unit`` (the layers
run one after another on the same element-wise unit, which contains its own sigmoid/tanh
units; per-layer units differ only in their shift amounts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amaranth.lib import wiring

from lstmforge.compress.artifact import CompressedModel
from lstmforge.compress.csc import local_rows
from lstmforge.engine.activation_units import ActivationConfig, ActivationUnits
from lstmforge.engine.fixed_point import QFormat
from lstmforge.errors import InputError
from lstmforge.hw.rtl.activation_unit import build_activation_unit
from lstmforge.hw.rtl.elementwise_unit import CellFormats, ElementwiseUnit
from lstmforge.hw.rtl.sparse_pe import PEParams, SparsePE
from lstmforge.hw.rtl.synthesis import ResourceReport, synthesize
from lstmforge.hw.rtl.verilog_export import to_verilog
from lstmforge.io import atomic_path

RESOURCE_KEYS = ("cells", "luts", "ffs", "dsps", "bram36", "bram18", "lutram", "carry4")


@dataclass(frozen=True)
class RTLDesign:
    """One channel: ``num_pes`` PEs of geometry ``pe``, activation ``units``, and one
    element-wise unit per entry of ``cells`` (keyed by a module-name suffix)."""

    num_pes: int
    pe: PEParams
    units: ActivationUnits
    cells: dict[str, CellFormats]

    def components(self) -> dict[str, wiring.Component]:
        """Fresh Amaranth components, by Verilog module name."""
        parts: dict[str, wiring.Component] = {"sparse_pe": SparsePE(self.pe)}
        for function in ("sigmoid", "tanh"):
            parts[f"{function}_unit"] = build_activation_unit(function, self.units)
        for suffix, formats in self.cells.items():
            parts[f"elementwise_unit_{suffix}"] = ElementwiseUnit(formats, self.units)
        return parts

    def to_dict(self) -> dict:
        """The design's parameters as plain JSON values."""
        return {
            "num_pes": self.num_pes,
            "pe": {
                "rows": self.pe.rows,
                "cols": self.pe.cols,
                "entries": self.pe.entries,
                "weight_bits": self.pe.weight_bits,
                "index_bits": self.pe.index_bits,
                "act_bits": self.pe.act_bits,
                "acc_bits": self.pe.acc_bits,
            },
            "activation": self.units.config.to_dict(),
            "elementwise_units": {
                suffix: {
                    "cell": str(f.cell),
                    "hidden": str(f.hidden),
                    "partial_bits": f.partial_bits,
                    "peepholes": {k: str(v) for k, v in f.peepholes.items()},
                }
                for suffix, f in self.cells.items()
            },
        }


def design_from_model(cm: CompressedModel) -> RTLDesign:
    """Size a channel for every matrix and recurrent layer of ``cm`` (module docstring)."""
    matrices = [m for block in cm.blocks for m in block.matrices.values()]
    if not matrices:
        raise InputError("model: expected at least one compressed weight matrix")
    pre = cm.activation.input_format
    pe = PEParams(
        rows=max(local_rows(m.shape[0], cm.num_pes, 0) for m in matrices),
        cols=max(m.shape[1] for m in matrices),
        entries=max(1, max(max(m.entries_per_pe) for m in matrices)),
        pointer_bits=max(m.pointer_bits for m in matrices),
        weight_bits=max(m.fmt.bits for m in matrices),
        act_bits=max(cm.multiplied_bits(block) for block in cm.blocks),
    )
    cells = {}
    for b, block in enumerate(cm.blocks):
        if block.kind == "linear":
            continue
        projected = block.kind == "lstm" and block.config["proj_size"] > 0
        for k in range(block.config["num_layers"]):
            peepholes = {
                name: block.vectors[f"weight_{name}_l{k}"].fmt
                for name in ("ci", "cf", "co")
                if f"weight_{name}_l{k}" in block.vectors
            }
            cells[f"b{b}_l{k}"] = CellFormats(
                cell=block.formats[f"l{k}.cell"],
                hidden=cm.activation.output_format if projected else block.formats[f"l{k}.output"],
                partial_bits=partial_bits(pre),
                peepholes=peepholes,
            )
    return RTLDesign(cm.num_pes, pe, cm.activation_units(), cells)


def design_from_parameters(
    num_pes: int, rows: int, cols: int, entries: int, weight_bits: int, activation: ActivationConfig
) -> RTLDesign:
    """A channel of ``num_pes`` PEs of the given geometry and one peephole element-wise unit."""
    if num_pes < 1:
        raise InputError(f"--pes: expected a positive number of PEs, got {num_pes}")
    pre = activation.input_format
    pe = PEParams(rows=rows, cols=cols, entries=entries, weight_bits=weight_bits, act_bits=pre.bits)
    peephole = QFormat(weight_bits, weight_bits - 1)
    cell = CellFormats(
        cell=pre,
        hidden=pre,
        partial_bits=partial_bits(pre),
        peepholes={name: peephole for name in ("ci", "cf", "co")},
    )
    return RTLDesign(num_pes, pe, ActivationUnits(activation), {"l0": cell})


def partial_bits(pre: QFormat) -> int:
    """Width of a gate partial sum: two requantized SpMV results and the bias, all P codes."""
    return pre.bits + math.ceil(math.log2(3))


def write_design(design: RTLDesign, out_dir: str | Path) -> dict[str, Path]:
    """Write every unit of ``design`` as ``OUT/<module>.v``; returns the paths by module.

    All modules are converted before the first file is written, so a failure leaves nothing.
    """
    texts = {name: to_verilog(part, name) for name, part in design.components().items()}
    paths = {}
    for name, text in texts.items():
        path = Path(out_dir) / f"{name}.v"
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        paths[name] = path
    return paths


def synthesize_design(
    design: RTLDesign, progress: Callable[[str], None] | None = None
) -> dict[str, dict]:
    """Resource counts of every unit and of one channel (module docstring).

    ``progress``, when given, is called with each module name before it is synthesized.
    """
    reports: dict[str, ResourceReport] = {}
    for name, part in design.components().items():
        if progress is not None:
            progress(name)
        reports[name] = synthesize(to_verilog(part, name), name)
    channel_parts = {"sparse_pe": design.num_pes}
    cell_units = [name for name in reports if name.startswith("elementwise_unit_")]
    if cell_units:
        channel_parts[cell_units[0]] = 1
    channel = {
        key: sum(getattr(reports[name], key) * count for name, count in channel_parts.items())
        for key in RESOURCE_KEYS
    }
    return {
        "units": {name: report.to_dict() for name, report in reports.items()},
        "channel": {"composition": channel_parts, **channel},
    }
