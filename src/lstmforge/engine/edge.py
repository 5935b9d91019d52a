"""Quantization and dequantization at the engine's edges, compiled for the fast backend.

:func:`quantize_fast` gives exactly :func:`~lstmforge.engine.fixed_point.quantize`'s codes
and clamp count in one compiled pass: for a format with ``frac`` fractional bits (-32..48),
``v * 2.0**frac`` is the exact, correctly rounded ``ldexp(v, frac)`` (the factor is a normal
power of two), then ``floor(. + 0.5)``, the clamp to the code range in float and the count of
clamped values, as there. :func:`dequantize_fast` is ``codes * 2.0**-frac``: the codes (at most
32 bits) convert to float64 exactly and the power of two scales them exactly, as ``ldexp``.
"""

from __future__ import annotations

import numba
import numpy as np

from lstmforge.engine.fixed_point import QFormat, SaturationCounter
from lstmforge.errors import InputError


@numba.njit(cache=True)
def quantize_kernel(values, scale, lo, hi, codes):  # pragma: no cover - compiled
    """Codes of the float64 vector ``values`` into ``codes`` (round half up of
    ``values * scale``, clamped to ``[lo, hi]``): the clamp count and whether every value was
    finite (False: stopped there)."""
    clamps = 0
    for i in range(values.size):
        v = values[i]
        if not np.isfinite(v):
            return clamps, False
        scaled = np.floor(v * scale + 0.5)
        clamped = min(max(scaled, lo), hi)
        clamps += clamped != scaled
        codes[i] = np.int64(clamped)
    return clamps, True


_CONSTANTS: dict[QFormat, tuple[float, float, float, float]] = {}


def edge_constants(fmt: QFormat) -> tuple[float, float, float, float]:
    """``(2**frac, min code, max code, 2**-frac)`` of a format, as floats (kept per format)."""
    constants = _CONSTANTS.get(fmt)
    if constants is None:
        constants = (2.0**fmt.frac, float(fmt.min_code), float(fmt.max_code), 2.0**-fmt.frac)
        _CONSTANTS[fmt] = constants
    return constants


def quantize_fast(
    x: np.ndarray, fmt: QFormat, counter: SaturationCounter | None = None, site: str = ""
) -> np.ndarray:
    """:func:`~lstmforge.engine.fixed_point.quantize` (same codes, count and error)."""
    values = np.asarray(x, dtype=np.float64)
    if not values.flags.c_contiguous:
        values = np.ascontiguousarray(values)
    codes = np.empty(values.shape, dtype=np.int64)
    scale, lo, hi, _ = edge_constants(fmt)
    clamps, finite = quantize_kernel(values.reshape(-1), scale, lo, hi, codes.reshape(-1))
    if not finite:
        raise InputError(f"{site or 'value'}: expected finite numbers, found NaN or infinity")
    if counter is not None:
        counter.record(site, clamps)
    return codes


def dequantize_fast(codes: np.ndarray, fmt: QFormat) -> np.ndarray:
    """:func:`~lstmforge.engine.fixed_point.dequantize` of integer codes (same float64
    values)."""
    return np.multiply(codes, edge_constants(fmt)[3], dtype=np.float64)
