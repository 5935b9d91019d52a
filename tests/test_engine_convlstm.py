"""The integer engine on ConvLSTM stacks: lowering oracle, bit-exact fast path, streaming."""

import hashlib
import json

import numpy as np
import pytest
import torch
from torch import nn

from engine_checks import (
    assert_fast_equals_reference_and_streams,
    assert_float_dataflow_equals_the_module,
    assert_same_artifact,
    assert_substituted_model_tracks_the_float_model,
)
from lstmforge.compress import compress_model, load
from lstmforge.engine import run
from lstmforge.engine.fixed_point import SaturationCounter
from lstmforge.engine.integer_datapath import IntegerDatapath
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
    assert_float_dataflow_equals_the_module(module, x)


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


@pytest.mark.parametrize("peephole", [True, "channel", False])
def test_compiled_cell_equals_the_numpy_cell_with_saturation(peephole):
    """The fast backend's compiled element-wise unit (gates flattened per sequence, Hadamard or
    per-channel peepholes broadcast) gives the NumPy unit's integers and clamp counts per site,
    on a model whose pre-activations, cell states and peephole terms saturate."""
    torch.manual_seed(6)
    module = ConvLSTM(2, [4, 3], [3, 1], num_layers=2, frame_size=(5, 4), peephole=peephole)
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(60.0)
    x = torch.randn(2, 3, 2, 5, 4, generator=torch.Generator().manual_seed(7))
    cm = compress_model(module, density=0.8, num_pes=2, calibration=x * 0.05)
    results, counters = [], []
    for backend in ("reference", "fast"):
        counter = SaturationCounter()
        results.append(run(cm, x * 3, backend=backend, counter=counter))
        counters.append(counter)
    (y_ref, s_ref), (y_fast, s_fast) = results
    np.testing.assert_array_equal(y_fast, y_ref)
    for (h, c), (h_ref, c_ref) in zip(s_fast, s_ref, strict=True):
        np.testing.assert_array_equal(h, h_ref)
        np.testing.assert_array_equal(c, c_ref)
    assert dict(counters[1].items()) == dict(counters[0].items())
    sites = ["l0.preactivation", "l1.preactivation"] + ["weight_ci_l1"] * bool(peephole)
    for site in sites:
        assert counters[0][f"<root>.{site}"] > 0, site


def test_fast_equals_reference_and_streaming(forecaster):
    _, x, cm = forecaster
    assert [b.name for b in cm.blocks] == ["encoder", "forecaster"]
    assert "weight_x_l0" not in cm.blocks[1].matrices  # the forecaster has no input
    assert_fast_equals_reference_and_streams(cm, cm.blocks[0], x, forecaster=cm.blocks[1])


def test_substituted_forecaster_tracks_the_float_model(forecaster, tmp_path):
    model, x, cm = forecaster
    cm = load(cm.save(tmp_path / "f.lfz"))
    assert_substituted_model_tracks_the_float_model(model, cm, x, (2, 2, 4, 6, 6))


@pytest.mark.parametrize(("bits", "dtype"), [(16, np.int16), (20, np.int32)])
def test_patches_take_the_narrowest_codes_and_stay_exact(forecaster, bits, dtype):
    """The integer datapath hands the convolutions its codes in the narrowest type of their
    format (int16 for 16-bit activations, int32 for 20-bit ones): the same codes, and the fast
    path still equals the reference."""
    model, x, _ = forecaster
    cm = compress_model(model, density=0.4, num_pes=4, calibration=x, activation_bits=bits)
    block = cm.blocks[0]
    dp = IntegerDatapath(cm, block, "fast")
    codes = dp.enter(x.double().numpy(), "input")
    operand = dp.operand(codes, "input")
    assert operand.dtype == dtype
    np.testing.assert_array_equal(operand, codes)
    assert_fast_equals_reference_and_streams(cm, block, x, forecaster=cm.blocks[1])


def test_run_rejects_a_chain_that_does_not_chain(forecaster):
    _, x, cm = forecaster
    with pytest.raises(InputError, match="has no input"):
        run(cm, x)
    with pytest.raises(InputError, match=r"expected x \[B, T, 1, 6, 6\]"):
        run(cm, x[..., :5])  # the forecaster block has no input: needs substitute or run_block


def test_a_wrong_convlstm_state_is_an_input_error(forecaster):
    from lstmforge.engine import run_block

    _, x, cm = forecaster
    encoder, forecast = cm.blocks
    good = [(np.zeros((2, 4, 6, 6)), np.zeros((2, 4, 6, 6)))]
    run_block(cm, encoder, x.numpy(), good)  # accepted
    run_block(cm, forecast, None, good, steps=2)
    for state, message in [
        (good * 2, "a state of 1 \\(h, c\\) pairs"),
        ([(good[0][0], good[0][1][:1])], r"layer 0 state: expected \(h, c\) \[2, 4, 6, 6\]"),
        ([(good[0][0][:, :3], good[0][1])], "layer 0 state"),
    ]:
        with pytest.raises(InputError, match=message):
            run_block(cm, encoder, x.numpy(), state)
    with pytest.raises(InputError, match=r"layer 0 state \(h, c\) \[B, Hc, H, W\]"):
        run_block(cm, forecast, None, [(np.zeros(3), np.zeros(3))], steps=2)


