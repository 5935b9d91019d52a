"""The pre-activation sums of an LSTM step on the integer datapath, compiled (docs/fixed-point.md,
"The LSTM cell"): the recurrent product's accumulators requantized into P, plus the input
product and the bias.

Per gate g and cell j, with r = g * H + j::

    pre[g, j] = inputs[r] + sat_P(shift_round(acc[r], shift)) + bias[r]

where ``acc`` holds the 32-bit accumulators of ``W_hh h_{t-1}`` and ``inputs`` the
requantized ``W_ih x_t`` (both P codes after requantization, as is the bias), and every clamp
of the requantization is counted. :func:`gate_inputs` forms eight cells at a time in int32
lanes (LLVM vector IR, which AVX2 runs natively with ``vpsravd``, ``vpminsd`` and
``vpmaxsd``): numba's loop over the same arithmetic ran in int64 lanes, whose arithmetic right
shifts AVX2 has to emulate. The remaining cells, and shifts of 32 bits or more, take the
plain loop :func:`_gate_inputs_loop`.

In int32 lanes the rounding half cannot be added to an accumulator near 2**31 without
wrapping, so a right shift by R rounds as ``(a >> R) + ((a >> (R - 1)) & 1)``, which equals
``(a + 2**(R - 1)) >> R``. A left shift by L is tested before it is made, exactly: ``a << L``
leaves [lo, hi] iff a leaves [ceil(lo / 2**L), hi >> L], and then the result is lo or hi.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from lstmforge.engine.spmv import _clamp, _shift_round

LANES = 8  # cells per register of int32 lanes


def _gate_inputs_codegen(context, builder, signature, args):
    """LLVM IR of the vector loop over cells 0 .. ``cells`` - 1 (a multiple of LANES) of the
    four gates; returns the clamp count."""
    acc_a, inputs_a, bias_a, pre_a = (
        context.make_array(signature.args[i])(context, builder, args[i]) for i in range(4)
    )
    i32, i64 = ir.IntType(32), ir.IntType(64)
    lanes = ir.VectorType(i32, LANES)
    pre_bits = signature.args[3].dtype.bitwidth
    stored = ir.VectorType(ir.IntType(pre_bits), LANES)

    def splat(value):
        one = builder.insert_element(
            ir.Constant(lanes, None), builder.trunc(value, i32), ir.Constant(i32, 0)
        )
        return builder.shuffle_vector(one, one, ir.Constant(lanes, None))

    right, right_less_one, half_bit, left, low_before, high_before, low, high = (
        splat(value) for value in cgutils.unpack_tuple(builder, args[4])
    )
    hidden, cells = args[5], args[6]
    clamps = cgutils.alloca_once_value(builder, ir.Constant(lanes, None))
    pre_columns = cgutils.unpack_tuple(builder, pre_a.shape)[1]

    def vector_at(array, offset, vector):
        pointer = builder.gep(array.data, [offset])
        return builder.bitcast(pointer, vector.as_pointer())

    step = ir.Constant(i64, LANES)
    with cgutils.for_range_slice(builder, ir.Constant(i64, 0), cells, step) as (j, _):
        for g in range(4):
            r = builder.add(builder.mul(ir.Constant(i64, g), hidden), j)
            a = builder.load(vector_at(acc_a, r, lanes), align=4)
            rounded = builder.add(
                builder.ashr(a, right), builder.and_(builder.ashr(a, right_less_one), half_bit)
            )
            below = builder.icmp_signed("<", rounded, low_before)
            above = builder.icmp_signed(">", rounded, high_before)
            inside = builder.shl(rounded, left)  # no wrap: it lies inside [lo, hi]
            value = builder.select(below, low, builder.select(above, high, inside))
            clamped = builder.or_(below, above)
            total = builder.sub(builder.load(clamps), builder.sext(clamped, lanes))
            builder.store(total, clamps)
            value = builder.add(value, builder.load(vector_at(inputs_a, r, lanes), align=4))
            value = builder.add(value, builder.load(vector_at(bias_a, r, lanes), align=4))
            if pre_bits != 32:
                value = builder.sext(value, stored)
            offset = builder.add(builder.mul(ir.Constant(i64, g), pre_columns), j)
            builder.store(value, vector_at(pre_a, offset, stored), align=pre_bits // 8)
    reduce_add = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(i32, [lanes]), "llvm.vector.reduce.add.v8i32"
    )
    return builder.sext(builder.call(reduce_add, [builder.load(clamps)]), i64)


@intrinsic
def _gate_inputs_vector(typingctx, acc, inputs, bias, pre, constants, hidden, cells):
    """The numba intrinsic of :func:`_gate_inputs_codegen`: ``acc``, ``inputs``, ``bias``
    int32, ``pre`` [4, at least H] int32 or int64, ``constants``: the right shift, it less
    one (at least 0), its rounding bit's mask (1, or 0 for no right shift), the left shift,
    the bounds before the left shift, then the bounds."""
    for array in (acc, inputs, bias):
        if not isinstance(array, types.Array) or array.dtype != types.int32 or array.layout != "C":
            raise numba.core.errors.TypingError(f"_gate_inputs_vector: not C int32: {array}")
    if pre.dtype not in (types.int32, types.int64) or pre.layout != "C":
        raise numba.core.errors.TypingError(f"_gate_inputs_vector: pre of {pre}")
    arguments = (acc, inputs, bias, pre, constants, hidden, cells)
    return types.int64(*arguments), _gate_inputs_codegen


@numba.njit(cache=True)
def _gate_inputs_loop(acc, inputs, bias, pre, shift, lo, hi, hidden, first):  # pragma: no cover
    """The pre-activation sums of cells ``first`` .. H - 1 as a plain loop, with int64
    arithmetic (any shift); returns the clamp count."""
    clamps = 0
    for g in range(4):
        for j in range(first, hidden):
            r = g * hidden + j
            v, clamped = _clamp(_shift_round(np.int64(acc[r]), shift), lo, hi)
            clamps += clamped
            pre[g, j] = inputs[r] + v + bias[r]
    return clamps


@numba.njit(cache=True)
def gate_inputs(acc, inputs, bias, pre, shift, bits, hidden):  # pragma: no cover - compiled
    """``pre[g, j] = inputs[r] + sat(shift_round(acc[r], shift), bits) + bias[r]`` for the
    4 x ``hidden`` cells (r = g * hidden + j; ``acc``, ``inputs``, ``bias`` int32 of at least
    4H codes, P codes after requantization, ``pre`` [4, at least H]); returns the number of
    clamped requantizations. P formats of more than 30 bits take the plain loop (three codes
    could leave int32), as do shifts of 32 bits or more."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if acc.size < 4 * hidden or inputs.size < 4 * hidden or bias.size < 4 * hidden:
        raise ValueError("gate_inputs: acc, inputs or bias shorter than 4 * hidden")
    if pre.shape[0] != 4 or pre.shape[1] < hidden or bits > 32:
        raise ValueError("gate_inputs: pre does not hold 4 x hidden cells, or bits > 32")
    if not -32 < shift < 32 or bits > 30:  # lanes shift by at most 31; 3 codes fit int32
        return _gate_inputs_loop(acc, inputs, bias, pre, shift, lo, hi, hidden, 0)
    right, left = max(shift, 0), max(-shift, 0)
    cells = hidden - hidden % LANES
    before = (-(-lo >> left), hi >> left)  # a << left saturates iff a leaves them
    constants = (right, max(right - 1, 0), min(right, 1), left, *before, lo, hi)
    clamps = _gate_inputs_vector(acc, inputs, bias, pre, constants, hidden, cells)
    return clamps + _gate_inputs_loop(acc, inputs, bias, pre, shift, lo, hi, hidden, cells)
