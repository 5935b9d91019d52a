"""Circular (ring) padding of the ConvLSTM row axis: float module, LE-ConvMN, .lfz, engine, CLI."""

import numpy as np
import pytest
import torch

from engine_checks import (
    assert_fast_equals_reference_and_streams,
    assert_float_dataflow_equals_the_module,
    assert_same_artifact,
)
from lstmforge.compress import compress_model, load
from lstmforge.engine import substitute
from lstmforge.engine.blocks import run_convlstm
from lstmforge.engine.float_datapath import FloatDatapath
from lstmforge.engine.lowering import patches, to_channels_first
from lstmforge.engine.runner import run_block
from lstmforge.errors import InputError
from lstmforge.nn import ConvLSTM, LEConvMN
from lstmforge.tasks.emg.module import EMGRegressor
from lstmforge.tasks.emg.networks import build_network
from reference_cells import reference_convlstm, reference_convlstm_steps
from test_convlstm import FRAME, make_convlstm, numpy_params, numpy_states, random_states
from test_emg_cli import TINY, run_cli
from test_engine_convlstm import _manifest, _rewrite_manifest

F = torch.nn.functional


def tiled_conv(x, weight, row_padding):
    """'Same' convolution; circular rows by tiling the frame 3x along the rows, convolving
    with zero padding and keeping the middle copy (independent of the module's padding)."""
    pad, rows = weight.shape[-1] // 2, x.shape[-2]
    if row_padding == "zeros":
        return F.conv2d(x, weight, padding=pad)
    assert pad <= rows
    return F.conv2d(torch.cat([x, x, x], dim=-2), weight, padding=pad)[..., rows : 2 * rows, :]


def ring_reference(module, x, state, row_padding, steps=None):
    """Shi et al. eq. 3 step by step with :func:`tiled_conv`; returns (y, [(h, c)])."""
    return reference_convlstm_steps(
        dict(module.named_parameters()),
        module.hidden_channels,
        x,
        state,
        lambda inputs, weight: tiled_conv(inputs, weight, row_padding),
        steps,
    )


def assert_states_close(finals, finals_ref, tol=1e-12):
    assert len(finals) == len(finals_ref)
    for (h, c), (h_ref, c_ref) in zip(finals, finals_ref, strict=True):
        torch.testing.assert_close(h, h_ref, rtol=tol, atol=tol)
        torch.testing.assert_close(c, c_ref, rtol=tol, atol=tol)


LAYOUTS = {
    "3x3": dict(hidden=(3,), kernels=(3,)),
    "3x3 then 5x5": dict(hidden=(3, 2), kernels=(3, 5)),
    "input 5x5, state 1x1": dict(hidden=(3, 2), kernels=(1, 1), input_kernel_size=5),
    "mixed per layer": dict(hidden=(2, 3), kernels=(5, 3), input_kernel_size=(3, 5)),
    "input 1x1, state 5x5": dict(hidden=(2,), kernels=(5,), input_kernel_size=1),
}


@pytest.mark.parametrize("peephole", [True, "channel", False])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_circular_rows_match_a_tiled_reference(layout, peephole):
    module = make_convlstm(peephole=peephole, row_padding="circular", **LAYOUTS[layout])
    x = torch.randn(
        2, 3, 2, *FRAME, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    states = random_states(module, batch=2)
    with torch.no_grad():
        y, finals = module(x, states)
        y_ref, finals_ref = ring_reference(module, x, states, "circular")
        y_zeros, _ = ring_reference(module, x, states, "zeros")
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    assert_states_close(finals, finals_ref)
    # the wrap reaches the first and the last row at least
    differs = (y - y_zeros).abs().amax(dim=(0, 1, 2, 4))
    assert differs[0] > 1e-6 and differs[-1] > 1e-6


def test_circular_rows_without_input_and_in_chunks():
    torch.manual_seed(0)
    module = ConvLSTM(
        0, [3, 2], [3, 1], num_layers=2, frame_size=FRAME, input_kernel_size=[1, 5],
        row_padding="circular",
    ).double()  # fmt: skip
    states = random_states(module, batch=2)
    with torch.no_grad():
        y, finals = module(None, states, steps=3)
        y_ref, finals_ref = ring_reference(module, None, states, "circular", steps=3)
        first, carried = module(None, states, steps=1)
        rest, _ = module(None, carried, steps=2)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    assert_states_close(finals, finals_ref)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), y, rtol=1e-12, atol=1e-12)


def _rolled(states, r):
    return [(h.roll(r, dims=-2), c.roll(r, dims=-2)) for h, c in states]


