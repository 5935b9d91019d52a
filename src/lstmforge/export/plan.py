"""What the C export computes: a CompressedModel checked and lowered to per-operation constants.

The generated C (``docs/export-c.md``) is a fixed runtime (:mod:`lstmforge.export.c_runtime`)
driven by descriptors; this module derives those descriptors from the artifact, following the
engine's dataflow (:mod:`lstmforge.engine.blocks`) and arithmetic
(:mod:`lstmforge.engine.integer_datapath`, ``docs/fixed-point.md``):

* an SpMV into format F requantizes its 32-bit accumulator by ``W.frac + v.frac - F.frac``
  (:func:`~lstmforge.engine.fixed_point.matvec_shift`);
* the LSTM cell uses the shifts ``peephole.frac + C.frac - P.frac`` (peepholes),
  ``2 G.frac - C.frac`` (i * g), ``C.frac - P.frac`` (c_t into the tanh unit) and
  ``2 G.frac - M.frac`` (o * tanh(c_t)) (:class:`~lstmforge.engine.fixed_point.LSTMShifts`);
* between blocks, codes move from one block's output format to the next block's input format
  as the engine's dequantize-then-quantize does: a requantization (round half up, saturate,
  :func:`~lstmforge.engine.fixed_point.rescale_shift`).

The shift amounts are taken from :mod:`lstmforge.engine.fixed_point`, the same functions the
engine and its compiled kernels use; this module only checks that they fit the C datapath.

Everything the C datapath cannot hold is rejected with an :class:`InputError`: ConvLSTM blocks,
formats wider than 16 bits, chains whose sizes do not meet, shifts outside -31..62 (the range in
which the 64-bit intermediates of the runtime are exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmforge.compress.artifact import Block, CompressedModel, SparseMatrix
from lstmforge.engine.activation_units import ActivationConfig
from lstmforge.engine.fixed_point import (
    LSTMShifts,
    QFormat,
    forget_shift,
    matvec_shift,
    rescale_shift,
)
from lstmforge.errors import InputError

CODE_BITS = 16  # activations, states, weights, vectors and LUT entries travel as int16_t
SHIFT_RANGE = (-31, 62)


@dataclass(frozen=True)
class MatrixPlan:
    """One SpMV: the matrix (block ``block``, name ``name``) and its requantization."""

    block: int
    name: str
    matrix: SparseMatrix
    shift: int  # accumulator frac minus destination frac
    bits: int  # destination width


@dataclass(frozen=True)
class LayerPlan:
    """One LSTM/LSTMP layer: its matrices, vectors and the cell's constant shifts."""

    block: int
    layer: int
    hidden: int
    out_size: int  # P with projection, else H
    w_ih: MatrixPlan
    w_hh: MatrixPlan
    w_hr: MatrixPlan | None
    bias: str | None  # vector names in the block, or None when absent
    peepholes: tuple[str | None, str | None, str | None]  # ci, cf, co
    peephole_shifts: tuple[int, int, int]
    cell: QFormat
    output: QFormat
    ig_shift: int
    cell_to_pre_shift: int
    hidden_shift: int
    hidden_bits: int


@dataclass(frozen=True)
class BlockPlan:
    """One block of the chain, with the requantization of its input from the block before.

    ``input_shift`` is None when the input arrives in the block's own input format (first
    block, or equal formats): the codes are used as they are.
    """

    index: int
    block: Block
    in_size: int
    out_size: int
    input_shift: int | None
    layers: list[LayerPlan]  # LSTM blocks
    linear: MatrixPlan | None  # linear blocks


@dataclass(frozen=True)
class ExportPlan:
    """The whole model as the C code runs it (see the module docstring).

    ``activation_kind``: ``"lut"``, ``"lut_interpolated"`` or ``"plan"`` (None without LSTM
    layers); ``tables``: the LUT contents (G codes) of LUT units.
    """

    blocks: list[BlockPlan]
    num_pes: int
    activation: ActivationConfig
    tables: dict[str, np.ndarray]
    input_format: QFormat
    output_format: QFormat

    @property
    def pre(self) -> QFormat:
        return self.activation.input_format

    @property
    def gate(self) -> QFormat:
        return self.activation.output_format

    @property
    def activation_kind(self) -> str | None:
        if not self.layers:
            return None
        if self.activation.kind == "plan":
            return "plan"
        return "lut_interpolated" if self.activation.interpolate else "lut"

    @property
    def matrices(self) -> list[MatrixPlan]:
        out = []
        for b in self.blocks:
            for layer in b.layers:
                out += [m for m in (layer.w_ih, layer.w_hh, layer.w_hr) if m is not None]
            if b.linear is not None:
                out.append(b.linear)
        return out

    @property
    def layers(self) -> list[LayerPlan]:
        return [layer for b in self.blocks for layer in b.layers]


def _shift(value: int, what: str) -> int:
    lo, hi = SHIFT_RANGE
    if not lo <= value <= hi:
        raise InputError(
            f"export-c: {what} needs a shift of {value} bits; the C datapath supports {lo}..{hi}"
        )
    return value


def _narrow(fmt: QFormat, what: str) -> QFormat:
    if fmt.bits > CODE_BITS:
        raise InputError(
            f"export-c: {what} is {fmt.bits} bits wide; the C datapath holds at most {CODE_BITS}"
        )
    return fmt


