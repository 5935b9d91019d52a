"""Fixed-point arithmetic of the datapath: the one definition of formats, rounding and saturation.

The engine (reference and fast paths), the cycle-level simulator and the RTL all use these
functions, so that they agree bit for bit (see ``docs/fixed-point.md``).

Rules
-----
* A format ``Q(bits, frac)`` is a two's-complement integer of ``bits`` bits whose value is
  ``code * 2**-frac``; it is written Qm.n with m = bits - frac integer bits including the sign.
  ``frac`` may exceed ``bits`` (small weights) or be negative (large values).
* **Rounding** is round-half-up everywhere: a right shift by s > 0 is ``(x + 2**(s-1)) >> s``
  with an arithmetic shift (toward -inf), so ties go toward +inf; a left shift is exact.
  Float values entering the datapath are rounded the same way: ``floor(x * 2**frac + 0.5)``.
* **Saturation** clamps to ``[-2**(bits-1), 2**(bits-1) - 1]``; there is no wrap-around.
* **Products** of a weight code and an activation code are exact; they are added into a
  32-bit accumulator that saturates after every addition (:func:`saturating_add`), in the
  order the hardware sees them (CSC column order, see ``docs/fixed-point.md``).
* **Requantization** (:func:`requantize`) moves a value from one fractional width to another
  with round-half-up and then saturates to the target width.
* **Shift amounts** of the datapath (accumulator rescale, the LSTM cell's products) are defined
  once here (:func:`rescale_shift`, :func:`product_shift`, :func:`matvec_shift`,
  :class:`LSTMShifts`); the engine, its compiled kernels and the C export all take them from here.

Every function works on Python ints, NumPy int64 scalars and int64 arrays alike. The optional
:class:`SaturationCounter` records how many values were clamped at each named site, so a user
sees when a format is too narrow.

References: ESE (Han et al., FPGA 2017) §4 (12-bit weights, 16-bit activations); the Q
notation of TI's fixed-point guides; EIE (Han et al., ISCA 2016) for the 4-bit index encoding.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from lstmforge.errors import InputError

ACCUMULATOR_BITS = 32


@dataclass(frozen=True)
class QFormat:
    """A two's-complement fixed-point format of ``bits`` bits with ``frac`` fractional bits."""

    bits: int
    frac: int

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 2 <= self.bits <= 32:
            raise InputError(
                f"fixed-point format: bits must be an integer in 2..32, got {self.bits}"
            )
        if not isinstance(self.frac, int) or not -32 <= self.frac <= 48:
            raise InputError(
                f"fixed-point format: frac must be an integer in -32..48, got {self.frac}"
            )

    @property
    def min_code(self) -> int:
        """The most negative code, -2**(bits-1)."""
        return -(1 << (self.bits - 1))

    @property
    def max_code(self) -> int:
        """The most positive code, 2**(bits-1) - 1."""
        return (1 << (self.bits - 1)) - 1

    @property
    def scale(self) -> float:
        """The value of one code step, 2**-frac."""
        return math.ldexp(1.0, -self.frac)

    @property
    def max_value(self) -> float:
        """The largest representable value."""
        return self.max_code * self.scale

    def __str__(self) -> str:
        return f"Q{self.bits - self.frac}.{self.frac}"

    def to_dict(self) -> dict[str, int]:
        """``{"bits": ..., "frac": ...}`` for the manifest."""
        return {"bits": self.bits, "frac": self.frac}

    @classmethod
    def from_dict(cls, data: dict, where: str = "format") -> QFormat:
        """Inverse of :meth:`to_dict`; a malformed entry is an :class:`InputError`."""
        if (
            not isinstance(data, dict)
            or set(data) != {"bits", "frac"}
            or not all(type(data[key]) is int for key in ("bits", "frac"))
        ):
            raise InputError(f"{where}: expected {{'bits': int, 'frac': int}}, got {data!r}")
        return cls(data["bits"], data["frac"])


