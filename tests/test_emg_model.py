"""LE-ConvMN, the LSTM regressor, output conditioning, training chunks, streaming, baselines."""

import numpy as np
import pytest
import torch

from emg_tiny import TINY, tiny_subject
from lstmforge.data.emg_splits import TEST, TRAIN
from lstmforge.errors import InputError
from lstmforge.nn import LEConvMN
from lstmforge.tasks.emg.baselines import FlatWindowPredictor, SparseGPRegressor, fit_baseline
from lstmforge.tasks.emg.datamodule import WindowChunks, contiguous_runs
from lstmforge.tasks.emg.dataset import window_arrays
from lstmforge.tasks.emg.evaluate import metrics_report, predict_subject, predict_windows
from lstmforge.tasks.emg.module import EMGRegressor
from lstmforge.tasks.emg.networks import LSTMRegressor, build_network
from lstmforge.tasks.emg.postprocess import OutputConditioner
from lstmforge.tasks.emg.stream import stream_recording


@pytest.fixture(scope="module")
def subject():
    return tiny_subject()


def test_le_convmn_shapes_and_parameters():
    model = LEConvMN(n_channels=12, window=10, n_outputs=10)
    y, state = model(torch.randn(2, 3, 1, 12, 10))
    assert y.shape == (2, 3, 10) and len(state) == 3
    assert [h.shape[1] for h, _ in state] == [64, 32, 10]  # default 64-32-10
    assert model.convlstm.weight_x_l0.shape == (256, 1, 3, 3)
    assert model.convlstm.weight_ci_l0.shape == (64, 12, 10)  # per-pixel peepholes


@pytest.mark.parametrize(
    "model",
    [
        LEConvMN(6, 5, 3, hidden_channels=(4, 2)),
        LSTMRegressor(6, 5, 3, hidden=(8, 8)),
    ],
    ids=["le-convmn", "lstm"],
)
def test_state_carried_in_chunks_equals_one_pass(model):
    torch.manual_seed(0)
    x = torch.randn(2, 7, 1, 6, 5)
    whole, _ = model(x)
    first, state = model(x[:, :3])
    second, _ = model(x[:, 3:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-5, rtol=1e-5)
    # and the state matters: restarting from zero gives different outputs
    fresh, _ = model(x[:, 3:])
    assert not torch.allclose(fresh, second, atol=1e-4)


def test_unknown_architecture_and_bad_hidden():
    with pytest.raises(InputError, match="arch must be one of"):
        build_network("transformer", 12, 10, 10, (8,))
    with pytest.raises(InputError, match="one hidden size"):
        LSTMRegressor(12, 10, 10, hidden=(8, 4))


def test_le_convmn_peephole_choice():
    data = {"dataset": "synthetic"}
    sizes = {"pixel": (4, 12, 10), "channel": (4, 1, 1)}
    for kind, shape in sizes.items():
        module = EMGRegressor(12, 10, 10, data, hidden=(4,), peephole=kind)
        assert module.net.convlstm.weight_ci_l0.shape == shape
    none = EMGRegressor(12, 10, 10, data, hidden=(4,), peephole="none")
    assert not hasattr(none.net.convlstm, "weight_ci_l0")
    assert EMGRegressor(12, 10, 10, data, hidden=(4,)).hparams.peephole == "pixel"  # old default
    with pytest.raises(InputError, match="--peephole: expected one of"):
        build_network("le-convmn", 12, 10, 10, (4,), peephole="diagonal")
    with pytest.raises(InputError, match="--peephole: only for --arch le-convmn"):
        build_network("lstm", 12, 10, 10, (8,), peephole="channel")


def test_le_convmn_kernel_size_choice():
    data = {"dataset": "synthetic"}
    module = EMGRegressor(12, 10, 10, data, hidden=(4, 2), peephole="channel", kernel_size=5)
    assert module.net.convlstm.weight_x_l1.shape[-2:] == (5, 5)
    assert module.net.convlstm.weight_h_l1.shape[-2:] == (5, 5)
    assert module.net(torch.zeros(1, 3, 1, 12, 10))[0].shape == (1, 3, 10)
    assert EMGRegressor(12, 10, 10, data, hidden=(4,)).hparams.kernel_size == 3  # old default
    with pytest.raises(InputError, match="--kernel-size: expected an odd size"):
        build_network("le-convmn", 12, 10, 10, (4,), kernel_size=4)
    with pytest.raises(InputError, match="--kernel-size: only for --arch le-convmn"):
        build_network("lstm", 12, 10, 10, (8,), kernel_size=5)


def test_output_conditioner_hand_worked():
    smooth = OutputConditioner(alpha=0.5)
    np.testing.assert_allclose(smooth.run(np.array([[0.0], [2.0], [2.0]]))[:, 0], [0, 1, 1.5])
    band = OutputConditioner(deadband=0.1)
    out = band.run(np.array([[0.0], [0.05], [0.2], [0.25], [0.1]]))[:, 0]
    np.testing.assert_allclose(out, [0.0, 0.0, 0.2, 0.2, 0.2])
    stepwise = OutputConditioner(0.3, 0.05)
    seq = np.random.default_rng(0).normal(size=(20, 2))
    np.testing.assert_allclose(
        np.stack([stepwise.step(v) for v in seq]), OutputConditioner(0.3, 0.05).run(seq)
    )
    with pytest.raises(InputError, match="alpha"):
        OutputConditioner(alpha=0.0)
    with pytest.raises(InputError, match="deadband"):
        OutputConditioner(deadband=-1.0)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InputError, match="deadband must be a finite number"):
            OutputConditioner(deadband=bad)
    with pytest.raises(InputError, match="alpha"):
        OutputConditioner(alpha=float("nan"))


