"""The element-wise unit of the integer datapath, compiled (ESE Fig. 5; docs/fixed-point.md,
"The LSTM cell").

:func:`cell_kernel` computes, for gates [N, 4H] and the cell state [N, H], the integers and
the saturation counts of :meth:`~lstmforge.engine.integer_datapath.IntegerDatapath.cell`'s
NumPy expression. Per sequence it makes five passes over the cells: three of arithmetic, in
LLVM vector IR (:func:`_gates_pass`, :func:`_cell_pass`, :func:`_hidden_pass`), and two of
table lookups between them. The arithmetic runs in int32 lanes (eight per AVX2 register,
native multiplies, shifts, minimum and maximum) where :func:`lane_type` proves that every
intermediate fits 32 bits for the layer's formats and shifts, and in int64 lanes otherwise;
numba's loops over the same arithmetic ran in int64 lanes, whose multiplies, variable
right shifts and comparisons AVX2 has to emulate.
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from lstmforge.engine.fixed_point import LSTMShifts, QFormat
from lstmforge.engine.spmv import _host_has_avx2

VECTOR_BITS = 256  # one AVX2 register of lanes
TABLE_PAD = 3  # entries past the end of each full table, read (and dropped) by the gathers
# the rows of the constants array ``k`` (of the lane type)
P_LO, P_HI, C_LO, C_HI, M_LO, M_HI = range(6)
CI, CF, CO, FORGET, INPUT_GATE, CELL_TO_PRE, HIDDEN = (6 + 3 * i for i in range(7))  # shifts
ON_I, ON_F, ON_O = 27, 28, 29  # 1 where the layer has the peephole, else 0
CONSTANTS = 30
# the clamp counts, in this order
N_CI, N_CF, N_CO, N_PRE, N_CELL, N_TANH, N_HIDDEN = range(7)


def _magnitude(bits: int) -> int:
    """The largest |code| of a ``bits``-bit signed format."""
    return 1 << (bits - 1)


def _rounding(bound: int, shift: int) -> tuple[int, int]:
    """Bounds of :func:`~lstmforge.engine.fixed_point.shift_round` on |x| <= ``bound``: the
    largest |intermediate| (x shifted left, plus the rounding half) and the largest
    |result|."""
    inner = (bound << max(-shift, 0)) + (1 << (shift - 1) if shift > 0 else 0)
    return inner, (inner >> max(shift, 0)) + 1


def lane_type(
    pre: QFormat,
    cell: QFormat,
    hidden: QFormat,
    peepholes: tuple[QFormat | None, QFormat | None, QFormat | None],
    shifts: LSTMShifts,
    gate: int,
) -> type:
    """``np.int32`` where every intermediate of the unit stays within 32 bits for these
    formats and shifts (``gate``: the largest |output| of the activation units; a
    pre-activation is at most three P codes plus a peephole term), else ``np.int64``."""
    top = (1 << 31) - 1
    p, c = _magnitude(pre.bits), _magnitude(cell.bits)
    bounds = [4 * p, _magnitude(hidden.bits)]
    for fmt, shift in zip(peepholes, shifts.peepholes, strict=True):
        if fmt is not None:
            bounds.append(_rounding(_magnitude(fmt.bits) * c, shift)[0])
    forget, input_gate = _rounding(gate * c, shifts.forget), _rounding(gate**2, shifts.input_gate)
    bounds += [forget[0], input_gate[0], forget[1] + input_gate[1]]
    bounds += [_rounding(c, shifts.cell_to_pre)[0], _rounding(gate**2, shifts.hidden)[0]]
    fits = max(bounds) <= top and all(-32 < s < 32 for s in shifts.applied())
    return np.int32 if fits else np.int64


def constants(
    lanes: type,
    pre: QFormat,
    cell: QFormat,
    hidden: QFormat,
    shifts: LSTMShifts,
) -> np.ndarray:
    """The constants array ``k`` of the passes: format ranges, (left, right, half) of every
    shift (0 for a missing peephole) and the peephole switches."""
    k = np.zeros(CONSTANTS, dtype=lanes)
    for row, fmt in ((P_LO, pre), (C_LO, cell), (M_LO, hidden)):
        k[row], k[row + 1] = fmt.min_code, fmt.max_code
    rows = (CI, CF, CO, FORGET, INPUT_GATE, CELL_TO_PRE, HIDDEN)
    values = (*shifts.peepholes, shifts.forget, shifts.input_gate, shifts.cell_to_pre)
    for row, shift in zip(rows, (*values, shifts.hidden), strict=True):
        if shift is not None:
            half = 1 << (shift - 1) if shift > 0 else 0
            k[row : row + 3] = max(-shift, 0), max(shift, 0), half
    for row, shift in zip((ON_I, ON_F, ON_O), shifts.peepholes, strict=True):
        k[row] = shift is not None
    return k


class _Lanes:
    """Vector operations on one register of lanes (cells j .. j + lanes - 1), for the passes'
    IR; ``valid``: the lanes that hold a cell (j + lane < n)."""

    def __init__(self, builder, lane_type, constants, n, j) -> None:
        self.builder = builder
        self.count = VECTOR_BITS // lane_type.bitwidth
        self.scalar = ir.IntType(lane_type.bitwidth)
        self.vector = ir.VectorType(self.scalar, self.count)
        self.constants, self.j = constants, j
        left = _splat(builder, builder.trunc(builder.sub(n, j), self.scalar), self.count)
        lane = ir.Constant(self.vector, list(range(self.count)))
        self.valid = builder.icmp_signed("<", lane, left)

    def const(self, row: int):
        """Constants row ``row`` in every lane (loaded before the loop)."""
        return self.constants[row]

    def enabled(self, row: int):
        """The lanes (all or none) where constants row ``row`` is not 0."""
        return self.builder.icmp_signed("!=", self.const(row), ir.Constant(self.vector, None))

    def _pointer(self, array, row: int | None):
        offset = self.j
        if row is not None:  # row of a 2-D array: row * columns + j
            columns = cgutils.unpack_tuple(self.builder, array.shape)[1]
            start = self.builder.mul(ir.Constant(columns.type, row), columns)
            offset = self.builder.add(start, offset)
        element = self.builder.gep(array.data, [offset])
        return self.builder.bitcast(element, self.vector.as_pointer())

    def load(self, array, row: int | None = None):
        return self.builder.load(self._pointer(array, row), align=4)

    def store(self, value, array, row: int | None = None) -> None:
        self.builder.store(value, self._pointer(array, row), align=4)

    def rounded(self, x, row: int):
        """``shift_round`` with the (left, right, half) of constants row ``row``."""
        b = self.builder
        shifted = b.add(b.shl(x, self.const(row)), self.const(row + 2))
        return b.ashr(shifted, self.const(row + 1))

    def clamp(self, x, lo: int, hi: int):
        """``(x saturated to [k[lo], k[hi]], the valid lanes that were clamped)``."""
        b = self.builder
        low, high = self.const(lo), self.const(hi)
        y = b.select(b.icmp_signed("<", x, low), low, x)
        y = b.select(b.icmp_signed(">", y, high), high, y)
        return y, b.and_(b.icmp_signed("!=", y, x), self.valid)

    def peephole(self, weight, c, shift: int, on: int):
        """``(sat_P(rq_P(weight * c)), its clamped lanes)``, or 0 and none where constants row
        ``on`` says the layer has no such peephole."""
        b = self.builder
        term, clamped = self.clamp(self.rounded(b.mul(weight, c), shift), P_LO, P_HI)
        enabled = self.enabled(on)
        return b.select(enabled, term, ir.Constant(self.vector, None)), b.and_(clamped, enabled)

    def index(self, value):
        """A P code's table index (its offset from the most negative P code)."""
        return self.builder.sub(value, self.const(P_LO))


