"""Energy table: per-operation figures (Horowitz, ISSCC 2014) combined by hand."""

import pytest

from lstmforge.hw.sim.energy import PJ, add_pj, frame_energy, multiply_pj


def test_scaling_rules_reproduce_the_table():
    assert multiply_pj(32, 32) == pytest.approx(3.1)
    assert add_pj(32) == pytest.approx(0.1)
    assert multiply_pj(12, 16) == pytest.approx(3.1 * 192 / 1024)
    assert add_pj(8) == pytest.approx(0.025)  # the table's 8-bit add is 0.03 pJ


def test_frame_energy_by_hand():
    energy = frame_energy(
        entries=10,
        useful_macs=8,
        columns_per_pe=4,
        cells=2,
        elementwise_ops={"mul": 1, "add": 2, "act": 1},
        dram_bits=100,
        weight_bits=12,
        index_bits=4,
        pointer_bits=16,
        activation_bits=16,
    )
    sram_bit = 10 / 64  # pJ per bit of an 8 KB SRAM read
    mac = 3.1 * 192 / 1024 + 0.1 + 2 * 32 * sram_bit  # multiply, add, accumulator read+write
    assert energy["mac"] == pytest.approx(8 * mac * PJ)
    assert energy["weight_buffer"] == pytest.approx(10 * 16 * sram_bit * PJ)
    assert energy["pointer_and_fifo"] == pytest.approx(4 * (16 + 32) * sram_bit * PJ)
    cell = 3.1 * 256 / 1024 + 2 * 0.1 + 2 * 16 * sram_bit
    assert energy["elementwise"] == pytest.approx(2 * cell * PJ)
    assert energy["dram"] == pytest.approx(100 * 20 * PJ)
