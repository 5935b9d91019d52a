"""Encoder-forecaster and FC-LSTM models, named configurations, losses, baselines."""

import numpy as np
import pytest
import torch

from lstmforge.data.units import rainrate_to_dbz
from lstmforge.errors import InputError
from lstmforge.nn import ConvLSTM, EncoderForecaster, FCForecaster
from lstmforge.tasks.nowcast.baselines import optical_flow_extrapolation, persistence
from lstmforge.tasks.nowcast.configs import ARCHS, build_model, get_arch
from lstmforge.tasks.nowcast.data import default_data
from lstmforge.tasks.nowcast.losses import balanced_weights, nowcast_loss, to_prediction
from lstmforge.tasks.nowcast.module import NowcastModule


def test_encoder_forecaster_copies_states_into_an_input_free_forecaster():
    torch.manual_seed(0)
    model = EncoderForecaster(4, [6, 5], 3, frame_size=(8, 8))
    assert not hasattr(model.forecaster[0], "weight_x_l0")  # layer 0 has no input
    assert model.forecaster[1].weight_x_l0.shape == (20, 6, 3, 3)  # reads layer 0's hidden
    assert model.head.in_channels == 11  # all forecaster states, concatenated
    x = torch.rand(2, 5, 4, 8, 8)
    out = model(x, 7)
    assert out.shape == (2, 7, 4, 8, 8)
    # the prediction is what the forecaster makes of the encoder's final states
    _, states = model.encoder(x)
    h0, _ = model.forecaster[0](None, [states[0]], steps=7)
    h1, _ = model.forecaster[1](h0, [states[1]])
    expected = model.head(torch.cat([h0, h1], 2).flatten(0, 1)).reshape(2, 7, 4, 8, 8)
    torch.testing.assert_close(out, expected)
    # horizons are free: the first frames do not depend on how far we predict
    torch.testing.assert_close(model(x, 3), out[:, :3])
    out.sum().backward()
    assert model.encoder.weight_x_l0.grad.abs().sum() > 0


def test_fc_forecaster_shapes_and_conditioning():
    torch.manual_seed(0)
    model = FCForecaster((1, 6, 6), [12, 10])
    x = torch.rand(3, 4, 1, 6, 6)
    out = model(x, 5)
    assert out.shape == (3, 5, 1, 6, 6)
    torch.testing.assert_close(model(x, 2), out[:, :2])
    with pytest.raises(InputError, match=r"\[B, T, 1, 6, 6\]"):
        model(torch.rand(3, 4, 1, 5, 5), 2)
    with pytest.raises(InputError, match="steps"):
        model(x, 0)


@pytest.mark.parametrize(("output", "feedback"), [("logits", torch.sigmoid), ("linear", None)])
def test_fc_forecaster_feeds_back_its_prediction(output, feedback):
    torch.manual_seed(0)
    model = FCForecaster((1, 4, 4), [8], output=output)
    x = torch.rand(2, 3, 1, 4, 4)
    out = model(x, 3)
    # unrolled by hand: encoder, then each step reads the previous prediction
    _, state = model.encoder[0](x.reshape(2, 3, 16))
    frame = x[:, -1].reshape(2, 1, 16)
    for t in range(3):
        top, state = model.forecaster[0](frame, state)
        step = model.head(top)
        torch.testing.assert_close(out[:, t].reshape(2, 1, 16), step)
        frame = feedback(step) if feedback else step.clamp(0.0, 1.0)
    with pytest.raises(InputError, match="output"):
        FCForecaster((1, 4, 4), [8], output="relu")
    assert build_model("tiny-fc-lstm", 8, loss="mse").output == "linear"
    assert build_model("tiny-fc-lstm", 8, loss="bce").output == "logits"


def test_named_paper_configurations():
    assert get_arch("convlstm-5x5-128-64-64").hidden == (128, 64, 64)
    assert get_arch("fc-lstm-2048-2048").hidden == (2048, 2048)
    model = build_model("convlstm-5x5-128-64-64", 64)
    assert isinstance(model.encoder, ConvLSTM)
    assert model.encoder.weight_x_l0.shape == (4 * 128, 16, 5, 5)  # 4x4 patches: 16 channels
    assert model.encoder.weight_ci_l0.shape == (128, 16, 16)  # per-pixel peepholes on 16x16
    assert build_model("radar-convlstm-3x3-64-64", 100).encoder.weight_x_l0.shape[1] == 4
    assert all(name in ARCHS for name in ("convlstm-5x5-256", "convlstm-5x5-128-128"))
    with pytest.raises(InputError, match="unknown architecture 'nope'"):
        get_arch("nope")
    with pytest.raises(InputError, match="not divisible by the patch size 4"):
        build_model("tiny-convlstm", 30)