def _splat(builder, value, count: int):
    """``value`` in each of ``count`` lanes."""
    vector = ir.VectorType(value.type, count)
    one = builder.insert_element(ir.Constant(vector, None), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), count), None))


@contextlib.contextmanager
def _over_cells(builder, lane_type, k, n):
    """A loop over the cells 0 .. n - 1 (the arrays padded to a multiple of the lanes), one
    register of lanes at a time: yields each iteration's :class:`_Lanes`. The constants ``k``
    (None: none) are loaded and splat before the loop; inside it, its stores could alias
    them, and each register would load them again."""
    count = VECTOR_BITS // lane_type.bitwidth
    rows = () if k is None else range(CONSTANTS)
    constants = [
        _splat(
            builder, builder.load(builder.gep(k.data, [ir.Constant(ir.IntType(64), row)])), count
        )
        for row in rows
    ]
    step = ir.Constant(n.type, count)
    cells = builder.mul(
        builder.sdiv(builder.add(n, builder.sub(step, ir.Constant(n.type, 1))), step), step
    )
    with cgutils.for_range_slice(builder, ir.Constant(n.type, 0), cells, step) as (j, _):
        yield _Lanes(builder, lane_type, constants, n, j)


def _pass_intrinsic(body, names: tuple[str, ...]):
    """A numba intrinsic ``(arrays, n)`` over the tuple of arrays ``names`` (``k`` and the cell
    arrays of the lane type, padded to a multiple of the lanes; ``counts`` int64 [7]) and the
    number of cells n: a loop over the cells, one register of lanes at a time, running
    ``body(lanes, arrays)``, which returns ``(count index, clamped lanes)`` pairs; the clamps
    are added to ``counts``."""

    def codegen(context, builder, signature, args):
        kinds = signature.args[0].types
        arrays = {
            name: context.make_array(kind)(context, builder, builder.extract_value(args[0], i))
            for i, (name, kind) in enumerate(zip(names, kinds, strict=True))
        }
        lane_type = kinds[names.index("k")].dtype
        count = VECTOR_BITS // lane_type.bitwidth
        n = args[-1]
        lane, wide = ir.IntType(lane_type.bitwidth), ir.VectorType(ir.IntType(64), count)
        zero = ir.Constant(ir.VectorType(lane, count), None)
        totals = [cgutils.alloca_once_value(builder, zero) for _ in range(7)]
        with _over_cells(builder, lane_type, arrays["k"], n) as lanes:
            for index, clamped in body(lanes, arrays):  # a clamped lane is -1 sign-extended
                total = builder.sub(builder.load(totals[index]), builder.sext(clamped, zero.type))
                builder.store(total, totals[index])
        reduce_add = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.IntType(64), [wide]),
            f"llvm.vector.reduce.add.v{count}i64",
        )
        for index, total in enumerate(totals):  # each lane counted at most n / count clamps
            lanes_total = builder.zext(builder.load(total), wide)
            slot = builder.gep(arrays["counts"].data, [ir.Constant(ir.IntType(64), index)])
            added = builder.add(builder.load(slot), builder.call(reduce_add, [lanes_total]))
            builder.store(added, slot)
        return context.get_dummy_value()

    def typer(typingctx, arrays, n):
        return types.void(arrays, n), codegen

    return intrinsic(typer)


