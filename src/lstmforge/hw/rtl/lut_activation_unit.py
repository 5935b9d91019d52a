"""Sigmoid/tanh lookup-table unit, optionally linearly interpolated (ESE §5's activation units).

ESE (Han et al., FPGA 2017, §5) computes sigmoid and tanh with lookup tables. This unit is the
circuit of :func:`lstmforge.engine.activation_units.lut_lookup`: the input code ``x`` (signed,
``bits`` wide) is offset to ``u = x + 2**(bits-1)`` (the sign bit inverted); the top
``index_bits`` bits of ``u`` address the table, the low ``s = bits - index_bits`` bits are the
remainder ``r``. Without interpolation the output is ``T[k]``; with it the table has one more
entry and the output is ``sat(T[k] + shift_round((T[k+1] - T[k]) * r, s))`` (one multiply, one
add). The table contents come from the model's activation-unit description; each ROM word holds
``T[k]`` and the slope ``T[k+1] - T[k]``, so one read port (one block RAM) serves a lookup.

Two pipeline stages: the table read (registered ROM port), then the interpolation (registered
output). A new input can enter every cycle; ``y.valid`` follows ``x.valid`` two cycles later.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lstmforge.engine.activation_units import ActivationConfig
from lstmforge.errors import InputError
from lstmforge.hw.rtl.fixed_point_ops import saturate, shift_round


class LUTActivationUnit(wiring.Component):
    """Table-based sigmoid or tanh unit (ESE §5), bit-exact with the engine's LUT unit.

    Members: ``x`` (input codes, no backpressure), ``y`` (output codes, two cycles later).
    """

    latency = 2

    def __init__(self, config: ActivationConfig, table: np.ndarray) -> None:
        if config.kind != "lut":
            raise InputError(f"activation kind: LUT unit built for kind {config.kind!r}")
        expected = (1 << config.index_bits) + int(config.interpolate)
        if np.shape(table) != (expected,):
            raise InputError(
                f"activation table: expected {expected} entries, got shape {list(np.shape(table))}"
            )
        out = config.output_format
        if int(np.min(table)) < out.min_code or int(np.max(table)) > out.max_code:
            raise InputError(f"activation table: entries must be codes of {out}")
        self.config = config
        self.table = np.asarray(table, dtype=np.int64)
        super().__init__(
            {
                "x": In(stream.Signature(signed(config.input_format.bits), always_ready=True)),
                "y": Out(stream.Signature(signed(out.bits), always_ready=True)),
            }
        )

    def elaborate(self, platform) -> Module:
        cfg = self.config
        bits, out_bits = cfg.input_format.bits, cfg.output_format.bits
        low_bits = bits - cfg.index_bits
        m = Module()
        bins = 1 << cfg.index_bits
        entry = data.StructLayout({"base": signed(out_bits), "slope": signed(out_bits + 1)})
        if cfg.interpolate:
            init = [
                {"base": int(base), "slope": int(after - base)}
                for base, after in zip(self.table[:-1], self.table[1:], strict=True)
            ]
        else:
            init = [{"base": int(base), "slope": 0} for base in self.table]
        m.submodules.table = table = Memory(shape=entry, depth=bins, init=init)

        # Stage 1: one table read (T[k] and T[k+1] - T[k] in one word); remainder travels along.
        offset = Signal(unsigned(bits))
        m.d.comb += offset.eq(self.x.payload.as_unsigned() ^ (1 << (bits - 1)))
        read = table.read_port()
        remainder = Signal(unsigned(low_bits))
        read_valid = Signal()
        m.d.comb += read.addr.eq(offset[low_bits:])
        m.d.sync += [remainder.eq(offset[:low_bits]), read_valid.eq(self.x.valid)]

        # Stage 2: interpolation (or the plain entry); registered output.
        if cfg.interpolate:
            step = shift_round(read.data.slope * remainder, low_bits)
            result = saturate(read.data.base + step, out_bits)
        else:
            result = read.data.base
        m.d.sync += [self.y.payload.eq(result), self.y.valid.eq(read_valid)]
        return m