@pytest.mark.parametrize(
    "name, hidden",
    [("convlstm-9x9-1x1-128-128", (128, 128)), ("convlstm-9x9-1x1-128-64-64", (128, 64, 64))],
)
def test_nine_by_nine_one_by_one_configurations(name, hidden):
    arch = get_arch(name)
    assert (arch.hidden, arch.kernel, arch.input_kernel, arch.patch) == (hidden, 1, 9, 4)
    torch.manual_seed(0)
    model = build_model(name, 16)  # 4x4 patches: 16 channels on 4x4 frames
    enc = model.encoder
    assert enc.kernel_size == [1] * len(hidden) and enc.input_kernel_size == [9] * len(hidden)
    assert enc.weight_x_l0.shape == (4 * 128, 16, 9, 9)  # the frames, 9x9
    assert enc.weight_h_l0.shape == (4 * 128, 128, 1, 1)
    assert enc.weight_x_l1.shape == (4 * hidden[1], 128, 9, 9)  # layer 0's hidden state, 9x9
    assert not hasattr(model.forecaster[0], "weight_x_l0")  # no input
    assert model.forecaster[0].weight_h_l0.shape == (4 * 128, 128, 1, 1)
    assert model.forecaster[1].weight_x_l0.shape == (4 * hidden[1], 128, 9, 9)
    assert model.forecaster[1].weight_h_l0.shape == (4 * hidden[1], hidden[1], 1, 1)
    with torch.no_grad():
        out = model(torch.rand(1, 2, 16, 4, 4), 2)
    assert out.shape == (1, 2, 16, 4, 4) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "hidden, kernel, input_kernel, count",
    [
        ((256,), 5, None, 13_524_496),
        ((128, 128), 5, None, 10_042_896),
        ((128, 64, 64), 5, None, 7_585_296),
        ((128, 128), 1, 9, 11_550_224),
        ((128, 64, 64), 1, 9, 8_830_480),
    ],
)
def test_parameter_counts_of_shi_et_al_table_1(hidden, kernel, input_kernel, count):
    """The (9x9)-1x1 reading (9x9 on every input-to-state convolution) gives the paper's
    counts; so does the 5x5 family (per-channel peepholes, 16 x 16 x 16 patch frames)."""
    model = EncoderForecaster(
        16, hidden, kernel, frame_size=(16, 16), peephole="channel", input_kernel_size=input_kernel
    )
    assert sum(p.numel() for p in model.parameters()) == count


def test_encoder_forecaster_input_kernel_per_layer():
    torch.manual_seed(0)
    model = EncoderForecaster(4, [6, 5], [1, 3], frame_size=(8, 8), input_kernel_size=[5, 3])
    assert model.encoder.weight_x_l0.shape == (24, 4, 5, 5)
    assert model.encoder.weight_h_l1.shape == (20, 5, 3, 3)
    assert model.forecaster[1].weight_x_l0.shape == (20, 6, 3, 3)
    assert model(torch.rand(2, 3, 4, 8, 8), 2).shape == (2, 2, 4, 8, 8)
    with pytest.raises(InputError, match="one input kernel size per layer"):
        EncoderForecaster(4, [6, 5], 3, frame_size=(8, 8), input_kernel_size=[5])
    with pytest.raises(InputError, match="input_kernel_size: expected odd"):
        EncoderForecaster(4, [6, 5], 3, frame_size=(8, 8), input_kernel_size=4)


def test_balanced_weights_by_hand():
    rates = np.array([1.0, 3.0, 7.0, 20.0, 50.0])
    unit = torch.from_numpy(rainrate_to_dbz(rates) / 70.0)
    assert balanced_weights(unit).tolist() == [1.0, 2.0, 5.0, 10.0, 30.0]


def test_losses():
    logits = torch.randn(2, 3, 1, 4, 4)
    target = torch.rand(2, 3, 1, 4, 4)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    assert nowcast_loss("bce", logits, target).item() == pytest.approx(bce.item() / 6, rel=1e-5)
    mse = torch.mean((logits - target) ** 2)  # linear output for the regression losses
    assert nowcast_loss("mse", logits, target).item() == pytest.approx(mse.item(), rel=1e-6)
    torch.testing.assert_close(to_prediction("bce", logits), torch.sigmoid(logits))
    assert to_prediction("mse", torch.tensor([-0.5, 0.3, 1.5])).tolist() == pytest.approx(
        [0.0, 0.3, 1.0]
    )
    assert nowcast_loss("balanced-mse", logits, target) >= nowcast_loss("mse", logits, target)
    with pytest.raises(InputError, match="--loss"):
        nowcast_loss("hinge", logits, target)


def test_module_works_on_whole_frames_through_patches():
    data = default_data("moving-mnist", frame_size=16)
    module = NowcastModule("tiny-convlstm", data.to_dict(), "bce")
    assert module.model.encoder.in_channels == 16
    frames = module.forecast(torch.rand(2, 3, 1, 16, 16), 4)
    assert frames.shape == (2, 4, 1, 16, 16) and 0 < frames.min() and frames.max() < 1
    with pytest.raises(InputError, match="--loss"):
        NowcastModule("tiny-convlstm", data.to_dict(), "l1")


def test_persistence_and_optical_flow_baselines():
    rng = np.random.default_rng(0)
    from lstmforge.data.radar_synthetic import power_law_field

    field = np.clip(power_law_field(64, 3.5, rng), 0, None)
    frames = np.stack([np.roll(field, (t, 2 * t), axis=(0, 1)) for t in range(8)])[None]
    past, future = frames[:, :4], frames[:, 4:]
    np.testing.assert_array_equal(persistence(past, 4), np.repeat(past[:, -1:], 4, axis=1))
    flow = optical_flow_extrapolation(past, 4)
    assert flow.shape == future.shape
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))  # away from inflow edges
    flow_err = np.mean((flow - future)[inner] ** 2)
    persist_err = np.mean((persistence(past, 4) - future)[inner] ** 2)
    assert flow_err < 0.2 * persist_err


@pytest.mark.parametrize("arch", ["tiny-fc-lstm", "tiny-convlstm"])
def test_training_step_under_bf16_autocast(arch):
    """What Lightning's bf16-mixed does on a GPU, done on the CPU: the step runs and trains."""
    data = default_data("moving-mnist", num_train=2, num_val=2, num_test=2, in_len=3, out_len=2)
    module = NowcastModule(arch, data.to_dict(), "bce", 1e-3)
    gen = torch.Generator().manual_seed(0)
    past, future = torch.rand(2, 3, 1, 64, 64, generator=gen), torch.rand(2, 2, 1, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = module.training_step((past, future), 0)
    loss.backward()
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and all(g is not None and torch.isfinite(g).all() for g in grads)