def _gates(lanes: _Lanes, a: dict) -> list:
    """The i, f, g pre-activations (peepholes on c_{t-1}) into table indices ``idx`` rows
    0, 1, 2."""
    b, c = lanes.builder, lanes.load(a["c"])
    term_i, k_ci = lanes.peephole(lanes.load(a["peep"], 0), c, CI, ON_I)
    term_f, k_cf = lanes.peephole(lanes.load(a["peep"], 1), c, CF, ON_F)
    clamped = [(N_CI, k_ci), (N_CF, k_cf)]
    sums = (b.add(lanes.load(a["pre"], 0), term_i), b.add(lanes.load(a["pre"], 1), term_f))
    for row, total in enumerate((*sums, lanes.load(a["pre"], 2))):
        value, k = lanes.clamp(total, P_LO, P_HI)
        lanes.store(lanes.index(value), a["idx"], row)
        clamped.append((N_PRE, k))
    return clamped


def _cell(lanes: _Lanes, a: dict) -> list:
    """c_t from the looked-up i, f, g (``vals`` rows 0, 1, 2) into ``c_new``; the o
    pre-activation (peephole on c_t) and c_t into P as table indices ``idx`` rows 3, 4."""
    b, c = lanes.builder, lanes.load(a["c"])
    i, f, g = (lanes.load(a["vals"], row) for row in range(3))
    total = b.add(lanes.rounded(b.mul(f, c), FORGET), lanes.rounded(b.mul(i, g), INPUT_GATE))
    c_new, k_cell = lanes.clamp(total, C_LO, C_HI)
    lanes.store(c_new, a["c_new"])
    term_o, k_co = lanes.peephole(lanes.load(a["peep"], 2), c_new, CO, ON_O)
    s_o, k_o = lanes.clamp(b.add(lanes.load(a["pre"], 3), term_o), P_LO, P_HI)
    to_tanh, k_tanh = lanes.clamp(lanes.rounded(c_new, CELL_TO_PRE), P_LO, P_HI)
    lanes.store(lanes.index(s_o), a["idx"], 3)
    lanes.store(lanes.index(to_tanh), a["idx"], 4)
    return [(N_CELL, k_cell), (N_CO, k_co), (N_PRE, k_o), (N_TANH, k_tanh)]


