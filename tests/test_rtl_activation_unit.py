# amaranth: UnusedElaboratable=no
"""Hardware sigmoid/tanh units (ESE §5) against the engine's activation units, bit for bit."""

import numpy as np
import pytest

pytest.importorskip("amaranth")

from lstmforge.engine.activation_units import ActivationConfig, ActivationUnits  # noqa: E402
from lstmforge.engine.fixed_point import QFormat  # noqa: E402
from lstmforge.errors import InputError  # noqa: E402
from lstmforge.hw.rtl.activation_unit import build_activation_unit  # noqa: E402
from lstmforge.hw.rtl.lut_activation_unit import LUTActivationUnit  # noqa: E402
from lstmforge.hw.rtl.pipeline_simulation import run_pipeline  # noqa: E402

SMALL = {"input_format": QFormat(9, 5), "output_format": QFormat(8, 7)}
SMALL_CONFIGS = [
    ActivationConfig(kind="lut", index_bits=4, interpolate=False, **SMALL),
    ActivationConfig(kind="lut", index_bits=5, interpolate=True, **SMALL),
    ActivationConfig(kind="lut", index_bits=9, interpolate=True, **SMALL),  # remainder of 0 bits
    ActivationConfig(kind="plan", index_bits=4, **SMALL),
]


def _check(units: ActivationUnits, function: str, codes: np.ndarray) -> None:
    unit = build_activation_unit(function, units)
    got = np.array(run_pipeline(unit, codes.tolist()), dtype=np.int64)
    expected = getattr(units, function)(codes)
    assert got.shape == expected.shape
    mismatch = np.flatnonzero(got != expected)
    assert mismatch.size == 0, (
        f"{function}: first mismatch at code {codes[mismatch[0]]}: "
        f"rtl {got[mismatch[0]]}, engine {expected[mismatch[0]]}"
    )


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: f"{c.kind}-{c.index_bits}")
@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
def test_small_units_exhaustive(config, function):
    fin = config.input_format
    codes = np.arange(fin.min_code, fin.max_code + 1, dtype=np.int64)
    _check(ActivationUnits(config), function, codes)


@pytest.mark.parametrize(
    "config",
    [ActivationConfig(), ActivationConfig(interpolate=False), ActivationConfig(kind="plan")],
    ids=["lut-interp", "lut", "plan"],
)
@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
def test_16_bit_units_dense_sweep(config, function):
    # every 29th code over the whole range, plus both ends and the neighbourhood of zero
    codes = np.unique(
        np.concatenate([np.arange(-(2**15), 2**15, 29), np.arange(-64, 65), [-(2**15), 2**15 - 1]])
    )
    _check(ActivationUnits(config), function, codes)


def test_table_must_match_the_description():
    config = ActivationConfig(index_bits=4, interpolate=True, **SMALL)
    with pytest.raises(InputError, match="17 entries"):
        LUTActivationUnit(config, np.zeros(16, dtype=np.int64))
    with pytest.raises(InputError, match="codes of Q1.7"):
        LUTActivationUnit(config, np.full(17, 200, dtype=np.int64))
