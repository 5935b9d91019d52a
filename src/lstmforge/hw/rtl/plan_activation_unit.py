"""Piecewise-linear (PLAN) sigmoid/tanh unit: shifts and adds, no table, no multiplier.

The circuit of :func:`lstmforge.engine.activation_units.plan_sigmoid` (PLAN: Amin, Curtis and
Hayes-Gill, IEE Proc. Circuits Devices Syst. 144(6), 1997), the table-free alternative to ESE's
lookup-table activation units (Han et al., FPGA 2017, §5). With ``a = |x|``:

    a >= 5:          y = 1
    2.375 <= a < 5:  y = a/32 + 0.84375
    1 <= a < 2.375:  y = a/8 + 0.625
    a < 1:           y = a/4 + 0.5,        and y(-x) = 1 - y(x);

each scaled term rounded half up into the output format. tanh(x) = 2 sigmoid(2x) - 1 reads the
same code with one fractional bit less and computes sigmoid one output bit finer.
One registered stage: ``y.valid`` follows ``x.valid`` one cycle later.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lstmforge.engine.activation_units import ActivationConfig
from lstmforge.errors import InputError
from lstmforge.hw.rtl.fixed_point_ops import saturate, shift_round


def plan_sigmoid(x: Value, input_frac: int, output_frac: int, output_bits: int) -> Value:
    """PLAN sigmoid of the signed code ``x`` (``input_frac`` fractional bits), saturated."""
    a = Mux(x < 0, -x, x)
    one = 1 << output_frac
    y = Mux(
        a >= (5 << input_frac),
        one,
        Mux(
            a * 8 >= (19 << input_frac),
            shift_round(a, input_frac + 5 - output_frac) + ((27 * one) >> 5),
            Mux(
                a >= (1 << input_frac),
                shift_round(a, input_frac + 3 - output_frac) + ((5 * one) >> 3),
                shift_round(a, input_frac + 2 - output_frac) + (one >> 1),
            ),
        ),
    )
    return saturate(Mux(x < 0, one - y, y), output_bits)


class PLANActivationUnit(wiring.Component):
    """PLAN sigmoid or tanh unit, bit-exact with the engine's ``kind="plan"`` units.

    Members: ``x`` (input codes, no backpressure), ``y`` (output codes, one cycle later).
    """

    latency = 1

    def __init__(self, config: ActivationConfig, function: str) -> None:
        if config.kind != "plan":
            raise InputError(f"activation kind: PLAN unit built for kind {config.kind!r}")
        if function not in ("sigmoid", "tanh"):
            raise InputError(f"activation function: expected 'sigmoid' or 'tanh', got {function!r}")
        self.config = config
        self.function = function
        super().__init__(
            {
                "x": In(stream.Signature(signed(config.input_format.bits), always_ready=True)),
                "y": Out(stream.Signature(signed(config.output_format.bits), always_ready=True)),
            }
        )

    def elaborate(self, platform) -> Module:
        fin, fout = self.config.input_format, self.config.output_format
        m = Module()
        x = self.x.payload
        if self.function == "sigmoid":
            result = plan_sigmoid(x, fin.frac, fout.frac, fout.bits)
        else:
            finer_bits = min(fout.bits + 2, 32)
            doubled = plan_sigmoid(x, fin.frac - 1, fout.frac + 1, finer_bits)
            result = saturate(doubled - (1 << fout.frac), fout.bits)
        m.d.sync += [self.y.payload.eq(result), self.y.valid.eq(self.x.valid)]
        return m