def _matrix(block: Block, index: int, name: str, src: QFormat, dst: QFormat) -> MatrixPlan:
    matrix = block.matrices[name]
    where = f"block {index} {name}"
    _narrow(matrix.fmt, f"{where} weights")
    shift = _shift(matvec_shift(matrix.fmt, src, dst), f"{where} requantization")
    return MatrixPlan(index, name, matrix, shift, _narrow(dst, f"{where} destination").bits)


def _layer(block: Block, index: int, k: int, pre: QFormat, gate: QFormat) -> LayerPlan:
    config = block.config
    hidden, proj = config["hidden_size"], config["proj_size"]
    src = block.formats["input"] if k == 0 else block.formats[f"l{k - 1}.output"]
    out, cell = block.formats[f"l{k}.output"], block.formats[f"l{k}.cell"]
    where = f"block {index} layer {k}"
    for fmt, what in ((src, "input"), (out, "output"), (cell, "cell state")):
        _narrow(fmt, f"{where} {what}")
    vectors = block.vectors
    peepholes = tuple(
        name if name in vectors else None for name in (f"weight_c{g}_l{k}" for g in "ifo")
    )
    bias = f"bias_l{k}" if f"bias_l{k}" in vectors else None
    for name in filter(None, (bias, *peepholes)):
        _narrow(vectors[name].fmt, f"{where} {name}")
    hidden_fmt = gate if proj else out
    shifts = LSTMShifts.from_formats(
        pre, gate, cell, hidden_fmt, tuple(vectors[n].fmt if n else None for n in peepholes)
    )
    return LayerPlan(
        block=index,
        layer=k,
        hidden=hidden,
        out_size=proj or hidden,
        w_ih=_matrix(block, index, f"weight_ih_l{k}", src, pre),
        w_hh=_matrix(block, index, f"weight_hh_l{k}", out, pre),
        w_hr=_matrix(block, index, f"weight_hr_l{k}", gate, out) if proj else None,
        bias=bias,
        peepholes=peepholes,
        peephole_shifts=tuple(
            0 if name is None else _shift(value, f"{where} {name}")
            for name, value in zip(peepholes, shifts.peepholes, strict=True)
        ),
        cell=cell,
        output=out,
        ig_shift=_shift(shifts.input_gate, f"{where} i*g"),
        cell_to_pre_shift=_shift(shifts.cell_to_pre, f"{where} cell to tanh"),
        hidden_shift=_shift(shifts.hidden, f"{where} hidden output"),
        hidden_bits=hidden_fmt.bits,
    )


def _sizes(block: Block) -> tuple[int, int]:
    config = block.config
    if block.kind == "linear":
        return config["in_features"], config["out_features"]
    return config["input_size"], config["proj_size"] or config["hidden_size"]


def plan_export(cm: CompressedModel) -> ExportPlan:
    """Check that ``cm`` can run on the C datapath and derive its constants."""
    unsupported = [b for b in cm.blocks if b.kind not in ("lstm", "linear")]
    if unsupported:
        raise InputError(
            "export-c supports LSTM/LSTMP artifacts (with linear layers); block "
            f"{unsupported[0].name!r} is a {unsupported[0].kind} block"
        )
    if not cm.blocks:
        raise InputError("export-c: the artifact has no blocks")
    act = cm.activation
    pre = _narrow(act.input_format, "the activation-unit input format")
    gate = _narrow(act.output_format, "the activation-unit output format")
    _shift(forget_shift(gate), "f * c_{t-1} (the gate fraction)")
    tables = cm.activation_units().tables
    for name, table in tables.items():
        if table.size and (table.min() < gate.min_code or table.max() > gate.max_code):
            raise InputError(f"export-c: activation table {name} holds codes outside {gate}")
    blocks: list[BlockPlan] = []
    previous: QFormat | None = None
    for index, block in enumerate(cm.blocks):
        in_size, out_size = _sizes(block)
        fmt_in = _narrow(block.formats["input"], f"block {index} input")
        if blocks and blocks[-1].out_size != in_size:
            raise InputError(
                f"export-c: block {index} ({block.name!r}) reads {in_size} values but the block "
                f"before it writes {blocks[-1].out_size}"
            )
        input_shift = None
        if previous is not None and previous != fmt_in:
            input_shift = _shift(rescale_shift(previous.frac, fmt_in), f"block {index} input")
        if block.kind == "linear":
            out_fmt = _narrow(block.formats["output"], f"block {index} output")
            if "bias" in block.vectors:
                _narrow(block.vectors["bias"].fmt, f"block {index} bias")
            layers = []
            linear = _matrix(block, index, "weight", fmt_in, out_fmt)
        else:
            layers = [_layer(block, index, k, pre, gate) for k in range(block.config["num_layers"])]
            linear = None
        blocks.append(BlockPlan(index, block, in_size, out_size, input_shift, layers, linear))
        previous = block.output_format
    return ExportPlan(
        blocks=blocks,
        num_pes=cm.num_pes,
        activation=act,
        tables=tables,
        input_format=cm.blocks[0].formats["input"],
        output_format=cm.blocks[-1].output_format,
    )
