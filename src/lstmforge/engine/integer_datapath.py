"""The integer datapath: the arithmetic of every operation in a compressed block.

:mod:`lstmforge.engine.blocks` says *what* is computed (which matrix times which vector, the
LSTM cell equations, in which order); this class says *how* the hardware computes it, using
only :mod:`lstmforge.engine.fixed_point` and :mod:`lstmforge.engine.activation_units`:

* ``matvec``: the 32-bit saturating SpMV, then requantization of each accumulator into the
  destination format (round half up, saturate to 16 bits).
* ``cell``: the element-wise unit (ESE Fig. 5). With P the activation-input format, G the
  gate format, C the cell format and M the hidden format::

      s_i = sat_P(partial_i + rq_P(w_ci * c_{t-1}))      i = sigmoid_unit(s_i)
      s_f = sat_P(partial_f + rq_P(w_cf * c_{t-1}))      f = sigmoid_unit(s_f)
      s_g = sat_P(partial_g)                              g = tanh_unit(s_g)
      c_t = sat_C(round(f * c_{t-1} >> G.frac) + round(i * g >> (2 G.frac - C.frac)))
      s_o = sat_P(partial_o + rq_P(w_co * c_t))           o = sigmoid_unit(s_o)
      m_t = rq_M(o * tanh_unit(rq_P(c_t)))

  where ``partial`` is the exact sum of the requantized SpMV results and the bias (P codes),
  and each pre-activation is saturated once, after all its terms are added.
"""

from __future__ import annotations

import numpy as np

from lstmforge.compress.artifact import Block, CompressedModel
from lstmforge.engine.fixed_point import (
    QFormat,
    SaturationCounter,
    dequantize,
    quantize,
    requantize,
    saturate,
    shift_round,
)
from lstmforge.engine.spmv import BACKENDS


class IntegerDatapath:
    """Integer arithmetic for one block of a :class:`CompressedModel`.

    ``backend`` picks the SpMV (``"reference"``: the golden per-PE loop, ``"fast"``: numba);
    ``counter`` collects saturation counts per site; ``trace``, when a list, receives
    ``(step, site, values)`` for every signal (values dequantized to float64).
    """

    def __init__(
        self,
        cm: CompressedModel,
        block: Block,
        backend: str = "fast",
        counter: SaturationCounter | None = None,
        trace: list | None = None,
    ) -> None:
        self.block = block
        self.units = cm.activation_units()
        self.pre = cm.activation.input_format
        self.gate = cm.activation.output_format
        self.spmv = BACKENDS[backend]
        self.counter = counter if counter is not None else SaturationCounter()
        self.trace = trace
        self.step = 0
        self.prefix = f"{block.name or '<root>'}."

    def fmt(self, key: str) -> QFormat:
        """A format by key: ``"pre"``, ``"gate"`` or one of the block's formats."""
        return {"pre": self.pre, "gate": self.gate}.get(key) or self.block.formats[key]

    def observe(self, site: str, codes: np.ndarray, key: str) -> None:
        """Record a signal for the trace (no effect without one)."""
        if self.trace is not None:
            self.trace.append((self.step, self.prefix + site, dequantize(codes, self.fmt(key))))

    def enter(self, values: np.ndarray, key: str) -> np.ndarray:
        """Float values arriving at the edge, quantized into format ``key``."""
        return quantize(values, self.fmt(key), self.counter, self.prefix + key + ".quantize")

    def leave(self, codes: np.ndarray, key: str) -> np.ndarray:
        """Codes of format ``key`` leaving at the edge, as float64."""
        return dequantize(codes, self.fmt(key))

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.int64)

    def matvec(self, name: str, v: np.ndarray, src: str, dst: str) -> np.ndarray:
        """``W[name] @ v`` for v [N, cols] of format ``src``: rows of format ``dst`` [N, rows]."""
        matrix = self.block.matrices[name]
        site = self.prefix + name
        acc = self.spmv(matrix, v, self.counter, site + ".accumulate")
        return requantize(
            acc,
            matrix.fmt.frac + self.fmt(src).frac,
            self.fmt(dst),
            self.counter,
            site + ".requantize",
        )

    def bias(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The stored bias codes (already in the destination format), reshaped to ``shape``."""
        return self.block.vectors[name].codes.reshape(shape)

    def finish(self, total: np.ndarray, dst: str, site: str) -> np.ndarray:
        """Saturate an exact sum of terms into format ``dst`` (one saturation per sum)."""
        return saturate(total, self.fmt(dst).bits, self.counter, self.prefix + site)

    def _peephole(self, name: str, c: np.ndarray, cell: QFormat) -> np.ndarray | int:
        vector = self.block.vectors.get(name)
        if vector is None:
            return 0
        return requantize(
            vector.codes * c,
            vector.fmt.frac + cell.frac,
            self.pre,
            self.counter,
            self.prefix + name,
        )

    def cell(
        self, partial: np.ndarray, c_prev: np.ndarray, layer: int, hidden_key: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The element-wise unit (module docstring); gates on axis 1. Returns ``(m_t, c_t)``."""
        cell = self.fmt(f"l{layer}.cell")
        site = f"{self.prefix}l{layer}"
        pi, pf, pg, po = np.split(partial, 4, axis=1)

        def sat_pre(total: np.ndarray) -> np.ndarray:
            return saturate(total, self.pre.bits, self.counter, site + ".preactivation")

        i = self.units.sigmoid(sat_pre(pi + self._peephole(f"weight_ci_l{layer}", c_prev, cell)))
        f = self.units.sigmoid(sat_pre(pf + self._peephole(f"weight_cf_l{layer}", c_prev, cell)))
        g = self.units.tanh(sat_pre(pg))
        gf = self.gate.frac
        c_new = saturate(
            shift_round(f * c_prev, gf) + shift_round(i * g, 2 * gf - cell.frac),
            cell.bits,
            self.counter,
            site + ".cell",
        )
        o = self.units.sigmoid(sat_pre(po + self._peephole(f"weight_co_l{layer}", c_new, cell)))
        tanh_c = self.units.tanh(
            requantize(c_new, cell.frac, self.pre, self.counter, site + ".cell_to_tanh")
        )
        m = requantize(o * tanh_c, 2 * gf, self.fmt(hidden_key), self.counter, site + ".hidden")
        if self.trace is not None:
            for name, codes, key in (
                ("i", i, "gate"),
                ("f", f, "gate"),
                ("g", g, "gate"),
                ("o", o, "gate"),
            ):
                self.observe(f"l{layer}.{name}", codes, key)
            self.observe(f"l{layer}.cell", c_new, f"l{layer}.cell")
        return m, c_new
