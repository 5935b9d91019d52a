"""The fixed-point rules of docs/fixed-point.md as hardware: saturate, round-half-up shift, requantize.

These are the circuits for the operations :mod:`lstmforge.engine.fixed_point` defines in Python
(the golden model the tests compare against): saturation clamps instead of wrapping, a right
shift by s > 0 adds 2**(s-1) and shifts arithmetically (ties toward +inf), a left shift is
exact. They build the PE's accumulator adder and the requantization of ESE's element-wise and
activation units (Han et al., FPGA 2017, §5).
"""

from __future__ import annotations

from amaranth.hdl import Mux, Value


def saturate(value: Value, bits: int) -> Value:
    """``value`` clamped to ``[-2**(bits-1), 2**(bits-1) - 1]``, as a signed ``bits``-bit value."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    clamped = Mux(value > hi, hi, Mux(value < lo, lo, value))
    return clamped.as_signed()[:bits].as_signed()


def shift_round(value: Value, shift: int) -> Value:
    """``value * 2**-shift``: round-half-up arithmetic right shift (shift > 0), exact left shift."""
    if shift > 0:
        return (value + (1 << (shift - 1))) >> shift
    return value << -shift


def requantize(value: Value, from_frac: int, to_frac: int, bits: int) -> Value:
    """Move ``value`` from ``from_frac`` to ``to_frac`` fractional bits, then saturate to ``bits``."""
    return saturate(shift_round(value, from_frac - to_frac), bits)
