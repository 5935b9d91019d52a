"""The integer engine on ConvLSTM stacks: lowering oracle, bit-exact fast path, streaming."""

import numpy as np
import pytest
import torch
from torch import nn

from lstmforge.compress import compress_model, load
from lstmforge.compress.compressor import block_config, float_weights
from lstmforge.engine import run, substitute
from lstmforge.engine.blocks import run_convlstm
from lstmforge.engine.float_datapath import FloatDatapath
from lstmforge.engine.lowering import patches, to_channels_first
from lstmforge.errors import InputError
from lstmforge.nn.convlstm import ConvLSTM


def test_patches_times_lowered_kernel_equals_conv2d():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 3, 5, 6, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    ref = torch.nn.functional.conv2d(x.double(), w.double(), padding=1).numpy()
    rows = patches(x.double().numpy(), 3) @ w.double().numpy().reshape(4, -1).T
    np.testing.assert_allclose(to_channels_first(rows, 2, 5, 6), ref, atol=1e-12)


@pytest.mark.parametrize("peephole", [True, "channel"])
def test_float_dataflow_equals_the_module(peephole):
    torch.manual_seed(0)
    module = ConvLSTM(
        2, [4, 3], [3, 5], num_layers=2, frame_size=(5, 4), peephole=peephole
    ).double()
    x = torch.randn(2, 3, 2, 5, 4, dtype=torch.float64)
    mats, _, vecs = float_weights(module, "convlstm")
    y, finals = run_convlstm(
        FloatDatapath(mats | vecs), block_config(module, "convlstm"), x.numpy(), None
    )
    with torch.no_grad():
        ref_y, ref_states = module(x)
    np.testing.assert_allclose(y, ref_y.numpy(), atol=1e-12)
    for (h, c), (ref_h, ref_c) in zip(finals, ref_states, strict=True):
        np.testing.assert_allclose(h, ref_h.numpy(), atol=1e-12)
        np.testing.assert_allclose(c, ref_c.numpy(), atol=1e-12)


class _Forecaster(nn.Module):
    """An encoder ConvLSTM and an input-less forecaster ConvLSTM (Shi et al.'s shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = ConvLSTM(1, 4, 3, frame_size=(6, 6))
        self.forecaster = ConvLSTM(0, 4, 3, frame_size=(6, 6))

    def forward(self, x):
        _, states = self.encoder(x)
        y, _ = self.forecaster(None, states, steps=2)
        return y


@pytest.fixture(scope="module")
def forecaster():
    torch.manual_seed(3)
    model = _Forecaster().eval()
    x = torch.rand(2, 4, 1, 6, 6)
    cm = compress_model(model, density=0.4, num_pes=4, calibration=x)
    return model, x, cm


def test_fast_equals_reference_and_streaming(forecaster):
    _, x, cm = forecaster
    assert [b.name for b in cm.blocks] == ["encoder", "forecaster"]
    assert "weight_x_l0" not in cm.blocks[1].matrices  # the forecaster has no input
    enc = cm.blocks[0]
    from lstmforge.engine.runner import run_block

    y_ref, s_ref = run_block(cm, enc, x, backend="reference")
    y_fast, s_fast = run_block(cm, enc, x, backend="fast")
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(s_fast[0][1], s_ref[0][1])
    y1, state = run_block(cm, enc, x[:, :1])
    y2, state = run_block(cm, enc, x[:, 1:], state)
    np.testing.assert_array_equal(np.concatenate([y1, y2], axis=1), y_fast)
    f_ref, _ = run_block(cm, cm.blocks[1], None, s_ref, steps=2, backend="reference")
    f_fast, _ = run_block(cm, cm.blocks[1], None, s_fast, steps=2)
    np.testing.assert_array_equal(f_fast, f_ref)


def test_substituted_forecaster_tracks_the_float_model(forecaster, tmp_path):
    model, x, cm = forecaster
    cm = load(cm.save(tmp_path / "f.lfz"))
    with torch.no_grad():
        ref = model(x)
        pruned = substitute(model, cm, mode="float-sparse")(x)
        integer = substitute(model, cm)(x)
    assert integer.shape == ref.shape == (2, 2, 4, 6, 6)
    assert np.abs(integer.numpy() - pruned.numpy()).max() < 5e-3
    assert np.abs(pruned.numpy() - ref.numpy()).max() > 0  # pruning did change it


def test_run_rejects_a_chain_that_does_not_chain(forecaster):
    _, x, cm = forecaster
    with pytest.raises(InputError, match="has no input"):
        run(cm, x)
    with pytest.raises(InputError, match=r"expected x \[B, T, 1, 6, 6\]"):
        run(cm, x[..., :5])  # the forecaster block has no input: needs substitute or run_block
