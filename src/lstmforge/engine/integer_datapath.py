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

On the ``"fast"`` backend an LSTM cell (gates [N, 4H], LUT activation units, no trace) runs as
one numba kernel, :func:`_cell_kernel`, which computes the same integers and the same
saturation counts per site as the NumPy expression of :meth:`IntegerDatapath.cell`; the
``"reference"`` backend always uses the NumPy expression.
"""

from __future__ import annotations

import numba
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
from lstmforge.engine.spmv import BACKENDS, spmv_fast, spmv_fast_requantized


@numba.njit(inline="always")
def _shr(x, shift):  # pragma: no cover - compiled
    """:func:`shift_round` on one int64."""
    if shift > 0:
        return (x + (1 << (shift - 1))) >> shift
    return x << (-shift)


@numba.njit(inline="always")
def _sat(x, lo, hi):  # pragma: no cover - compiled
    """Saturate one int64 to [lo, hi]; also says whether it clamped."""
    if x > hi:
        return hi, 1
    if x < lo:
        return lo, 1
    return x, 0


@numba.njit(inline="always")
def _lut(code, table, in_min, low_bits, interpolate, out_lo, out_hi):  # pragma: no cover
    """:func:`lut_lookup` on one code."""
    offset = code - in_min
    index = offset >> low_bits
    if not interpolate:
        return table[index]
    remainder = offset & ((1 << low_bits) - 1)
    y = table[index] + _shr((table[index + 1] - table[index]) * remainder, low_bits)
    return min(max(y, out_lo), out_hi)


@numba.njit(cache=True)
def _cell_kernel(
    partial, c_prev, peep, peep_on, peep_shift, sig, tanh, lut, fmts
):  # pragma: no cover - compiled
    """The element-wise unit of :meth:`IntegerDatapath.cell` for gates [N, 4H], one pass.

    ``peep`` [3, H]: the ci, cf, co peephole codes (``peep_on`` says which exist, ``peep_shift``
    their requantization shifts into P); ``lut``: (input min code, low bits, interpolate,
    output min, output max); ``fmts``: (P bits, G frac, C frac, C bits, P frac, M frac, M bits).
    Returns ``m``, ``c_t`` and the clamp counts (ci, cf, co, preactivation, cell, cell_to_tanh,
    hidden).
    """
    n, hidden = c_prev.shape
    in_min, low_bits, interp, out_lo, out_hi = lut[0], lut[1], lut[2] != 0, lut[3], lut[4]
    p_bits, gf, c_frac, c_bits, p_frac, m_frac, m_bits = fmts
    p_lo, p_hi = -(1 << (p_bits - 1)), (1 << (p_bits - 1)) - 1
    c_lo, c_hi = -(1 << (c_bits - 1)), (1 << (c_bits - 1)) - 1
    m_lo, m_hi = -(1 << (m_bits - 1)), (1 << (m_bits - 1)) - 1
    ig_shift, tanh_shift, m_shift = 2 * gf - c_frac, c_frac - p_frac, 2 * gf - m_frac
    m = np.empty((n, hidden), dtype=np.int64)
    c_new = np.empty((n, hidden), dtype=np.int64)
    counts = np.zeros(7, dtype=np.int64)
    for b in range(n):
        for j in range(hidden):
            c = c_prev[b, j]
            s_i = partial[b, j]
            s_f = partial[b, hidden + j]
            if peep_on[0]:
                t, k = _sat(_shr(peep[0, j] * c, peep_shift[0]), p_lo, p_hi)
                s_i += t
                counts[0] += k
            if peep_on[1]:
                t, k = _sat(_shr(peep[1, j] * c, peep_shift[1]), p_lo, p_hi)
                s_f += t
                counts[1] += k
            s_i, k = _sat(s_i, p_lo, p_hi)
            counts[3] += k
            s_f, k = _sat(s_f, p_lo, p_hi)
            counts[3] += k
            s_g, k = _sat(partial[b, 2 * hidden + j], p_lo, p_hi)
            counts[3] += k
            i = _lut(s_i, sig, in_min, low_bits, interp, out_lo, out_hi)
            f = _lut(s_f, sig, in_min, low_bits, interp, out_lo, out_hi)
            g = _lut(s_g, tanh, in_min, low_bits, interp, out_lo, out_hi)
            cn, k = _sat(_shr(f * c, gf) + _shr(i * g, ig_shift), c_lo, c_hi)
            counts[4] += k
            s_o = partial[b, 3 * hidden + j]
            if peep_on[2]:
                t, k = _sat(_shr(peep[2, j] * cn, peep_shift[2]), p_lo, p_hi)
                s_o += t
                counts[2] += k
            s_o, k = _sat(s_o, p_lo, p_hi)
            counts[3] += k
            o = _lut(s_o, sig, in_min, low_bits, interp, out_lo, out_hi)
            ct, k = _sat(_shr(cn, tanh_shift), p_lo, p_hi)
            counts[5] += k
            tc = _lut(ct, tanh, in_min, low_bits, interp, out_lo, out_hi)
            mv, k = _sat(_shr(o * tc, m_shift), m_lo, m_hi)
            counts[6] += k
            m[b, j] = mv
            c_new[b, j] = cn
    return m, c_new, counts


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
        self.backend = backend
        self.spmv = BACKENDS[backend]
        self._fused: dict[tuple[int, str], tuple | None] = {}
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
        shift, to = matrix.fmt.frac + self.fmt(src).frac, self.fmt(dst)
        # one compiled call for the product and its requantization (shifts int64 can take)
        if self.spmv is spmv_fast and -32 < shift - to.frac < 62:
            out = spmv_fast_requantized(
                matrix,
                v,
                shift - to.frac,
                to.bits,
                self.counter,
                site + ".accumulate",
                site + ".requantize",
            )
            if out is not None:
                return out
        acc = self.spmv(matrix, v, self.counter, site + ".accumulate")
        return requantize(acc, shift, to, self.counter, site + ".requantize")

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

    def _fused_args(self, layer: int, hidden_key: str, hidden: int) -> tuple | None:
        """The constant arguments of :func:`_cell_kernel` for a layer (None: not supported)."""
        key = (layer, hidden_key)
        if key in self._fused:
            return self._fused[key]
        config, args = self.units.config, None
        if config.kind == "lut":
            cell = self.fmt(f"l{layer}.cell")
            names = [f"weight_c{g}_l{layer}" for g in "ifo"]
            vectors = [self.block.vectors.get(name) for name in names]
            if all(v is None or v.codes.shape == (hidden,) for v in vectors):
                peep = np.zeros((3, hidden), dtype=np.int64)
                on = np.zeros(3, dtype=np.bool_)
                shift = np.zeros(3, dtype=np.int64)
                for g, vector in enumerate(vectors):
                    if vector is not None:
                        peep[g], on[g] = vector.codes, True
                        shift[g] = vector.fmt.frac + cell.frac - self.pre.frac
                fin, fout, hid = config.input_format, config.output_format, self.fmt(hidden_key)
                lut = np.array(
                    [
                        fin.min_code,
                        fin.bits - config.index_bits,
                        int(config.interpolate),
                        fout.min_code,
                        fout.max_code,
                    ],
                    dtype=np.int64,
                )
                fmts = np.array(
                    [
                        self.pre.bits,
                        self.gate.frac,
                        cell.frac,
                        cell.bits,
                        self.pre.frac,
                        hid.frac,
                        hid.bits,
                    ],
                    dtype=np.int64,
                )
                tables = [
                    np.ascontiguousarray(self.units.tables[f], dtype=np.int64)
                    for f in ("sigmoid", "tanh")
                ]
                site = f"{self.prefix}l{layer}"
                sites = [
                    self.prefix + names[0] if on[0] else None,
                    site + ".preactivation",
                    self.prefix + names[1] if on[1] else None,
                    self.prefix + names[2] if on[2] else None,
                    site + ".cell",
                    site + ".cell_to_tanh",
                    site + ".hidden",
                ]
                # kernel count order: ci, cf, co, preactivation, cell, cell_to_tanh, hidden
                order = [(sites[0], 0), (sites[1], 3), (sites[2], 1), (sites[4], 4)]
                order += [(sites[3], 2), (sites[5], 5), (sites[6], 6)]
                order = [(name, index) for name, index in order if name is not None]
                args = (peep, on, shift, *tables, lut, fmts, order)
        self._fused[key] = args
        return args

    def _fused_cell(
        self, partial: np.ndarray, c_prev: np.ndarray, fused: tuple
    ) -> tuple[np.ndarray, np.ndarray]:
        *args, order = fused
        m, c_new, counts = _cell_kernel(
            np.ascontiguousarray(partial, dtype=np.int64),
            np.ascontiguousarray(c_prev, dtype=np.int64),
            *args,
        )
        for name, index in order:
            self.counter.record(name, counts[index])
        return m, c_new

    def cell(
        self, partial: np.ndarray, c_prev: np.ndarray, layer: int, hidden_key: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The element-wise unit (module docstring); gates on axis 1. Returns ``(m_t, c_t)``."""
        if self.backend == "fast" and self.trace is None and partial.ndim == 2:
            fused = self._fused_args(layer, hidden_key, c_prev.shape[1])
            if fused is not None:
                return self._fused_cell(partial, c_prev, fused)
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
