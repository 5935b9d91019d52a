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
        if not isinstance(data, dict) or set(data) != {"bits", "frac"}:
            raise InputError(f"{where}: expected {{'bits': int, 'frac': int}}, got {data!r}")
        return cls(int(data["bits"]), int(data["frac"]))


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
    """Multiply ``x`` by 2**-shift: round-half-up right shift for shift > 0, exact left shift."""
    if shift > 0:
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
    return saturate(shift_round(x, from_frac - to.frac), to.bits, counter, site)


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
