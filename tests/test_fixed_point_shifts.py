"""The shift rules of the datapath (docs/fixed-point.md), against hand-computed values."""

import math

import numpy as np

from lstmforge.engine.fixed_point import (
    LSTMShifts,
    QFormat,
    cell_to_pre_shift,
    forget_shift,
    hidden_shift,
    input_gate_shift,
    matvec_shift,
    peephole_shift,
    product_shift,
    requantize,
    rescale,
    rescale_shift,
)

P, G = QFormat(16, 11), QFormat(16, 15)  # Q5.11, Q1.15
C, M = QFormat(16, 12), QFormat(16, 13)  # Q4.12, Q3.13
W = QFormat(12, 14)  # small weights: frac above bits


def test_named_shift_rules():
    assert rescale_shift(26, P) == 15
    assert product_shift(W, M, P) == 14 + 13 - 11 == 16
    assert matvec_shift(W, M, P) == 16  # W.frac + v.frac - dst.frac
    assert matvec_shift(QFormat(12, 9), QFormat(16, 3), QFormat(16, 14)) == -2  # a left shift
    assert peephole_shift(QFormat(12, 13), C, P) == 13 + 12 - 11 == 14
    assert forget_shift(G) == 15  # G.frac + C.frac - C.frac
    assert input_gate_shift(G, C) == 2 * 15 - 12 == 18
    assert cell_to_pre_shift(C, P) == 12 - 11 == 1
    assert hidden_shift(G, M) == 2 * 15 - 13 == 17
    assert hidden_shift(G, G) == 15  # LSTMP: the hidden format is G


def test_lstm_shifts_from_formats():
    shifts = LSTMShifts.from_formats(P, G, C, M, (QFormat(12, 13), None, QFormat(12, 10)))
    assert shifts == LSTMShifts(
        peepholes=(14, None, 11), forget=15, input_gate=18, cell_to_pre=1, hidden=17
    )
    assert LSTMShifts.from_formats(P, G, C, M).peepholes == (None, None, None)


def test_rescale_is_round_half_up_shift_then_saturation():
    x = np.array([-(2**20), -5, -2, 2, 5, 3 << 14, 2**25])
    for shift, to in ((2, QFormat(8, 0)), (0, QFormat(16, 3)), (-3, QFormat(12, 3))):
        # written out: x · 2^-shift rounded half up (floor(v + 1/2)), then clamped to the bits
        expected = [
            min(max(math.floor(v / 2**shift + 0.5), -(2 ** (to.bits - 1))), 2 ** (to.bits - 1) - 1)
            for v in x.tolist()
        ]
        assert rescale(x, shift, to).tolist() == expected
        assert requantize(x, to.frac + shift, to).tolist() == expected
    assert rescale(np.array([5, -5, 6, -6]), 2, QFormat(8, 0)).tolist() == [1, -1, 2, -1]
