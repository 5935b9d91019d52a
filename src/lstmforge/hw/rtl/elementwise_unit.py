"""The element-wise unit: peepholes, gate nonlinearities, cell update and hidden output.

ESE (Han et al., FPGA 2017, §5, Fig. 5 and 7) finishes each LSTM step in element-wise
multipliers and adders (ElemMul, ElemAdd) and the sigmoid/tanh units. This is the circuit of
:meth:`lstmforge.engine.integer_datapath.IntegerDatapath.cell`, one element per cycle, with P the
activation-input format, G the gate format, C the cell format and M the hidden format::

    s_i = sat_P(partial_i + rq_P(w_ci * c_{t-1}))      i = sigmoid(s_i)
    s_f = sat_P(partial_f + rq_P(w_cf * c_{t-1}))      f = sigmoid(s_f)
    s_g = sat_P(partial_g)                              g = tanh(s_g)
    c_t = sat_C(round(f * c_{t-1} >> G.frac) + round(i * g >> (2 G.frac - C.frac)))
    s_o = sat_P(partial_o + rq_P(w_co * c_t))           o = sigmoid(s_o)
    m_t = rq_M(o * tanh(rq_P(c_t)))

``partial`` is the exact sum of the requantized SpMV results and the bias (P codes, a few bits
wider than P). A peephole that the model lacks contributes nothing and has no input.

Pipeline: pre-activations (registered) -> sigmoid/tanh units -> cell update (registered) ->
output-gate pre-activation and tanh input (registered) -> sigmoid/tanh units -> hidden output
(registered). A new element can enter every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import Module, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmforge.engine.activation_units import ActivationUnits
from lstmforge.engine.fixed_point import QFormat, forget_shift, input_gate_shift
from lstmforge.errors import InputError
from lstmforge.hw.rtl.activation_unit import build_activation_unit
from lstmforge.hw.rtl.fixed_point_ops import requantize, saturate, shift_round

PEEPHOLES = ("ci", "cf", "co")


@dataclass(frozen=True)
class CellFormats:
    """Formats of one LSTM layer's element-wise unit (the P and G formats come from the
    activation units). ``peepholes`` maps ``"ci"``/``"cf"``/``"co"`` to the peephole vector's
    format (absent: no peephole); ``partial_bits`` is the width of the gate partial sums."""

    cell: QFormat
    hidden: QFormat
    partial_bits: int
    peepholes: dict[str, QFormat] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.peepholes) - set(PEEPHOLES)
        if unknown:
            raise InputError(f"cell peepholes: expected keys among {PEEPHOLES}, got {unknown}")


def delayed(m: Module, value: Value, cycles: int, name: str) -> Value:
    """``value`` seen ``cycles`` clock cycles later (a chain of registers)."""
    for stage in range(cycles):
        register = Signal.like(value, name=f"{name}_d{stage + 1}")
        m.d.sync += register.eq(value)
        value = register
    return value


class ElementwiseUnit(wiring.Component):
    """ESE's element-wise unit for one LSTM layer (§5), bit-exact with the engine's ``cell``.

    Members: ``x`` (stream of ``{i, f, g, o, c, w_ci?, w_cf?, w_co?}``: the four partial sums,
    the previous cell state and the peephole weights of one element; no backpressure) and ``y``
    (stream of ``{m, c}``: the hidden output and the new cell state, :attr:`latency` cycles later).
    """

    def __init__(self, formats: CellFormats, units: ActivationUnits) -> None:
        self.formats = formats
        self.units = units
        self.activation_units = {
            name: build_activation_unit(function, units)
            for name, function in (
                ("sig_i", "sigmoid"),
                ("sig_f", "sigmoid"),
                ("tanh_g", "tanh"),
                ("sig_o", "sigmoid"),
                ("tanh_c", "tanh"),
            )
        }
        self.unit_latency = self.activation_units["sig_i"].latency
        self.latency = 4 + 2 * self.unit_latency
        inputs = {gate: signed(formats.partial_bits) for gate in ("i", "f", "g", "o")}
        inputs["c"] = signed(formats.cell.bits)
        for name, fmt in formats.peepholes.items():
            inputs[f"w_{name}"] = signed(fmt.bits)
        outputs = {"m": signed(formats.hidden.bits), "c": signed(formats.cell.bits)}
        super().__init__(
            {
                "x": In(stream.Signature(data.StructLayout(inputs), always_ready=True)),
                "y": Out(stream.Signature(data.StructLayout(outputs), always_ready=True)),
            }
        )

    def _preactivation(
        self, partial: Value, weight: Value | None, peephole: str, c: Value
    ) -> Value:
        """``sat_P(partial + rq_P(w * c))``; without a peephole weight, ``sat_P(partial)``."""
        pre = self.units.config.input_format
        if weight is None:
            return saturate(partial, pre.bits)
        product_frac = self.formats.peepholes[peephole].frac + self.formats.cell.frac
        return saturate(
            partial + requantize(weight * c, product_frac, pre.frac, pre.bits), pre.bits
        )

    def _peephole_weight(self, payload: data.View, peephole: str) -> Value | None:
        """The ``w_<peephole>`` input, or None when the model has no such peephole."""
        return payload[f"w_{peephole}"] if peephole in self.formats.peepholes else None

    def elaborate(self, platform) -> Module:
        fmts, cfg = self.formats, self.units.config
        pre, gate, cell = cfg.input_format, cfg.output_format, fmts.cell
        lat = self.unit_latency
        m = Module()
        units = self.activation_units
        for name, unit in units.items():
            m.submodules[name] = unit

        # Stage 1: input-gate, forget-gate and cell-candidate pre-activations.
        x = self.x.payload
        for name, unit in (("i", units["sig_i"]), ("f", units["sig_f"]), ("g", units["tanh_g"])):
            peephole = f"c{name}"
            weight = self._peephole_weight(x, peephole)
            register = Signal(signed(pre.bits), name=f"s_{name}")
            m.d.sync += register.eq(self._preactivation(x[name], weight, peephole, x.c))
            m.d.comb += unit.x.payload.eq(register)
        stage1_valid = Signal()
        m.d.sync += stage1_valid.eq(self.x.valid)
        for name in ("sig_i", "sig_f", "tanh_g"):
            m.d.comb += units[name].x.valid.eq(stage1_valid)

        # Stage 2: the cell update, once i, f and g are out of their units.
        c_prev = delayed(m, x.c, 1 + lat, "c_prev")
        i, f, g = units["sig_i"].y.payload, units["sig_f"].y.payload, units["tanh_g"].y.payload
        c_new = Signal(signed(cell.bits))
        stage2_valid = Signal()
        m.d.sync += [
            c_new.eq(
                saturate(
                    shift_round(f * c_prev, forget_shift(gate))
                    + shift_round(i * g, input_gate_shift(gate, cell)),
                    cell.bits,
                )
            ),
            stage2_valid.eq(units["sig_i"].y.valid),
        ]

        # Stage 3: output-gate pre-activation (peephole on the new cell) and tanh input.
        partial_o = delayed(m, x.o, 2 + lat, "partial_o")
        weight_o = self._peephole_weight(x, "co")
        if weight_o is not None:
            weight_o = delayed(m, weight_o, 2 + lat, "w_co")
        s_o = Signal(signed(pre.bits))
        tanh_in = Signal(signed(pre.bits))
        stage3_valid = Signal()
        m.d.sync += [
            s_o.eq(self._preactivation(partial_o, weight_o, "co", c_new)),
            tanh_in.eq(requantize(c_new, cell.frac, pre.frac, pre.bits)),
            stage3_valid.eq(stage2_valid),
        ]
        m.d.comb += [
            units["sig_o"].x.payload.eq(s_o),
            units["tanh_c"].x.payload.eq(tanh_in),
            units["sig_o"].x.valid.eq(stage3_valid),
            units["tanh_c"].x.valid.eq(stage3_valid),
        ]

        # Stage 4: hidden output m = rq_M(o * tanh(c_t)), with c_t carried alongside.
        o, tanh_c = units["sig_o"].y.payload, units["tanh_c"].y.payload
        m.d.sync += [
            self.y.payload.m.eq(
                requantize(o * tanh_c, 2 * gate.frac, fmts.hidden.frac, fmts.hidden.bits)
            ),
            self.y.payload.c.eq(delayed(m, c_new, 1 + lat, "c_new")),
            self.y.valid.eq(units["sig_o"].y.valid),
        ]
        return m