def _hidden(lanes: _Lanes, a: dict) -> list:
    """m_t from the looked-up o and tanh(c_t) (``vals`` rows 3, 4) into ``m``."""
    product = lanes.builder.mul(lanes.load(a["vals"], 3), lanes.load(a["vals"], 4))
    m, k_hidden = lanes.clamp(lanes.rounded(product, HIDDEN), M_LO, M_HI)
    lanes.store(m, a["m"])
    return [(N_HIDDEN, k_hidden)]


def _lookup_intrinsic(rows: tuple[tuple[int, int], ...]):
    """A numba intrinsic ``((idx, vals, sig, tanh), n)``: for each ``(row, table)`` of
    ``rows``, ``vals[row] = (sig, tanh)[table][idx[row]]`` over the padded cells, one AVX2
    gather (``vpgatherdd``, or ``vpgatherdq`` for int64 lanes) per register of lanes. A
    gather reads a whole lane at each table entry and keeps its low entry, sign-extended;
    the tables carry :data:`TABLE_PAD` entries past their end for the last ones."""

    def codegen(context, builder, signature, args):
        kinds = signature.args[0].types
        idx, vals, *tables = (
            context.make_array(kind)(context, builder, builder.extract_value(args[0], i))
            for i, kind in enumerate(kinds)
        )
        bits, entry = kinds[0].dtype.bitwidth, kinds[2].dtype.bitwidth
        count, n = VECTOR_BITS // bits, args[1]
        lane = ir.IntType(bits)
        vector, indices = ir.VectorType(lane, count), ir.VectorType(ir.IntType(32), count)
        gather = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(
                vector, [vector, ir.IntType(8).as_pointer(), indices, vector, ir.IntType(8)]
            ),
            "llvm.x86.avx2.gather.d.d.256" if bits == 32 else "llvm.x86.avx2.gather.d.q.256",
        )
        every = ir.Constant(vector, [-1] * count)
        scale = ir.Constant(ir.IntType(8), entry // 8)
        extend = ir.Constant(vector, [bits - entry] * count)
        with _over_cells(builder, kinds[0].dtype, None, n) as lanes:
            for row, table in rows:
                position = (
                    builder.trunc(lanes.load(idx, row), indices)
                    if bits > 32
                    else lanes.load(idx, row)
                )
                base = builder.bitcast(tables[table].data, ir.IntType(8).as_pointer())
                word = builder.call(
                    gather, [ir.Constant(vector, None), base, position, every, scale]
                )
                lanes.store(builder.ashr(builder.shl(word, extend), extend), vals, row)
        return context.get_dummy_value()

    def typer(typingctx, arrays, n):
        return types.void(arrays, n), codegen

    return intrinsic(typer)


@numba.njit(cache=True)
def _lookup_gates_portable(arrays, n):  # pragma: no cover - compiled
    """Plain-loop ``_lookup_gates`` (any CPU): i, f from sig, g from tanh."""
    idx, vals, sig, tanh = arrays
    for j in range(n):
        vals[0, j], vals[1, j], vals[2, j] = sig[idx[0, j]], sig[idx[1, j]], tanh[idx[2, j]]


@numba.njit(cache=True)
def _lookup_output_portable(arrays, n):  # pragma: no cover - compiled
    """Plain-loop ``_lookup_output`` (any CPU): o from sig, tanh(c_t) from tanh."""
    idx, vals, sig, tanh = arrays
    for j in range(n):
        vals[3, j], vals[4, j] = sig[idx[3, j]], tanh[idx[4, j]]


_gates_pass = _pass_intrinsic(_gates, ("k", "c", "peep", "pre", "idx", "counts"))
_cell_pass = _pass_intrinsic(_cell, ("k", "c", "peep", "pre", "vals", "c_new", "idx", "counts"))
_hidden_pass = _pass_intrinsic(_hidden, ("k", "vals", "m", "counts"))


if _host_has_avx2():
    _lookup_gates = _lookup_intrinsic(((0, 0), (1, 0), (2, 1)))  # (row, table): i, f, g
    _lookup_output = _lookup_intrinsic(((3, 0), (4, 1)))  # o, tanh(c_t)
else:
    _lookup_gates, _lookup_output = _lookup_gates_portable, _lookup_output_portable


def padded(cells: int) -> int:
    """The cell arrays' length: ``cells`` rounded up to a multiple of the lanes of either
    type (8)."""
    return -(-cells // 8) * 8


@numba.njit(cache=True)
def cell_buffers(peep):  # pragma: no cover - compiled
    """The work arrays of :func:`cell_step` for peepholes ``peep`` (their lane type and
    padded length): ``(c, pre, idx, vals, c_new, m)``, c_{t-1} and the four pre-activation
    sums going in, c_t and m_t coming out."""
    lanes, cells = peep.dtype, peep.shape[1]
    return (
        np.zeros(cells, dtype=lanes),
        np.zeros((4, cells), dtype=lanes),
        np.zeros((5, cells), dtype=lanes),
        np.zeros((5, cells), dtype=lanes),
        np.zeros(cells, dtype=lanes),
        np.zeros(cells, dtype=lanes),
    )


@numba.njit(cache=True)
def cell_step(buffers, peep, sig, tanh, k, counts, hidden):  # pragma: no cover - compiled
    """The element-wise unit on one sequence's ``hidden`` cells: from ``c`` and ``pre`` of
    :func:`cell_buffers` into their ``c_new`` and ``m``, the clamp counts added to
    ``counts`` [7] (the arguments as :func:`cell_kernel` takes them)."""
    c, pre, idx, vals, c_new, m = buffers
    _gates_pass((k, c, peep, pre, idx, counts), hidden)
    _lookup_gates((idx, vals, sig, tanh), hidden)
    _cell_pass((k, c, peep, pre, vals, c_new, idx, counts), hidden)
    _lookup_output((idx, vals, sig, tanh), hidden)
    _hidden_pass((k, vals, m, counts), hidden)


@numba.njit(cache=True)
def cell_kernel(partial, c_prev, peep, sig, tanh, k):  # pragma: no cover - compiled
    """The element-wise unit for gates ``partial`` [N, 4H] and the cell state ``c_prev``
    [N, H] (int64 codes): ``m``, ``c_t`` (int64) and the clamp counts (ci, cf, co,
    preactivation, cell, cell_to_tanh, hidden).

    ``peep`` [3, :func:`padded` (H)]: the ci, cf, co peephole codes (zeros where the layer
    has none, and past H) and ``k`` (:func:`constants`), both of the lane type
    (:func:`lane_type`); ``sig``, ``tanh``: each unit's output for every P code, from the
    most negative up. A pre-activation sum must be at most three P codes (the products and
    the bias), as the layers give it."""
    n, hidden = c_prev.shape
    buffers = cell_buffers(peep)
    c, pre, _, _, c_new, m_row = buffers
    m = np.empty((n, hidden), dtype=np.int64)
    c_out = np.empty((n, hidden), dtype=np.int64)
    counts = np.zeros(7, dtype=np.int64)
    for b in range(n):
        low = high = np.int64(0)
        for gate in range(4):
            for j in range(hidden):
                value = partial[b, gate * hidden + j]
                low, high = min(low, value), max(high, value)
                pre[gate, j] = value
        if low < 3 * np.int64(k[P_LO]) or high > 3 * np.int64(k[P_HI]):
            raise ValueError("cell_kernel: a pre-activation sum beyond three P codes")
        for j in range(hidden):
            c[j] = c_prev[b, j]
        cell_step(buffers, peep, sig, tanh, k, counts, hidden)
        for j in range(hidden):
            m[b, j], c_out[b, j] = m_row[j], c_new[j]
    return m, c_out, counts