@pytest.mark.parametrize("peephole", [True, "channel", False])
@pytest.mark.parametrize("r", [1, 2, -1])
def test_rolling_the_rows_rolls_every_state_only_with_circular_padding(peephole, r):
    layout = dict(hidden=(3, 2), kernels=(3, 5), input_kernel_size=(5, 3))
    ring = make_convlstm(peephole=peephole, row_padding="circular", **layout)
    zeros = make_convlstm(peephole=peephole, **layout)
    zeros.load_state_dict(ring.state_dict())
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 2, *FRAME, dtype=torch.float64, generator=g)
    states = random_states(ring, batch=2)
    for model, equivariant in ((ring, True), (zeros, False)):
        shifted = make_convlstm(peephole=peephole, row_padding=model.row_padding, **layout)
        rolled_params = {
            name: p.roll(r, dims=-2) if peephole is True and "_c" in name else p
            for name, p in model.state_dict().items()
        }  # per-position peepholes move with the rows
        shifted.load_state_dict(rolled_params)
        with torch.no_grad():
            y, finals = model(x, states)
            y_rolled, finals_rolled = shifted(x.roll(r, dims=-2), _rolled(states, r))
        if equivariant:
            torch.testing.assert_close(y_rolled, y.roll(r, dims=-2), rtol=1e-12, atol=1e-12)
            assert_states_close(finals_rolled, _rolled(finals, r))
        else:
            assert (y_rolled - y.roll(r, dims=-2)).abs().max() > 1e-4
            for (h, _), (h_ref, _) in zip(finals_rolled, _rolled(finals, r), strict=True):
                assert (h - h_ref).abs().max() > 1e-4


def test_default_is_zero_padding_unchanged():
    layout = dict(hidden=(3, 2), kernels=(3, 5), input_kernel_size=(5, 1))
    default = make_convlstm(**layout)
    explicit = make_convlstm(row_padding="zeros", **layout)
    assert default.row_padding == "zeros" and "row_padding" not in repr(default)
    assert "row_padding='circular'" in repr(make_convlstm(row_padding="circular", **layout))
    for (n1, p1), (n2, p2) in zip(
        default.state_dict().items(), explicit.state_dict().items(), strict=True
    ):
        assert n1 == n2 and torch.equal(p1, p2)
    x = torch.randn(
        2, 3, 2, *FRAME, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    states = random_states(default, batch=2)
    with torch.no_grad():
        y, finals = default(x, states)
        y_explicit, _ = explicit(x, states)
    assert torch.equal(y, y_explicit)
    # still the scipy zero-padded reference of test_convlstm (kx = k there)
    same = make_convlstm(hidden=(3, 2), kernels=(3, 5))
    with torch.no_grad():
        y_same, _ = same(x, states)
    y_ref, _ = reference_convlstm(
        x.numpy(), numpy_params(same), hidden_channels=[3, 2], peephole=True,
        state=numpy_states(states),
    )  # fmt: skip
    np.testing.assert_allclose(y_same.numpy(), y_ref, rtol=1e-10, atol=1e-12)


def test_bad_row_padding_raises_input_error():
    with pytest.raises(InputError, match="row_padding: expected 'zeros' or 'circular'"):
        ConvLSTM(1, 2, 3, frame_size=(4, 4), row_padding="wrap")
    with pytest.raises(InputError, match=r"row_padding='circular'.*kernel size 7 wraps 3 rows"):
        ConvLSTM(1, 2, 3, frame_size=(2, 4), input_kernel_size=7, row_padding="circular")
    ConvLSTM(1, 2, 5, frame_size=(2, 4), row_padding="circular")  # 2 rows wrapped: allowed
    resizable = ConvLSTM(1, 2, 5, peephole="channel", row_padding="circular")
    resizable(torch.randn(1, 2, 1, 3, 4))
    with pytest.raises(InputError, match="frame height"):
        resizable(torch.randn(1, 2, 1, 1, 4))


def test_circular_model_traces():
    module = ConvLSTM(1, 2, 3, frame_size=(4, 5), row_padding="circular").eval()
    x = torch.randn(1, 3, 1, 4, 5)

    class SequenceOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)[0]

    traced = torch.jit.trace(SequenceOnly(module), (x,))
    other = torch.randn(1, 3, 1, 4, 5)
    torch.testing.assert_close(traced(other), module(other)[0])


