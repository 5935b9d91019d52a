"""32-bit accumulators requantized in int32 lanes, plus addends, on the integer datapath
(docs/fixed-point.md, "Rounding and saturation" and "The LSTM cell").

For rows g < G and columns j < W of ``out``, with r = g * W + j::

    out[g, j] = inputs[r] + sat(shift_round(acc[r], shift), bits) + bias[r]

and every clamp of the requantization counted; ``inputs`` and ``bias`` are codes of at most
``bits`` bits. An LSTM step forms its pre-activation sums so (G = 4 gates of H cells: ``acc``
the 32-bit accumulators of ``W_hh h_{t-1}``, ``inputs`` the requantized ``W_ih x_t``, ``bias``
the bias, all P codes), its projection's output (G = 1, no addends), and a chunk's input
products in place. :func:`requantize_add` forms eight codes at a time in int32 lanes, in
generic LLVM vector IR (on AVX2: ``vpsravd`` for the shifts, compares and blends for the
clamps, whose masks are also counted): numba's loop over the same arithmetic ran in int64
lanes, whose arithmetic right shifts AVX2 has to emulate. The remaining columns, shifts of 32
bits or more and formats wider than 30 bits take the plain loop :func:`_requantize_add_loop`.

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

from lstmforge.engine.cell_kernel import _splat
from lstmforge.engine.spmv import LANES, _clamp, _shift_round


def _requantize_add_codegen(context, builder, signature, args):
    """LLVM IR of the vector loop over columns 0 .. ``columns`` - 1 (a multiple of LANES) of
    every row of ``out``; returns the clamp count."""
    acc_a, inputs_a, bias_a, out_a = (
        None
        if signature.args[i] == types.none
        else context.make_array(signature.args[i])(context, builder, args[i])
        for i in range(4)
    )
    i32, i64 = ir.IntType(32), ir.IntType(64)
    lanes = ir.VectorType(i32, LANES)
    out_bits = signature.args[3].dtype.bitwidth
    stored = ir.VectorType(ir.IntType(out_bits), LANES)

    right, right_less_one, half_bit, left, low_before, high_before, low, high = (
        _splat(builder, builder.trunc(value, i32), LANES)
        for value in cgutils.unpack_tuple(builder, args[4])
    )
    width, columns = (context.cast(builder, args[k], signature.args[k], types.intp) for k in (5, 6))
    clamps = cgutils.alloca_once_value(builder, ir.Constant(lanes, None))
    rows, out_columns = cgutils.unpack_tuple(builder, out_a.shape)

    def vector_at(array, offset, vector):
        pointer = builder.gep(array.data, [offset])
        return builder.bitcast(pointer, vector.as_pointer())

    step = ir.Constant(i64, LANES)
    with cgutils.for_range(builder, rows) as row:
        g = row.index
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), columns, step) as (j, _):
            r = builder.add(builder.mul(g, width), j)
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
            for addend in (inputs_a, bias_a):
                if addend is not None:
                    value = builder.add(value, builder.load(vector_at(addend, r, lanes), align=4))
            if out_bits != 32:
                value = builder.sext(value, stored)
            offset = builder.add(builder.mul(g, out_columns), j)
            builder.store(value, vector_at(out_a, offset, stored), align=out_bits // 8)
    reduce_add = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(i32, [lanes]), "llvm.vector.reduce.add.v8i32"
    )
    return builder.sext(builder.call(reduce_add, [builder.load(clamps)]), i64)


@intrinsic
def _requantize_add_vector(typingctx, acc, inputs, bias, out, constants, width, columns):
    """The numba intrinsic of :func:`_requantize_add_codegen`: ``acc``, ``inputs``, ``bias``
    int32, ``out`` [G, at least W] int32 or int64, ``constants``: the right shift, it less
    one (at least 0), its rounding bit's mask (1, or 0 for no right shift), the left shift,
    the bounds before the left shift, then the bounds."""
    if not isinstance(width, types.Integer) or not isinstance(columns, types.Integer):
        raise numba.core.errors.TypingError("_requantize_add_vector: width and columns: integers")
    for array in (acc, *(a for a in (inputs, bias) if a != types.none)):
        if not isinstance(array, types.Array) or array.dtype != types.int32 or array.layout != "C":
            raise numba.core.errors.TypingError(f"_requantize_add_vector: not C int32: {array}")
    if out.ndim != 2 or out.dtype not in (types.int32, types.int64) or out.layout != "C":
        raise numba.core.errors.TypingError(f"_requantize_add_vector: out of {out}")
    arguments = (acc, inputs, bias, out, constants, width, columns)
    return types.int64(*arguments), _requantize_add_codegen


@numba.njit(cache=True)
def _requantize_add_loop(acc, inputs, bias, out, shift, lo, hi, width, first):  # pragma: no cover
    """The columns ``first`` .. W - 1 as a plain loop, with int64 arithmetic (any shift);
    returns the clamp count."""
    clamps = 0
    for g in range(out.shape[0]):
        for j in range(first, width):
            r = g * width + j
            v, clamped = _clamp(_shift_round(np.int64(acc[r]), shift), lo, hi)
            clamps += clamped
            if inputs is not None:
                v += inputs[r]
            if bias is not None:
                v += bias[r]
            out[g, j] = v
    return clamps


@numba.njit(cache=True)
def requantize_add(acc, inputs, bias, out, shift, bits, width):  # pragma: no cover - compiled
    """``out[g, j] = inputs[r] + sat(shift_round(acc[r], shift), bits) + bias[r]`` for the
    G x ``width`` codes of ``out`` [G, at least W] (r = g * W + j). ``acc``: int32 (32-bit
    accumulators); ``inputs``, ``bias``: int32 codes of at most ``bits`` bits (the vector
    columns add them in int32 lanes), or None for none; each of at least G * W codes. ``out``
    may be ``acc`` itself, seen as [G, W]; its type must hold the sums. Returns the number of
    clamped requantizations. Formats of more than 30 bits take the plain loop (three codes
    could leave int32), as do shifts of 32 bits or more."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    codes = out.shape[0] * width
    short = acc.size < codes or out.shape[1] < width
    if inputs is not None:
        short = short or inputs.size < codes
    if bias is not None:
        short = short or bias.size < codes
    if short:
        raise ValueError("requantize_add: acc, inputs, bias or out holds fewer codes than G * W")
    if bits > 32:
        raise ValueError("requantize_add: a format of more than 32 bits")
    if not -32 < shift < 32 or bits > 30:  # lanes shift by at most 31; 3 codes fit int32
        return _requantize_add_loop(acc, inputs, bias, out, shift, lo, hi, width, 0)
    right, left = max(shift, 0), max(-shift, 0)
    columns = width - width % LANES
    before = (-(-lo >> left), hi >> left)  # a << left saturates iff a leaves them
    constants = (right, max(right - 1, 0), min(right, 1), left, *before, lo, hi)
    clamps = _requantize_add_vector(acc, inputs, bias, out, constants, width, columns)
    return clamps + _requantize_add_loop(acc, inputs, bias, out, shift, lo, hi, width, columns)
