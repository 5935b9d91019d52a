"""Pick the hardware sigmoid/tanh unit a model's activation-unit description asks for.

ESE (Han et al., FPGA 2017, §5) computes the gate nonlinearities in dedicated units next to the
element-wise units. A CompressedModel names the kind (lookup table, optionally interpolated, or
piecewise-linear PLAN) and stores the tables; this returns the matching circuit.
"""

from __future__ import annotations

from amaranth.lib import wiring

from lstmforge.engine.activation_units import ActivationUnits
from lstmforge.errors import InputError
from lstmforge.hw.rtl.lut_activation_unit import LUTActivationUnit
from lstmforge.hw.rtl.plan_activation_unit import PLANActivationUnit


def build_activation_unit(function: str, units: ActivationUnits) -> wiring.Component:
    """The ``"sigmoid"`` or ``"tanh"`` circuit for ``units`` (LUT with its stored table, or PLAN)."""
    if function not in ("sigmoid", "tanh"):
        raise InputError(f"activation function: expected 'sigmoid' or 'tanh', got {function!r}")
    if units.config.kind == "lut":
        return LUTActivationUnit(units.config, units.tables[function])
    return PLANActivationUnit(units.config, function)