def test_contiguous_runs_and_training_chunks_stay_inside_training_frames(subject):
    assert contiguous_runs(np.array([0, 1, 1, 0, 1], dtype=bool)) == [(1, 3), (4, 5)]
    pre = TINY.preprocess
    chunks = WindowChunks([subject], TRAIN, pre.window, pre.step, chunk=4)
    assert len(chunks) > 0
    span = 3 * pre.step + pre.window
    recording = subject.recordings[0]
    for _, first in chunks.index:
        assert np.all(recording.split[first : first + span] == TRAIN)
    x, y = chunks[0]
    assert x.shape == (4, 1, 12, pre.window) and y.shape == (4, 10)
    r, first = chunks.index[0]
    last_frame = first + pre.window - 1
    torch.testing.assert_close(y[0], torch.from_numpy(recording.targets[last_frame]))
    torch.testing.assert_close(
        x[0, 0], torch.from_numpy(recording.frames[first : last_frame + 1].T)
    )


def test_normalisers_are_fitted_on_training_frames_only(subject):
    recording = subject.recordings[0]
    train = recording.split == TRAIN
    np.testing.assert_allclose(recording.frames[train].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(recording.frames[train].std(axis=0), 1.0, atol=1e-3)
    assert not np.allclose(recording.frames[recording.split == TEST].mean(axis=0), 0.0, atol=1e-3)


def test_offline_prediction_is_independent_of_chunking(subject):
    torch.manual_seed(0)
    model = LEConvMN(12, TINY.preprocess.window, 10, hidden_channels=(4, 2)).eval()
    images, _, _ = window_arrays(subject.recordings[0], TINY.preprocess.window, 5)
    a = predict_windows(model, images[:40], chunk=256)
    b = predict_windows(model, images[:40], chunk=7)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_stream_equals_offline_evaluation(subject):
    torch.manual_seed(0)
    module = EMGRegressor(12, TINY.preprocess.window, 10, TINY.to_dict(), hidden=(4, 2)).eval()
    result = stream_recording(module, subject, TINY.preprocess, alpha=0.6, deadband=0.5)
    images, codes = window_arrays(subject.recordings[0], TINY.preprocess.window, 5)[::2]
    assert result.predictions.shape == (images.shape[0], 10)
    assert result.max_abs_diff_vs_offline < 1e-3  # degrees
    offline = predict_subject(module, subject, TINY.preprocess, alpha=0.6, deadband=0.5)
    np.testing.assert_allclose(result.predictions[codes == TEST], offline.predicted, atol=1e-3)
    summary = result.summary()
    assert summary["windows"] == images.shape[0] and summary["latency_p95_ms"] > 0
    assert summary["window_period_ms"] == pytest.approx(100.0)


def test_ridge_baseline_beats_the_mean_and_report_summarises_subjects(subject):
    pre = TINY.preprocess
    ridge = predict_subject(fit_baseline("ridge", subject, pre), subject, pre)
    report = metrics_report([ridge, ridge])
    assert report["subjects"]["1"]["r2"] > 0.2
    assert report["summary"]["cc"] == pytest.approx(report["subjects"]["1"]["cc"])
    assert report["summary"]["cc_std"] == pytest.approx(0.0)
    assert set(report["subjects"]["1"]["per_joint"]) == set(subject.joint_names)
    with pytest.raises(InputError, match="baseline must be one of"):
        fit_baseline("svm", subject, pre)


def test_sparse_gp_recovers_a_smooth_function():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(300, 1))
    y = np.stack([np.sin(x[:, 0]), np.cos(x[:, 0])], axis=1) + 0.05 * rng.normal(size=(300, 2))
    gp = SparseGPRegressor(n_inducing=20, iterations=60).fit(x, y)
    grid = np.linspace(-2.5, 2.5, 50)[:, None]
    truth = np.stack([np.sin(grid[:, 0]), np.cos(grid[:, 0])], axis=1)
    assert np.abs(gp.predict(grid) - truth).max() < 0.15
    wrapped, _ = FlatWindowPredictor(gp)(torch.from_numpy(grid.astype(np.float32))[None], None)
    assert wrapped.shape == (1, 50, 2)


def test_recording_validation_scores_the_causal_whole_recording_pass(subject):
    from lstmforge.data.emg_splits import VAL
    from lstmforge.tasks.emg.datamodule import EMGDataModule

    datamodule = EMGDataModule(TINY, None, chunk=4, validation="recording")
    x, y, mask = next(iter(datamodule.val_dataloader()))
    assert x.shape[1:] == (1, 12, TINY.preprocess.window) and mask.any() and not mask.all()
    torch.manual_seed(0)
    module = EMGRegressor(12, TINY.preprocess.window, 10, TINY.to_dict(), hidden=(4, 2)).eval()
    logged = {}
    module.log = lambda name, value, **_: logged.__setitem__(name, float(value))
    with torch.no_grad():
        module.validation_step((x, y, mask), 0)
    images, targets, codes = window_arrays(datamodule.subjects[0].recordings[0], 10, 5)
    predicted = predict_windows(module, images)
    expected = np.mean((predicted[codes == VAL] - targets[codes == VAL]) ** 2)
    assert logged["val_loss"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(InputError, match="validation must be one of"):
        EMGDataModule(TINY, None, validation="holdout")