# ---------------------------------------------------------------- lowering and the engine


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_circular_patches_times_lowered_kernel_equals_the_tiled_conv(kernel):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 6, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, kernel, kernel, generator=g, dtype=torch.float64)
    ref = tiled_conv(x, w, "circular").numpy()
    rows = patches(x.numpy(), kernel, row_padding="circular") @ w.numpy().reshape(4, -1).T
    np.testing.assert_allclose(to_channels_first(rows, 2, 4, 6), ref, atol=1e-12)
    codes = np.arange(2 * 1 * 4 * 6).reshape(2, 1, 4, 6)  # integer codes wrap exactly
    per_pixel = patches(codes, kernel, "circular").reshape(2, 4, 6, -1)
    rolled = patches(np.roll(codes, 1, axis=2), kernel, "circular").reshape(2, 4, 6, -1)
    assert rolled.dtype == codes.dtype and np.array_equal(rolled, np.roll(per_pixel, 1, axis=1))
    if kernel > 1:
        zero = patches(x.numpy(), kernel)
        assert not np.allclose(zero, patches(x.numpy(), kernel, "circular"))


def test_patches_reject_bad_row_padding():
    with pytest.raises(InputError, match="row_padding: expected 'zeros' or 'circular'"):
        patches(np.zeros((1, 1, 4, 4)), 3, row_padding="reflect")
    with pytest.raises(InputError, match="kernel size 7 wraps 3 rows, the frame has 2"):
        patches(np.zeros((1, 1, 2, 4)), 7, row_padding="circular")


@pytest.mark.parametrize("peephole", [True, "channel", False])
def test_float_dataflow_equals_the_circular_module(peephole):
    torch.manual_seed(0)
    module = ConvLSTM(
        2, [4, 3], [3, 1], num_layers=2, frame_size=(5, 4), peephole=peephole,
        input_kernel_size=[5, 3], row_padding="circular",
    ).double()  # fmt: skip
    x = torch.randn(2, 3, 2, 5, 4, dtype=torch.float64)
    y, weights, config = assert_float_dataflow_equals_the_module(module, x)
    assert config["row_padding"] == "circular"
    zero_config = {k: v for k, v in config.items() if k != "row_padding"}
    y_zero, _ = run_convlstm(FloatDatapath(weights), zero_config, x.numpy(), None)
    assert np.abs(y_zero - y).max() > 1e-6  # the engine does read the key


def _train_one_step(model, x, y):
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.convlstm.weight_h_l0.detach().clone()
    loss = F.mse_loss(model(x)[0], y)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.convlstm.weight_h_l0)
    return model


@pytest.fixture(scope="module")
def ring_model(tmp_path_factory):
    torch.manual_seed(0)
    model = LEConvMN(6, 5, 3, hidden_channels=(4, 2), ring=True)
    assert model.ring and model.convlstm.row_padding == "circular"
    x, y = torch.randn(2, 4, 1, 6, 5), torch.randn(2, 4, 3)
    model = _train_one_step(model, x, y).eval()
    cm = compress_model(model, density=0.5, num_pes=4, calibration=x)
    path = cm.save(tmp_path_factory.mktemp("ring") / "ring.lfz")
    return model, x, cm, path


def test_ring_artifact_is_version_2_and_round_trips(ring_model):
    _, _, cm, path = ring_model
    manifest = _manifest(path)
    assert manifest["version"] == 2
    config = manifest["blocks"][0]["config"]
    assert config["row_padding"] == "circular" and "input_kernel_size" not in config
    assert_same_artifact(load(path), cm)


def test_ring_engine_fast_equals_reference_and_tracks_the_pruned_model(ring_model):
    model, x, _, path = ring_model
    cm = load(path)
    assert_fast_equals_reference_and_streams(cm, cm.block("convlstm"), x)
    with torch.no_grad():
        ref, _ = model.convlstm(x)
        pruned, _ = substitute(model, cm, mode="float-sparse").convlstm(x)
        integer, _ = substitute(model, cm).convlstm(x)
        head_pruned = substitute(model, cm, mode="float-sparse")(x)[0]
        head_integer = substitute(model, cm)(x)[0]
    assert integer.shape == ref.shape == (2, 4, 2, 6, 5)
    assert np.abs(integer.numpy() - pruned.numpy()).max() < 5e-3
    assert np.abs(pruned.numpy() - ref.numpy()).max() > 0  # pruning did change it
    assert np.abs(head_integer.numpy() - head_pruned.numpy()).max() < 5e-3
    # the artifact of the ring model does not stand in for a zero-padded one, in either mode
    zeros_model = LEConvMN(6, 5, 3, hidden_channels=(4, 2))
    zeros_model.load_state_dict(model.state_dict())
    for mode in ("integer", "float-sparse"):
        with pytest.raises(InputError, match='row_padding: artifact "circular", module null'):
            substitute(zeros_model, cm, mode=mode)