@pytest.mark.parametrize(
    "input_kernels, kernels", [((5, 3), (1, 5)), ((5, 5), (1, 1)), ((1, 3), (3, 1))]
)
def test_float_dataflow_equals_the_module_with_mixed_kernels(input_kernels, kernels):
    torch.manual_seed(0)
    module = ConvLSTM(
        2, [4, 3], list(kernels), num_layers=2, frame_size=(5, 4), input_kernel_size=input_kernels
    ).double()
    x = torch.randn(2, 3, 2, 5, 4, dtype=torch.float64)
    _, weights, config = assert_float_dataflow_equals_the_module(module, x)
    assert weights["weight_x_l0"].shape == (16, 2 * input_kernels[0] ** 2)
    assert weights["weight_h_l1"].shape == (12, 3 * kernels[1] ** 2)
    assert config["input_kernel_size"] == list(input_kernels)


def test_patches_need_an_odd_kernel():
    with pytest.raises(InputError, match="odd positive int, got 2"):
        patches(np.zeros((1, 1, 4, 4)), 2)


class _MixedForecaster(nn.Module):
    """Encoder with 5x5/3x3 input and 1x1 state kernels; a 2-layer input-less forecaster whose
    layer 1 reads layer 0 through a 5x5 input kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = ConvLSTM(
            1, [4, 3], 1, num_layers=2, frame_size=(6, 6), input_kernel_size=[5, 3]
        )
        self.forecaster = ConvLSTM(
            0, [4, 3], 1, num_layers=2, frame_size=(6, 6), input_kernel_size=[1, 5]
        )

    def forward(self, x):
        _, states = self.encoder(x)
        y, _ = self.forecaster(None, states, steps=2)
        return y


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    torch.manual_seed(5)
    model = _MixedForecaster().eval()
    x = torch.rand(2, 4, 1, 6, 6)
    cm = compress_model(model, density=0.5, num_pes=4, calibration=x)
    path = cm.save(tmp_path_factory.mktemp("mixed") / "mixed.lfz")
    return model, x, cm, path


def _manifest(path):
    with np.load(path, allow_pickle=False) as z:
        return json.loads(z["manifest.json"].tobytes())


def _rewrite_manifest(src, dst, edit):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    manifest = json.loads(arrays["manifest.json"].tobytes())
    edit(manifest)
    text = json.dumps(manifest).encode()
    arrays["manifest.json"] = np.frombuffer(text, np.uint8)
    arrays["manifest.sha256"] = np.frombuffer(hashlib.sha256(text).hexdigest().encode(), np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def test_mixed_kernel_artifact_round_trips(mixed):
    _, _, cm, path = mixed
    manifest = _manifest(path)
    assert manifest["version"] == 2
    enc, fc = manifest["blocks"]
    assert (enc["config"]["kernel_size"], enc["config"]["input_kernel_size"]) == ([1, 1], [5, 3])
    assert (fc["config"]["kernel_size"], fc["config"]["input_kernel_size"]) == ([1, 1], [1, 5])
    shapes = {name: info["shape"] for name, info in enc["matrices"].items()}
    assert shapes == {
        "weight_x_l0": [16, 1 * 5 * 5],
        "weight_h_l0": [16, 4 * 1 * 1],
        "weight_x_l1": [12, 4 * 3 * 3],
        "weight_h_l1": [12, 3 * 1 * 1],
    }
    assert fc["matrices"]["weight_x_l1"]["source_shape"] == [12, 4, 5, 5]
    assert "weight_x_l0" not in fc["matrices"]
    assert_same_artifact(load(path), cm)


def test_mixed_kernel_engine_fast_equals_reference_and_streams(mixed):
    _, x, _, path = mixed
    cm = load(path)
    enc, fc = cm.blocks
    assert_fast_equals_reference_and_streams(cm, enc, x, forecaster=fc)


def test_mixed_kernel_substituted_model_tracks_the_float_model(mixed):
    model, x, _, path = mixed
    cm = load(path)
    assert_substituted_model_tracks_the_float_model(model, cm, x, (2, 2, 3, 6, 6))


def test_equal_kernels_still_make_version_1_artifacts(forecaster, mixed, tmp_path):
    _, x, cm = forecaster
    path = cm.save(tmp_path / "old.lfz")
    manifest = _manifest(path)
    assert manifest["version"] == 1
    assert all("input_kernel_size" not in b["config"] for b in manifest["blocks"])
    # a version 2 reader takes a file without the key as version 1 does
    as_v2 = _rewrite_manifest(path, tmp_path / "v2.lfz", lambda m: m.update(version=2))
    from lstmforge.engine.runner import run_block

    y_v1, _ = run_block(load(path), load(path).blocks[0], x)
    y_v2, _ = run_block(load(as_v2), load(as_v2).blocks[0], x)
    np.testing.assert_array_equal(y_v2, y_v1)
    # the key does not belong in a version 1 file
    mixed_path = mixed[3]
    as_v1 = _rewrite_manifest(mixed_path, tmp_path / "v1.lfz", lambda m: m.update(version=1))
    with pytest.raises(InputError, match="version 1 has no ConvLSTM input_kernel_size"):
        load(as_v1)

    def even(manifest):
        manifest["blocks"][0]["config"]["input_kernel_size"] = [4, 3]

    bad = _rewrite_manifest(mixed_path, tmp_path / "even.lfz", even)
    with pytest.raises(InputError, match=r"block 0 \('encoder'\).*input_kernel_size.*odd"):
        load(bad)
