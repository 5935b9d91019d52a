"""Per-operation energy table and the energy estimate of one frame.

Energies are M. Horowitz's 45 nm, 0.9 V figures ("Computing's energy problem (and what we can
do about it)", ISSCC 2014, the table EIE and ESE also quote):

* 32-bit integer add 0.1 pJ, 32-bit integer multiply 3.1 pJ, 8-bit add 0.03 pJ; multiplier
  energy is scaled with the product of operand widths (an array multiplier's area), adder
  energy with the width;
* SRAM read, 8 KB array, 64 bits: 10 pJ (0.156 pJ per bit) — used for every on-chip buffer
  (sparse-matrix buffer, pointer buffer, activation FIFO, accumulators, activation tables);
* DRAM access 1.3–2.6 nJ per 64 bits: we take the low end, 20 pJ per bit (EIE's 640 pJ per
  32-bit word).

This is an ASIC-style dynamic-energy estimate of the datapath and memories; it leaves out
static power, clocking, I/O and the FPGA's programmable fabric, so it is far below a board's
measured wall power (ESE: 41 W) and is meant for comparing configurations.
"""

from __future__ import annotations

PJ = 1e-12
ADD32_PJ = 0.1
MUL32_PJ = 3.1
SRAM_PJ_PER_BIT = 10.0 / 64
DRAM_PJ_PER_BIT = 20.0


def multiply_pj(a_bits: int, b_bits: int) -> float:
    """Integer multiply energy, scaled from 32x32 bits by the product of the widths."""
    return MUL32_PJ * a_bits * b_bits / (32 * 32)


def add_pj(bits: int) -> float:
    """Integer add energy, scaled from 32 bits by the width."""
    return ADD32_PJ * bits / 32


def frame_energy(
    *,
    entries: float,
    useful_macs: float,
    columns_per_pe: float,
    cells: float,
    elementwise_ops: dict[str, int],
    dram_bits: float,
    weight_bits: int,
    index_bits: int,
    pointer_bits: int,
    activation_bits: int,
    accumulator_bits: int = 32,
) -> dict[str, float]:
    """Energy in joules of one frame, by component.

    ``entries``: sparse-matrix entries read (padding included) by all PEs; ``useful_macs``: real
    multiply-accumulates; ``columns_per_pe``: column broadcasts times PEs (FIFO write + read,
    pointer read); ``cells``: LSTM cells updated; ``dram_bits``: off-chip bits moved.
    """
    mac = multiply_pj(weight_bits, activation_bits) + add_pj(accumulator_bits)
    accumulator = 2 * accumulator_bits * SRAM_PJ_PER_BIT  # read-modify-write
    elementwise = (
        elementwise_ops["mul"] * multiply_pj(activation_bits, activation_bits)
        + elementwise_ops["add"] * add_pj(accumulator_bits)
        + elementwise_ops["act"] * 2 * activation_bits * SRAM_PJ_PER_BIT  # table read(s)
    )
    return {
        "mac": useful_macs * (mac + accumulator) * PJ,
        "weight_buffer": entries * (weight_bits + index_bits) * SRAM_PJ_PER_BIT * PJ,
        "pointer_and_fifo": columns_per_pe
        * (pointer_bits + 2 * activation_bits)
        * SRAM_PJ_PER_BIT
        * PJ,
        "elementwise": cells * elementwise * PJ,
        "dram": dram_bits * DRAM_PJ_PER_BIT * PJ,
    }