def format_for_range(max_abs: float, bits: int) -> QFormat:
    """The format of ``bits`` bits with the most fractional bits that still holds ``max_abs``.

    Integer bits (without sign) m = floor(log2(max_abs)) + 1, so frac = bits - 1 - m; a range of
    zero gets frac = bits - 1 (Q1.(bits-1)).
    """
    if not math.isfinite(max_abs) or max_abs < 0:
        raise InputError(f"fixed-point range: expected a finite magnitude >= 0, got {max_abs}")
    if max_abs == 0.0:
        return QFormat(bits, bits - 1)
    integer_bits = math.floor(math.log2(max_abs)) + 1
    return QFormat(bits, min(max(bits - 1 - integer_bits, -32), 48))


class SaturationCounter(Counter):
    """Number of values clamped by saturation, per named site (e.g. ``"l0.cell"``)."""

    def record(self, site: str, count: int) -> None:
        """Add ``count`` clamped values at ``site`` (zero counts are kept, so sites show up)."""
        self[site] += int(count)


def saturate(x, bits: int, counter: SaturationCounter | None = None, site: str = ""):
    """Clamp ``x`` to the signed ``bits``-bit range (no wrap-around)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    clamped = np.minimum(np.maximum(x, lo), hi)
    if counter is not None:
        counter.record(site, np.count_nonzero(clamped != x))
    return clamped


def shift_round(x, shift: int):
    """Multiply ``x`` by 2**-shift: round-half-up right shift for shift > 0, exact left shift.

    Right shifts of 64 bits or more round every int64 code to 0 (|x| < 2**63 <= 2**(shift - 1));
    they are answered directly, since the rounding half 2**(shift - 1) does not fit int64."""
    if shift > 0:
        if shift >= 64 and isinstance(x, (np.ndarray, np.integer)):
            return np.zeros_like(x)
        return (x + (1 << (shift - 1))) >> shift
    return x << (-shift)


def requantize(
    x,
    from_frac: int,
    to: QFormat,
    counter: SaturationCounter | None = None,
    site: str = "",
):
    """Convert codes with ``from_frac`` fractional bits to format ``to`` (round, then saturate)."""
    return rescale(x, rescale_shift(from_frac, to), to, counter, site)


def rescale(
    x,
    shift: int,
    to: QFormat,
    counter: SaturationCounter | None = None,
    site: str = "",
):
    """Shift ``x`` right by ``shift`` bits (round half up; left when negative), then saturate to
    the width of ``to``: :func:`requantize` with the shift already worked out."""
    return saturate(shift_round(x, shift), to.bits, counter, site)


# --- shift amounts -------------------------------------------------------------------------
# Every shift the datapath applies is "fraction of the exact value minus fraction of the
# destination" (docs/fixed-point.md, "Rounding and saturation": requantize). The named rules
# below are the instances of it; the engine, its compiled kernels and the C export use them.


def rescale_shift(from_frac: int, to: QFormat) -> int:
    """The right shift that moves codes with ``from_frac`` fractional bits into ``to``:
    ``from_frac - to.frac`` (docs/fixed-point.md, ``requantize(x, from_frac, to_format)``)."""
    return from_frac - to.frac


def product_shift(a: QFormat, b: QFormat, to: QFormat) -> int:
    """The shift that brings an exact product of an ``a`` code and a ``b`` code into ``to``:
    ``a.frac + b.frac - to.frac`` (docs/fixed-point.md: products are exact, then ``rq_F``)."""
    return rescale_shift(a.frac + b.frac, to)


def matvec_shift(weight: QFormat, src: QFormat, dst: QFormat) -> int:
    """The accumulator rescale of ``y = W v``: ``W.frac + v.frac - dst.frac``
    (docs/fixed-point.md, "Sparse matrix × vector", step 4)."""
    return product_shift(weight, src, dst)


def peephole_shift(peephole: QFormat, cell: QFormat, pre: QFormat) -> int:
    """The peephole term ``rq_P(w_c * c)``: ``peephole.frac + C.frac - P.frac``
    (docs/fixed-point.md, "The LSTM cell")."""
    return product_shift(peephole, cell, pre)


def forget_shift(gate: QFormat) -> int:
    """``f * c_{t-1}`` (G × C) back into C: ``G.frac + C.frac - C.frac = G.frac``
    (docs/fixed-point.md, "The LSTM cell": ``shift_round(f * c_{t-1}, G.frac)``)."""
    return gate.frac


def input_gate_shift(gate: QFormat, cell: QFormat) -> int:
    """``i * g`` (G × G) into C: ``2·G.frac - C.frac``
    (docs/fixed-point.md, "The LSTM cell": ``shift_round(i * g, 2·G.frac − C.frac)``)."""
    return product_shift(gate, gate, cell)


def cell_to_pre_shift(cell: QFormat, pre: QFormat) -> int:
    """``c_t`` into the tanh unit's input ``rq_P(c_t)``: ``C.frac - P.frac``
    (docs/fixed-point.md, "The LSTM cell")."""
    return rescale_shift(cell.frac, pre)


def hidden_shift(gate: QFormat, hidden: QFormat) -> int:
    """``o * tanh(c_t)`` (G × G) into the hidden format: ``2·G.frac - M.frac``
    (docs/fixed-point.md, "The LSTM cell": ``m_t = rq_M(o * tanh_unit(rq_P(c_t)))``)."""
    return product_shift(gate, gate, hidden)


@dataclass(frozen=True)
class LSTMShifts:
    """The constant shifts of one LSTM layer's element-wise unit (docs/fixed-point.md,
    "The LSTM cell"), worked out from its formats by :meth:`from_formats`.

    ``peepholes``: the ci, cf, co shifts (:func:`peephole_shift`; None where the layer has no
    such peephole); ``forget``: :func:`forget_shift`; ``input_gate``: :func:`input_gate_shift`;
    ``cell_to_pre``: :func:`cell_to_pre_shift`; ``hidden``: :func:`hidden_shift`.
    """

    peepholes: tuple[int | None, int | None, int | None]
    forget: int
    input_gate: int
    cell_to_pre: int
    hidden: int

    def applied(self) -> list[int]:
        """Every shift the unit applies: those of the peepholes it has, then the forget,
        input-gate, cell-to-P and hidden shifts."""
        present = [s for s in self.peepholes if s is not None]
        return [*present, self.forget, self.input_gate, self.cell_to_pre, self.hidden]

    @classmethod
    def from_formats(
        cls,
        pre: QFormat,
        gate: QFormat,
        cell: QFormat,
        hidden: QFormat,
        peepholes: tuple[QFormat | None, QFormat | None, QFormat | None] = (None, None, None),
    ) -> LSTMShifts:
        """The shifts for activation-input format ``pre`` (P), gate format ``gate`` (G), cell
        format ``cell`` (C), hidden format ``hidden`` (M) and the ci, cf, co peephole formats."""
        return cls(
            peepholes=tuple(
                None if fmt is None else peephole_shift(fmt, cell, pre) for fmt in peepholes
            ),
            forget=forget_shift(gate),
            input_gate=input_gate_shift(gate, cell),
            cell_to_pre=cell_to_pre_shift(cell, pre),
            hidden=hidden_shift(gate, hidden),
        )


def multiply(a, a_frac: int, b, b_frac: int, to: QFormat, counter=None, site: str = ""):
    """Element-wise product of two code arrays, rounded and saturated into ``to``."""
    return requantize(np.asarray(a, np.int64) * b, a_frac + b_frac, to, counter, site)


def saturating_add(acc, product, bits: int = ACCUMULATOR_BITS):
    """One accumulator step: ``acc + product`` clamped to ``bits`` bits (the PE's adder)."""
    return saturate(acc + product, bits)


def quantize(x, fmt: QFormat, counter: SaturationCounter | None = None, site: str = ""):
    """Float values to codes of ``fmt``: round half up, then saturate. NaN is an InputError."""
    values = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(f"{site or 'value'}: expected finite numbers, found NaN or infinity")
    scaled = np.floor(np.ldexp(values, fmt.frac) + 0.5)
    # clamp in float first so huge values cannot overflow int64, then count on the float side
    clamped = np.clip(scaled, fmt.min_code, fmt.max_code)
    if counter is not None:
        counter.record(site, np.count_nonzero(clamped != scaled))
    return clamped.astype(np.int64)


def dequantize(codes, fmt: QFormat) -> np.ndarray:
    """Codes of ``fmt`` to float64 values (exact)."""
    return np.ldexp(np.asarray(codes, dtype=np.float64), -fmt.frac)
