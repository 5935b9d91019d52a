"""Fixed-point rules and activation units, against hand-worked values and scipy."""

import numba
import numpy as np
import pytest
from scipy.special import expit

from lstmforge.engine.activation_units import (
    ActivationConfig,
    ActivationUnits,
    build_table,
    unit_error,
)
from lstmforge.engine.fixed_point import (
    QFormat,
    SaturationCounter,
    format_for_range,
    quantize,
    requantize,
    saturate,
    saturating_add,
    shift_round,
)
from lstmforge.engine.spmv import _shift_round
from lstmforge.errors import InputError


def test_round_half_up_and_exact_left_shift():
    x = np.array([5, -5, 6, -6, 7, -7, 4, -4])  # /4 -> 1.25 -1.25 1.5 -1.5 1.75 -1.75 1 -1
    assert shift_round(x, 2).tolist() == [1, -1, 2, -1, 2, -2, 1, -1]
    assert shift_round(3, -4) == 48 and shift_round(-3, 0) == -3


def test_right_shifts_of_64_bits_or_more_round_int64_codes_to_zero():
    """A degenerate format pair (a tiny peephole into a coarse P) can ask for a right shift of
    64 or more: every int64 code rounds to 0, as exact integer arithmetic says."""
    x = np.array([0, 1, -1, 2**62, -(2**63), 2**63 - 1], dtype=np.int64)
    for shift in (64, 65, 100):
        got = shift_round(x, shift)
        assert got.dtype == np.int64
        assert got.tolist() == [(int(v) + (1 << (shift - 1))) >> shift for v in x] == [0] * 6
    assert shift_round(np.int64(-5), 70) == 0 and shift_round(2**80, 70) == 1024  # Python ints


@numba.njit
def _compiled_shift_round(x, shift):
    out = np.empty_like(x)
    for k in range(x.size):
        out[k] = _shift_round(x[k], shift)
    return out


def test_compiled_shift_round_equals_shift_round_at_every_shift():
    """The kernels' branch-free rounding shift, from left shifts of 63 to right shifts of 63."""
    rng = np.random.default_rng(0)
    wide = np.concatenate([rng.integers(-(2**62), 2**62, 200), [0, 1, -1, 2**62 - 1, -(2**62)]])
    for shift in range(-63, 64):
        x = wide >> max(-shift, 0) + 1 if shift < 0 else wide  # left shifts stay in int64
        np.testing.assert_array_equal(_compiled_shift_round(x, shift), shift_round(x, shift))


def test_saturation_and_counter():
    counter = SaturationCounter()
    out = saturate(np.array([-200, -128, 0, 127, 300]), 8, counter, "x")
    assert out.tolist() == [-128, -128, 0, 127, 127] and counter["x"] == 2
    assert saturating_add(2**31 - 10, 100) == 2**31 - 1
    assert saturating_add(-(2**31), -1) == -(2**31)


def test_quantize_requantize_and_formats():
    q = QFormat(16, 11)
    assert str(q) == "Q5.11" and q.max_value == pytest.approx(16 - 2**-11)
    assert quantize([0.5 * 2**-11, -0.5 * 2**-11, 1.0, 100.0], q).tolist() == [1, 0, 2048, 32767]
    assert requantize(np.array([2048 * 16 + 8]), 15, QFormat(16, 11)).tolist() == [2049]
    assert format_for_range(0.7, 12) == QFormat(12, 11)
    assert format_for_range(1.0, 12) == QFormat(12, 10)
    assert format_for_range(5.0, 16) == QFormat(16, 12)
    assert format_for_range(0.0, 16) == QFormat(16, 15)
    with pytest.raises(InputError, match="NaN"):
        quantize([np.nan], q)
    with pytest.raises(InputError, match="bits"):
        QFormat(40, 3)


def test_lut_tables_match_scipy_at_bin_edges_and_centres():
    cfg = ActivationConfig(index_bits=6, interpolate=True)
    table = build_table("sigmoid", cfg)
    edges = -16 + 0.5 * np.arange(65)  # 64 bins over [-16, 16)
    np.testing.assert_allclose(table * 2.0**-15, expit(edges), atol=2**-15)  # saturation at 1
    plain = ActivationConfig(index_bits=6, interpolate=False)
    np.testing.assert_allclose(
        build_table("tanh", plain) * 2.0**-15, np.tanh(edges[:-1] + 0.25), atol=2**-15
    )


def test_lut_lookup_hand_example():
    cfg = ActivationConfig(index_bits=4, interpolate=True)  # 16 bins of 2.0 over [-16, 16)
    units = ActivationUnits(cfg)
    t = units.tables["sigmoid"]
    code = -16384 + 2048 // 2  # x = -8 + 0.5: bin 4, a quarter of the way into it
    expected = t[4] + ((t[5] - t[4]) * 1024 + 2048) // 4096
    assert units.sigmoid(np.array([code])).tolist() == [expected]


def test_plan_breakpoints_hand_worked():
    units = ActivationUnits(ActivationConfig(kind="plan"))
    x = np.array([0.0, 1.0, 2.375, 4.0, 5.0, -1.0, -20.0])
    got = units.sigmoid(quantize(x, QFormat(16, 11))) * 2.0**-15
    want = [0.5, 0.75, 2.375 / 32 + 0.84375, 0.96875, 1 - 2**-15, 0.25, 0.0]
    np.testing.assert_allclose(got, want, atol=2**-15)
    tanh = units.tanh(quantize(np.array([0.5, -0.5]), QFormat(16, 11))) * 2.0**-15
    np.testing.assert_allclose(tanh, [0.5, -0.5], atol=2**-14)  # 2*(0.25*1+0.5)-1


@pytest.mark.parametrize(
    ("config", "sigmoid_max", "tanh_max"),
    [
        (ActivationConfig(), 1e-4, 2e-4),
        (ActivationConfig(interpolate=False), 5e-3, 2e-2),
        (ActivationConfig(kind="plan"), 0.0190, 0.0380),  # PLAN's published max error ~0.0189
    ],
)
def test_unit_error_over_whole_range(config, sigmoid_max, tanh_max):
    units = ActivationUnits(config)
    sig, tanh = unit_error("sigmoid", units), unit_error("tanh", units)
    assert sig["max_abs_error"] < sigmoid_max and tanh["max_abs_error"] < tanh_max
    assert 0 < sig["mean_abs_error"] < sig["max_abs_error"]


def test_bad_activation_config():
    with pytest.raises(InputError, match="kind"):
        ActivationConfig(kind="cordic")
    with pytest.raises(InputError, match="index_bits"):
        ActivationConfig(index_bits=17)
