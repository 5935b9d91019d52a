"""Sizing the RTL channel from a CompressedModel (PE geometry, element-wise units per layer)."""

import pytest
import torch

pytest.importorskip("amaranth")

from lstmforge.compress import compress_model  # noqa: E402
from lstmforge.hw.rtl.design import design_from_model  # noqa: E402
from lstmforge.nn import LSTM, ConvLSTM  # noqa: E402


def test_convlstm_design_is_sized_from_its_lowered_matrices():
    torch.manual_seed(0)
    model = ConvLSTM(1, [4, 3], 3, num_layers=2, frame_size=(6, 6))
    cm = compress_model(model, density=0.5, num_pes=2)
    design = design_from_model(cm)
    block = cm.blocks[0]
    # gate rows 4 x 4 over 2 PEs; widest lowered matrix: weight_x_l1 / weight_h_l0 [16, 4 * 9]
    assert design.pe.rows == 8
    assert design.pe.cols == 36
    assert design.pe.entries == max(max(m.entries_per_pe) for m in block.matrices.values())
    assert sorted(design.cells) == ["b0_l0", "b0_l1"]
    for k in range(2):
        formats = design.cells[f"b0_l{k}"]
        assert formats.cell == block.formats[f"l{k}.cell"]
        assert formats.hidden == block.formats[f"l{k}.output"]
        assert formats.peepholes["cf"] == block.vectors[f"weight_cf_l{k}"].fmt
    assert design.units.config == cm.activation
    assert design.pe.act_bits == 16  # the broadcast vectors: block input and layer outputs


def test_pe_activation_width_follows_the_broadcast_vectors():
    cm = compress_model(LSTM(3, 4), density=0.5, num_pes=2, activation_bits=12)
    assert design_from_model(cm).pe.act_bits == 12
