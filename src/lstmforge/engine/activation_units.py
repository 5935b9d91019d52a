"""Hardware sigmoid and tanh units: lookup table (optionally interpolated) or PLAN.

Both take a code of the activation input format (default Q5.11, 16 bits) and return a code of
the gate format (default Q1.15). They are the only way the datapath computes a nonlinearity.

* **LUT**: the whole input range [-2**(m-1), 2**(m-1)) is cut into 2**index_bits equal bins;
  the bin index is the top ``index_bits`` bits of the offset code ``u = code + 2**(bits-1)``.
  Without interpolation the table holds f at each bin's centre. With interpolation the table
  holds f at the 2**index_bits + 1 bin edges and the unit returns
  ``T[k] + shift_round((T[k+1] - T[k]) * r, s)`` where r is the low s = bits - index_bits
  bits of u (one multiply, one add, round-half-up).
* **PLAN** (Amin, Curtis, Hayes-Gill, IEE Proc. Circuits Devices Syst. 144(6), 1997): the
  piecewise-linear sigmoid made of shifts and adds,

      |x| >= 5:          y = 1
      2.375 <= |x| < 5:  y = |x|/32 + 0.84375
      1 <= |x| < 2.375:  y = |x|/8 + 0.625
      |x| < 1:           y = |x|/4 + 0.5,        and y(-x) = 1 - y(x);

  tanh(x) = 2 sigmoid(2x) - 1 (2x is the same code read with one fractional bit less).

All arithmetic uses :mod:`lstmforge.engine.fixed_point` (round half up, saturation).
:func:`unit_error` reports the max and mean absolute error of a unit over its whole input range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmforge.engine.fixed_point import QFormat, quantize, requantize, saturate, shift_round
from lstmforge.errors import InputError

FUNCTIONS = {"sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "tanh": np.tanh}
KINDS = ("lut", "plan")


@dataclass(frozen=True)
class ActivationConfig:
    """How the sigmoid and tanh units are built.

    ``kind``: ``"lut"`` or ``"plan"``; ``index_bits``: log2 of the table size (LUT only);
    ``interpolate``: linear interpolation between table entries (LUT only); ``input_format``:
    format of the unit's input (the gate pre-activation); ``output_format``: format of its output.
    """

    kind: str = "lut"
    index_bits: int = 10
    interpolate: bool = True
    input_format: QFormat = QFormat(16, 11)
    output_format: QFormat = QFormat(16, 15)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"activation kind: expected one of {KINDS}, got {self.kind!r}")
        if not 1 <= self.index_bits <= self.input_format.bits:
            raise InputError(
                f"activation index_bits: expected 1..{self.input_format.bits}, got {self.index_bits}"
            )
        if self.kind == "plan" and (self.input_format.frac < 4 or self.output_format.frac < 6):
            raise InputError("activation kind 'plan': needs input frac >= 4 and output frac >= 6")

    def to_dict(self) -> dict:
        """The manifest entry (formats as dicts)."""
        return {
            "kind": self.kind,
            "index_bits": self.index_bits,
            "interpolate": self.interpolate,
            "input_format": self.input_format.to_dict(),
            "output_format": self.output_format.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ActivationConfig:
        """Inverse of :meth:`to_dict`."""
        try:
            if type(data["index_bits"]) is not int or type(data["interpolate"]) is not bool:
                raise TypeError("index_bits must be an int and interpolate a bool")
            return cls(
                kind=str(data["kind"]),
                index_bits=data["index_bits"],
                interpolate=data["interpolate"],
                input_format=QFormat.from_dict(data["input_format"], "activation input_format"),
                output_format=QFormat.from_dict(data["output_format"], "activation output_format"),
            )
        except (KeyError, TypeError) as err:
            raise InputError(f"activation description: missing or malformed field {err}") from None


def build_table(function: str, config: ActivationConfig) -> np.ndarray:
    """The LUT contents (int64 codes of the output format) for ``"sigmoid"`` or ``"tanh"``."""
    fin, fout = config.input_format, config.output_format
    bins = 1 << config.index_bits
    lo = fin.min_code * fin.scale
    step = (fin.max_code - fin.min_code + 1) * fin.scale / bins
    if config.interpolate:
        points = lo + step * np.arange(bins + 1)  # bin edges
    else:
        points = lo + step * (np.arange(bins) + 0.5)  # bin centres
    return quantize(FUNCTIONS[function](points), fout)


def lut_lookup(code, table: np.ndarray, config: ActivationConfig):
    """Evaluate a LUT unit on input codes (see the module docstring)."""
    fin = config.input_format
    offset = np.asarray(code, dtype=np.int64) - fin.min_code  # 0 .. 2**bits - 1
    low_bits = fin.bits - config.index_bits
    index = offset >> low_bits
    if not config.interpolate:
        return table[index]
    remainder = offset & ((1 << low_bits) - 1)
    slope = table[index + 1] - table[index]
    return saturate(
        table[index] + shift_round(slope * remainder, low_bits), config.output_format.bits
    )


def plan_sigmoid(code, input_frac: int, output: QFormat):
    """PLAN sigmoid of codes with ``input_frac`` fractional bits, into format ``output``."""
    x = np.asarray(code, dtype=np.int64)
    a = np.abs(x)
    one = 1 << output.frac
    # segment value = |x| * 2**-k + constant, each term rounded half up into the output format
    seg = [
        (a >= (5 << input_frac), np.full_like(a, one)),
        (
            a * 8 >= (19 << input_frac),
            shift_round(a, input_frac + 5 - output.frac) + ((27 * one) >> 5),
        ),
        (a >= (1 << input_frac), shift_round(a, input_frac + 3 - output.frac) + ((5 * one) >> 3)),
    ]
    y = shift_round(a, input_frac + 2 - output.frac) + (one >> 1)
    for condition, value in reversed(seg):
        y = np.where(condition, value, y)
    y = np.where(x < 0, one - y, y)
    return saturate(y, output.bits)


def evaluate_unit(function: str, code, config: ActivationConfig, table: np.ndarray | None):
    """Apply the ``function`` ("sigmoid"/"tanh") unit of ``config`` to input codes.

    ``table`` is the stored LUT for LUT units (``None`` for PLAN).
    """
    if config.kind == "lut":
        if table is None:
            raise InputError(f"activation {function}: LUT unit without a table")
        return lut_lookup(code, table, config)
    fin, fout = config.input_format, config.output_format
    if function == "sigmoid":
        return plan_sigmoid(code, fin.frac, fout)
    # tanh(x) = 2 sigmoid(2x) - 1, with sigmoid computed one fractional bit finer
    # with s = sigmoid(2x) at frac F = out.frac + 1: 2s - 1 = (s - 2**(F-1)) at frac F - 1
    finer = QFormat(min(fout.bits + 2, 32), fout.frac + 1)
    doubled = plan_sigmoid(code, fin.frac - 1, finer)
    return requantize(doubled - (1 << fout.frac), fout.frac, fout)


class ActivationUnits:
    """The sigmoid and tanh units of one model, with their tables built once."""

    def __init__(self, config: ActivationConfig, tables: dict[str, np.ndarray] | None = None):
        self.config = config
        if config.kind == "lut":
            self.tables = (
                tables
                if tables is not None
                else {name: build_table(name, config) for name in FUNCTIONS}
            )
            expected = (1 << config.index_bits) + (1 if config.interpolate else 0)
            for name in FUNCTIONS:
                table = self.tables.get(name)
                if table is None or table.shape != (expected,):
                    raise InputError(f"activation table {name}: expected {expected} entries")
                out = config.output_format
                if table.min() < out.min_code or table.max() > out.max_code:
                    raise InputError(
                        f"activation table {name}: codes outside the output format {out}"
                    )
        else:
            self.tables = {}

    def sigmoid(self, code):
        """Sigmoid unit: input-format codes to output-format codes."""
        return evaluate_unit("sigmoid", code, self.config, self.tables.get("sigmoid"))

    def tanh(self, code):
        """Tanh unit: input-format codes to output-format codes."""
        return evaluate_unit("tanh", code, self.config, self.tables.get("tanh"))


def unit_error(function: str, units: ActivationUnits) -> dict[str, float]:
    """Max and mean absolute error of a unit against float64 over every input code."""
    fin, fout = units.config.input_format, units.config.output_format
    codes = np.arange(fin.min_code, fin.max_code + 1, dtype=np.int64)
    got = getattr(units, function)(codes) * fout.scale
    exact = FUNCTIONS[function](codes * fin.scale)
    err = np.abs(got - exact)
    return {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())}