def test_version_rules_for_row_padding(ring_model, tmp_path):
    model, x, _, path = ring_model
    zero_model = LEConvMN(6, 5, 3, hidden_channels=(4, 2)).eval()
    zero_path = compress_model(zero_model, density=0.5, num_pes=4, calibration=x).save(
        tmp_path / "zeros.lfz"
    )
    manifest = _manifest(zero_path)
    assert manifest["version"] == 1
    assert all("row_padding" not in b["config"] for b in manifest["blocks"])
    as_v1 = _rewrite_manifest(path, tmp_path / "v1.lfz", lambda m: m.update(version=1))
    with pytest.raises(InputError, match="version 1 has no ConvLSTM row_padding"):
        load(as_v1)

    def edit(value):
        def change(manifest):
            manifest["blocks"][0]["config"]["row_padding"] = value

        return change

    bad = _rewrite_manifest(path, tmp_path / "bad.lfz", edit("reflect"))
    with pytest.raises(InputError, match=r"block 0 \('convlstm'\).*row_padding.*'reflect'"):
        load(bad)
    zeros_v2 = load(_rewrite_manifest(path, tmp_path / "z.lfz", edit("zeros")))
    block = zeros_v2.block("convlstm")
    y_zeros, _ = run_block(zeros_v2, block, x)
    y_ring, _ = run_block(load(path), load(path).block("convlstm"), x)
    assert np.abs(y_zeros - y_ring).max() > 0
    # an explicit "zeros" restates the default: it stands in for the zero-padded module (the
    # ring model's weights, so that its layers outside the artifact are the artifact's host)
    zeros_module = LEConvMN(6, 5, 3, hidden_channels=(4, 2)).eval()
    zeros_module.load_state_dict(model.state_dict())
    with torch.no_grad():
        y_sub, _ = substitute(zeros_module, zeros_v2).convlstm(x)
    np.testing.assert_allclose(y_sub.numpy(), y_zeros.astype(np.float32))


# ------------------------------------------------------------------------- EMG task and CLI


def test_emg_regressor_ring_channels_hparam():
    data = {"dataset": "synthetic"}
    module = EMGRegressor(6, 5, 3, data, hidden=(4, 2), ring_channels=True)
    assert module.hparams.ring_channels is True
    assert module.net.convlstm.row_padding == "circular"
    old = EMGRegressor(6, 5, 3, data, hidden=(4, 2))  # checkpoints without the hparam
    assert old.net.convlstm.row_padding == "zeros" and old.hparams.ring_channels is False
    with pytest.raises(InputError, match="--ring-channels: only for --arch le-convmn"):
        build_network("lstm", 6, 5, 3, (8, 8), ring_channels=True)


def test_cli_ring_channels_reaches_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "ring"
    status, _, err = run_cli(
        ["emg", "train", "--out", str(out), *TINY, "--hidden", "4,2", "--epochs", "1",
         "--chunk", "4", "--limit-train-batches", "2", "--accelerator", "cpu",
         "--ring-channels"],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    from lstmforge.tasks.emg.spec import load_module

    checkpoint = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["ring_channels"] is True
    module = load_module(out / "checkpoints" / "best.ckpt")
    assert module.net.convlstm.row_padding == "circular"


def test_cli_rejects_ring_channels_for_the_lstm(tmp_path, capsys):
    out = tmp_path / "lstm"
    status, _, err = run_cli(
        ["emg", "train", "--out", str(out), *TINY, "--arch", "lstm", "--ring-channels"], capsys
    )
    assert status == 2
    assert "--ring-channels: only for --arch le-convmn" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert not out.exists() or not any(out.iterdir())


def test_substitute_names_the_block_mismatch_before_the_host_layers():
    torch.manual_seed(0)
    source = LEConvMN(6, 5, 3, hidden_channels=(4, 2)).eval()
    cm = compress_model(source, density=0.5, num_pes=2)
    assert {b.name for b in cm.blocks} == {"convlstm"}  # the head stays float in the host
    with pytest.raises(InputError, match=r"hidden_channels: artifact \[4, 2\], module \[4, 3\]"):
        substitute(LEConvMN(6, 5, 3, hidden_channels=(4, 3)).eval(), cm)
    other_head = LEConvMN(6, 5, 3, hidden_channels=(4, 2)).eval()  # same shapes, other weights
    with pytest.raises(InputError, match="layers outside the artifact differ.*model it was"):
        substitute(other_head, cm)
    other_head.load_state_dict(source.state_dict())
    substitute(other_head, cm)  # the same layers outside the artifact: accepted
