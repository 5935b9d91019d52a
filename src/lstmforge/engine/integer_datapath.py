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

Every shift amount comes from :mod:`lstmforge.engine.fixed_point` (``matvec_shift`` for the
SpMV, ``LSTMShifts`` for the cell), for the NumPy expression and the compiled kernels alike.

On the ``"fast"`` backend the cell of an LSTM (gates [N, 4H]) or a ConvLSTM (gates
[N, 4 Hc, H, W], flattened per sequence), P of at most 16 bits, no trace, runs as one compiled
kernel, :func:`~lstmforge.engine.cell_kernel.cell_kernel`, which computes the same integers
and the same saturation counts per site as the NumPy expression of
:meth:`IntegerDatapath.cell`; the
``"reference"`` backend always uses the NumPy expression.
"""

from __future__ import annotations

import numpy as np

from lstmforge.compress.artifact import Block, CompressedModel
from lstmforge.engine.activation_units import ActivationUnits
from lstmforge.engine.cell_kernel import TABLE_PAD, cell_kernel, constants, lane_type, padded
from lstmforge.engine.edge import dequantize_fast, quantize_fast
from lstmforge.engine.fixed_point import (
    LSTMShifts,
    QFormat,
    SaturationCounter,
    dequantize,
    matvec_shift,
    quantize,
    rescale,
    saturate,
    shift_round,
)
from lstmforge.engine.plans import block_constants
from lstmforge.engine.spmv import (
    BACKENDS,
    spmv_fast,
    spmv_fast_requantized,
)


def kernel_shift(shift: int) -> bool:
    """Whether the compiled kernels take this rounding shift: -32 < shift < 62, so that the
    shifted int64 codes and the rounding half stay in range."""
    return -32 < shift < 62


def _broadcasts_to(shape: tuple[int, ...], state: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to ``state`` (as the NumPy unit multiplies)."""
    try:
        return np.broadcast_shapes(shape, state) == state
    except ValueError:
        return False


FULL_TABLE_BITS = 16
"""The compiled cell takes P formats up to this width: each activation unit is tabulated over
every P code (2**16 entries of 16 bits: 128 KiB per unit), whatever its kind."""


_FULL_TABLES: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _full_tables(units: ActivationUnits) -> tuple[np.ndarray, np.ndarray]:
    """The sigmoid and tanh units evaluated at every input code, most negative first, and
    TABLE_PAD zeros past the end for the compiled unit's gathers (built once per unit
    description)."""
    key = (units.config, *(units.tables[name].tobytes() for name in sorted(units.tables)))
    if key not in _FULL_TABLES:
        fin, fout = units.config.input_format, units.config.output_format
        codes = np.arange(fin.min_code, fin.max_code + 1, dtype=np.int64)
        value_type = np.int16 if fout.bits <= 16 else np.int32
        pad = np.zeros(TABLE_PAD, dtype=value_type)
        _FULL_TABLES[key] = tuple(
            np.concatenate([unit(codes).astype(value_type), pad])
            for unit in (units.sigmoid, units.tanh)
        )
    return _FULL_TABLES[key]


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
        self.backend = backend
        self.spmv = BACKENDS[backend]
        # built once per (model, block, backend) and shared by every datapath of them
        self.constants = block_constants(cm, block, backend)
        self.units = self.constants.units
        self.pre = self.constants.pre
        self.gate = self.constants.gate
        self._fused: dict[tuple, tuple | None] = self.constants.fused
        self._shifts: dict[tuple[int, str], LSTMShifts] = self.constants.shifts
        self.counter = counter if counter is not None else SaturationCounter()
        self.trace = trace
        self.step = 0
        self.prefix = f"{block.name or '<root>'}."

    def fmt(self, key: str) -> QFormat:
        """A format by key: ``"pre"``, ``"gate"`` or one of the block's formats."""
        if key == "pre":
            return self.pre
        if key == "gate":
            return self.gate
        return self.block.formats[key]

    def observe(self, site: str, codes: np.ndarray, key: str) -> None:
        """Record a signal for the trace (no effect without one)."""
        if self.trace is not None:
            self.trace.append((self.step, self.prefix + site, dequantize(codes, self.fmt(key))))

    def enter(self, values: np.ndarray, key: str) -> np.ndarray:
        """Float values arriving at the edge, quantized into format ``key`` (compiled on the
        fast backend: the same codes and counts)."""
        site = self.prefix + key + ".quantize"
        if self.backend == "fast":
            return quantize_fast(values, self.fmt(key), self.counter, site)
        return quantize(values, self.fmt(key), self.counter, site)

    def leave(self, codes: np.ndarray, key: str) -> np.ndarray:
        """Codes of format ``key`` leaving at the edge, as float64."""
        if self.backend == "fast":
            return dequantize_fast(codes, self.fmt(key))
        return dequantize(codes, self.fmt(key))

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.int64)

    def operand(self, codes: np.ndarray, key: str) -> np.ndarray:
        """Codes of format ``key`` as a product's operand: in the narrowest integer type that
        holds the format (int16 for 16 bits), so that a convolution's patch vectors, each
        code copied k * k times, take a quarter of the bytes of int64 ones."""
        return codes.astype(np.int16 if self.fmt(key).bits <= 16 else np.int32)

    def requantize_shift(self, name: str, src: str, dst: str) -> int | None:
        """The shift that requantizes ``W[name] @ v`` (v of format ``src``) into ``dst``, when
        the compiled kernels can apply it (int64 shifts), else None."""
        shift = matvec_shift(self.block.matrices[name].fmt, self.fmt(src), self.fmt(dst))
        return shift if kernel_shift(shift) else None

    def matvec(self, name: str, v: np.ndarray, src: str, dst: str) -> np.ndarray:
        """``W[name] @ v`` for v [N, cols] of format ``src``: rows of format ``dst`` [N, rows]."""
        matrix = self.block.matrices[name]
        site = self.prefix + name
        shift = self.requantize_shift(name, src, dst)
        if self.spmv is spmv_fast and shift is not None:  # product and requantization compiled
            return spmv_fast_requantized(
                matrix,
                v,
                shift,
                self.fmt(dst).bits,
                self.counter,
                site + ".accumulate",
                site + ".requantize",
            )
        acc = self.spmv(matrix, v, self.counter, site + ".accumulate")
        to = self.fmt(dst)
        return rescale(
            acc, matvec_shift(matrix.fmt, self.fmt(src), to), to, self.counter, site + ".requantize"
        )

    def bias(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The stored bias codes (already in the destination format), reshaped to ``shape``."""
        return self.block.vectors[name].codes.reshape(shape)

    def finish(self, total: np.ndarray, dst: str, site: str) -> np.ndarray:
        """Saturate an exact sum of terms into format ``dst`` (one saturation per sum)."""
        return saturate(total, self.fmt(dst).bits, self.counter, self.prefix + site)

    def lstm_shifts(self, layer: int, hidden_key: str) -> LSTMShifts:
        """The element-wise unit's shifts for a layer whose hidden output has format
        ``hidden_key`` (peephole shifts None where the block has no such peephole)."""
        key = (layer, hidden_key)
        if key not in self._shifts:
            vectors = [self.block.vectors.get(f"weight_c{g}_l{layer}") for g in "ifo"]
            self._shifts[key] = LSTMShifts.from_formats(
                self.pre,
                self.gate,
                self.fmt(f"l{layer}.cell"),
                self.fmt(hidden_key),
                tuple(None if v is None else v.fmt for v in vectors),
            )
        return self._shifts[key]

    def _peephole(self, name: str, c: np.ndarray, shift: int | None) -> np.ndarray | int:
        vector = self.block.vectors.get(name)
        if vector is None:
            return 0
        return rescale(vector.codes * c, shift, self.pre, self.counter, self.prefix + name)

    def cell_kernel_args(self, layer: int, hidden_key: str, state: tuple[int, ...]) -> tuple | None:
        """``(args, order)``: the constant arguments of :func:`cell_kernel` for a layer whose
        cell state (one sequence) has shape ``state`` — ``(H,)`` for an LSTM, ``(Hc, H, W)``
        for a ConvLSTM, flattened for the kernel, peepholes broadcast to it — and ``(site,
        count index)`` in the order the NumPy unit records its sites (None: the kernel does not
        cover this unit)."""
        key = (layer, hidden_key, state)
        if key in self._fused:
            return self._fused[key]
        args = None
        names = [f"weight_c{g}_l{layer}" for g in "ifo"]
        vectors = [self.block.vectors.get(name) for name in names]
        shifts = self.lstm_shifts(layer, hidden_key)
        if (
            self.pre.bits <= FULL_TABLE_BITS
            and all(kernel_shift(s) for s in shifts.applied())
            and all(v is None or _broadcasts_to(v.codes.shape, state) for v in vectors)
        ):
            cell, hid = self.fmt(f"l{layer}.cell"), self.fmt(hidden_key)
            sig, tanh = _full_tables(self.units)
            gate = max(int(np.abs(table.astype(np.int64)).max()) for table in (sig, tanh))
            formats = tuple(None if v is None else v.fmt for v in vectors)
            lanes = lane_type(self.pre, cell, hid, formats, shifts, gate)
            cells = int(np.prod(state))
            peep = np.zeros((3, padded(cells)), dtype=lanes)
            on = [vector is not None for vector in vectors]
            for g, vector in enumerate(vectors):
                if vector is not None:
                    peep[g, :cells] = np.broadcast_to(vector.codes, state).ravel()
            k = constants(lanes, self.pre, cell, hid, shifts)
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
            args = ((peep, sig, tanh, k), order)
        self._fused[key] = args
        return args

    def record(self, order: list[tuple[str, int]], counts: np.ndarray) -> None:
        """Add kernel clamp counts to the counter: ``counts[index]`` at each ``(site, index)``."""
        for name, index in order:
            self.counter.record(name, counts[index])

    def cell(
        self, partial: np.ndarray, c_prev: np.ndarray, layer: int, hidden_key: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The element-wise unit (module docstring); gates on axis 1. Returns ``(m_t, c_t)``."""
        if self.backend == "fast" and self.trace is None:
            fused = self.cell_kernel_args(layer, hidden_key, c_prev.shape[1:])
            if fused is not None:  # one sequence's gates and state, each flattened
                args, order = fused
                n = c_prev.shape[0]
                m, c_new, counts = cell_kernel(
                    np.ascontiguousarray(partial, dtype=np.int64).reshape(n, -1),
                    np.ascontiguousarray(c_prev, dtype=np.int64).reshape(n, -1),
                    *args,
                )
                self.record(order, counts)
                return m.reshape(c_prev.shape), c_new.reshape(c_prev.shape)
        cell = self.fmt(f"l{layer}.cell")
        shifts = self.lstm_shifts(layer, hidden_key)
        ci, cf, co = shifts.peepholes
        site = f"{self.prefix}l{layer}"
        pi, pf, pg, po = np.split(partial, 4, axis=1)

        def sat_pre(total: np.ndarray) -> np.ndarray:
            return saturate(total, self.pre.bits, self.counter, site + ".preactivation")

        i = self.units.sigmoid(sat_pre(pi + self._peephole(f"weight_ci_l{layer}", c_prev, ci)))
        f = self.units.sigmoid(sat_pre(pf + self._peephole(f"weight_cf_l{layer}", c_prev, cf)))
        g = self.units.tanh(sat_pre(pg))
        c_new = saturate(
            shift_round(f * c_prev, shifts.forget) + shift_round(i * g, shifts.input_gate),
            cell.bits,
            self.counter,
            site + ".cell",
        )
        o = self.units.sigmoid(sat_pre(po + self._peephole(f"weight_co_l{layer}", c_new, co)))
        tanh_c = self.units.tanh(
            rescale(c_new, shifts.cell_to_pre, self.pre, self.counter, site + ".cell_to_tanh")
        )
        m = rescale(o * tanh_c, shifts.hidden, self.fmt(hidden_key), self.counter, site + ".hidden")
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
