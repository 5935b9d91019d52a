"""`lstmforge nowcast train|evaluate|predict` end to end on tiny data, and bad input."""

import json
import re
import shutil

import h5py
import numpy as np
import pytest
import torch

from lstmforge import compress, engine
from lstmforge.cli import main
from lstmforge.data.radar_hdf5 import save_radar_hdf5
from lstmforge.data.radar_synthetic import RadarSynthConfig, synthetic_radar_dataset
from lstmforge.errors import InputError
from lstmforge.tasks import get_task
from lstmforge.tasks.nowcast.evaluate import evaluation_device
from lstmforge.tasks.nowcast.predict import load_nowcast, predict
from lstmforge.tasks.nowcast.spec import build_datamodule, load_module

TINY_RADAR = [
    "--dataset", "radar", "--arch", "tiny-convlstm", "--frame-size", "32", "--in-len", "3",
    "--out-len", "4", "--num-train", "4", "--num-val", "2", "--num-test", "3",
    "--batch-size", "2", "--epochs", "1", "--accelerator", "cpu",
]  # fmt: skip


def run_cli(args):
    """Run the real entry point in-process; return its exit status."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


@pytest.fixture(scope="module")
def radar_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("radar")
    assert run_cli(["nowcast", "train", "--out", str(out), *TINY_RADAR]) == 0
    return out / "checkpoints" / "best.ckpt"


def test_evaluate_with_baselines_writes_numbers_and_figures(radar_run, tmp_path):
    report, figures = tmp_path / "eval.json", tmp_path / "fig"
    args = ["nowcast", "evaluate", "--checkpoint", str(radar_run), "--baselines"]
    args += ["--json", str(report), "--figures", str(figures), "--examples", "1"]
    assert run_cli(args) == 0
    results = json.loads(report.read_text())["results"]
    assert set(results) == {"model", "persistence", "optical_flow"}
    for scores in results.values():
        for key in ("csi_0.5", "pod_30", "far_2", "mse", "correlation", "fss_0.5_s5"):
            assert key in scores
        assert isinstance(scores["mse"], float) and scores["mse"] >= 0
        assert len(scores["per_lead"]["csi_0.5"]) == 4
    assert (figures / "example_00.png").stat().st_size > 0
    assert (figures / "example_00.gif").read_bytes()[:3] == b"GIF"
    assert (figures / "skill_vs_lead.png").is_file()


def test_radar_default_loss_is_balanced_mse(radar_run):
    assert load_module(radar_run).hparams.loss == "balanced-mse"


def test_predict_api_any_horizon_and_input_length(radar_run):
    module = load_module(radar_run)
    past = synthetic_radar_dataset(2, 9, RadarSynthConfig(frame_size=32, seq_len=6))
    forecast = predict(module, past, horizon=9)  # trained for 4 frames from 3
    assert forecast.shape == (2, 9, 32, 32) and forecast.dtype == np.float32
    assert 0.0 <= forecast.min() and forecast.max() <= 70.0  # dBZ
    np.testing.assert_allclose(predict(module, past[1], horizon=2), forecast[1, :2], atol=1e-4)
    with pytest.raises(InputError, match=r"expects \(32, 32\)"):
        predict(module, np.zeros((3, 16, 16), dtype=np.float32), 2)


def test_predict_cli_exports_a_nowcast_pysteps_reads(radar_run, tmp_path):
    from pysteps.utils.conversion import to_reflectivity
    from pysteps.verification.detcatscores import det_cat_fct

    source = tmp_path / "past.h5"
    save_radar_hdf5(source, synthetic_radar_dataset(2, 4, RadarSynthConfig(32, seq_len=5)))
    out = tmp_path / "nowcast.npz"
    args = ["nowcast", "predict", "--checkpoint", str(radar_run), "--input", str(source)]
    assert run_cli([*args, "--out", str(out), "--horizon", "6", "--sequence", "1"]) == 0
    precip, metadata = load_nowcast(out)
    assert precip.shape == (6, 32, 32) and metadata["unit"] == "mm/h"
    dbz, meta_dbz = to_reflectivity(precip, metadata)
    assert meta_dbz["unit"] == "dBZ" and meta_dbz["zr_a"] == 58.53
    assert np.isfinite(dbz[precip > 0]).all()
    det_cat_fct(precip, precip, 0.5, ["CSI"])  # verification tools accept the arrays


def test_predict_keeps_the_inputs_z_r_constants_and_time_step(radar_run, tmp_path):
    """A Marshall-Palmer (200, 1.6), 5-minute file: the forecast's rain rates and metadata use
    the file's constants, so converting back gives the model's dBZ, not another scale."""
    from lstmforge.data.units import dbz_to_rainrate

    dbz = synthetic_radar_dataset(1, 4, RadarSynthConfig(32, seq_len=5))
    source = tmp_path / "mp.h5"
    rain = dbz_to_rainrate(dbz, 200.0, 1.6)
    save_radar_hdf5(source, rain, units="mm/h", zr_a=200.0, zr_b=1.6, timestep_minutes=5.0)
    out = tmp_path / "nowcast.npz"
    args = ["nowcast", "predict", "--checkpoint", str(radar_run), "--input", str(source)]
    assert run_cli([*args, "--out", str(out), "--horizon", "2"]) == 0
    precip, metadata = load_nowcast(out)
    assert (metadata["zr_a"], metadata["zr_b"], metadata["timestep"]) == (200.0, 1.6, 5.0)
    from lstmforge.data.radar_hdf5 import load_radar_hdf5

    forecast = predict(load_module(radar_run), load_radar_hdf5(source).dbz[0], 2)
    expected = dbz_to_rainrate(forecast, 200.0, 1.6)
    wet = precip > 0
    np.testing.assert_allclose(precip[wet], expected[wet], rtol=1e-5)


def test_task_spec(radar_run):
    spec = get_task("nowcast")
    module = spec.load_module(radar_run)
    assert spec.headline(module.hparams) == ("csi_0.5", True)
    assert spec.headline({"data_config": {"dataset": "moving-mnist"}}) == ("cross_entropy", False)
    scores = spec.evaluate(module, spec.build_datamodule(module.hparams, None))
    assert isinstance(scores["csi_0.5"], float) and "per_lead" not in scores


def test_moving_mnist_train_and_evaluate_with_a_test_file(tmp_path):
    out = tmp_path / "run"
    args = ["nowcast", "train", "--out", str(out), "--dataset", "moving-mnist", "--arch"]
    args += ["tiny-fc-lstm", "--frame-size", "64", "--in-len", "3", "--out-len", "2"]
    args += ["--num-train", "4", "--num-val", "2", "--num-test", "3", "--batch-size", "2"]
    args += ["--epochs", "1", "--num-workers", "1", "--max-minutes", "5"]
    assert run_cli([*args, "--accelerator", "cpu"]) == 0
    test_seq = np.random.default_rng(0).integers(0, 256, (5, 3, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "seq.npy", test_seq)
    report = tmp_path / "eval.json"
    args = ["nowcast", "evaluate", "--checkpoint", str(out / "checkpoints" / "best.ckpt")]
    args += ["--test-file", str(tmp_path / "seq.npy"), "--json", str(report), "--baselines"]
    assert run_cli(args) == 0
    payload = json.loads(report.read_text())
    assert payload["test_windows"] == 3  # the file's 3 sequences of 3 + 2 frames
    results = payload["results"]
    for scores in results.values():
        assert scores["cross_entropy"] > 0 and -1 < scores["ssim"] < 1
        assert set(scores) >= {"mse", "mae", "psnr"}
    module = load_module(out / "checkpoints" / "best.ckpt", arch="tiny-fc-lstm")
    datamodule = build_datamodule(module.hparams, None)
    assert get_task("nowcast").evaluate(module, datamodule)["cross_entropy"] > 0


def _write(path, values, units="dBZ"):
    with h5py.File(path, "w") as fh:
        fh.create_dataset("radar", data=values).attrs["units"] = units
    return path


def test_bad_input_gives_one_line_and_exit_2(radar_run, tmp_path, capsys):
    other_task = tmp_path / "emg.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"task": "emg", "arch": "x"}}, other_task)
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(radar_run.read_bytes()[:500])
    nan_frames = np.zeros((10, 7, 32, 32), dtype=np.float32)
    nan_frames[3, 2, 5, 5] = np.nan
    cases = [
        ([], "missing.ckpt", "checkpoint file not found"),
        ([], other_task, "from task 'emg', expected 'nowcast'"),
        ([], corrupt, "not a readable checkpoint"),
        (["--data", _write(tmp_path / "nan.h5", nan_frames)], radar_run, "non-finite"),
        (
            ["--data", _write(tmp_path / "short.h5", np.zeros((10, 5, 32, 32)))],
            radar_run,
            "fewer than in_len \\+ out_len = 7",
        ),
        (
            ["--data", _write(tmp_path / "size.h5", np.zeros((10, 7, 16, 16)))],
            radar_run,
            "expected 32x32",
        ),
        (["--data", tmp_path / "none.h5"], radar_run, "radar file not found"),
        (["--accelerator", "tpu"], radar_run, "--accelerator: expected auto, cpu or gpu"),
    ]
    for extra, checkpoint, message in cases:
        report = tmp_path / "report.json"
        args = ["nowcast", "evaluate", "--checkpoint", str(checkpoint), "--json", str(report)]
        assert run_cli([*args, *map(str, extra)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(message, err), err
        assert not report.exists()


def test_bad_training_options_exit_2_without_a_run(tmp_path, capsys):
    garbage = tmp_path / "garbage.npy"
    garbage.write_text("not an array")
    for extra, message in [
        (["--arch", "nope"], "unknown architecture"),
        (["--frame-size", "30"], "not divisible by the patch size"),
        (["--dataset", "satellite"], "--dataset"),
        (["--loss", "hinge"], "--loss"),
        (["--peephole", "diagonal"], "--peephole"),
        (["--arch", "tiny-fc-lstm", "--peephole", "channel"], "only for ConvLSTM"),
        (["--max-minutes", "0"], "max_minutes must be a finite number > 0"),
        (["--max-minutes", "inf"], "max_minutes must be a finite number > 0"),
        (["--num-workers", "-1"], "--num-workers"),
        (["--compile", "fast"], "--compile: expected one of"),
        (["--lr", "nan"], "must be a finite number > 0"),
        (["--test-file", str(tmp_path / "none.npy")], "Moving MNIST file not found"),
        (["--test-file", str(garbage)], "not a readable .npy file"),
        (["--data", str(tmp_path / "none.h5")], "radar file not found"),
    ]:
        out = tmp_path / "run"
        assert run_cli(["nowcast", "train", "--out", str(out), *TINY_RADAR, *extra]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()  # refused before anything was written


def test_peephole_choice_is_trained_and_restored(tmp_path):
    out = tmp_path / "channel"
    assert (
        run_cli(["nowcast", "train", "--out", str(out), *TINY_RADAR, "--peephole", "channel"]) == 0
    )
    module = load_module(out / "checkpoints" / "best.ckpt")
    assert module.hparams.peephole == "channel"
    assert module.model.encoder.peephole == "channel"
    assert module.model.encoder.weight_ci_l0.shape == (4, 1, 1)  # one weight per channel


def test_evaluate_through_a_compressed_artifact(radar_run, tmp_path):
    module = load_module(radar_run)
    past, _ = next(iter(build_datamodule(module.hparams, None).test_dataloader()))
    cm = compress.compress_model(
        module, density=1.0, num_pes=2, calibration=lambda m: m.forecast(past, 4)
    )
    assert {block.name for block in cm.blocks} == {"model.encoder", "model.forecaster.0"}
    artifact = tmp_path / "model.lfz"
    cm.save(artifact)
    reports = {}
    for name, extra in (("float", []), ("engine", ["--artifact", str(artifact)])):
        reports[name] = tmp_path / f"{name}.json"
        args = ["nowcast", "evaluate", "--checkpoint", str(radar_run)]
        assert run_cli([*args, "--json", str(reports[name]), *extra]) == 0
    engine = json.loads(reports["engine"].read_text())
    floating = json.loads(reports["float"].read_text())
    assert engine["artifact"] == str(artifact) and floating["artifact"] is None
    # 12-bit weights, 16-bit states: the integer engine stays close to the float model
    e, f = engine["results"]["model"], floating["results"]["model"]
    assert e["mse"] == pytest.approx(f["mse"], rel=0.05, abs=1e-3)
    assert e["correlation"] == pytest.approx(f["correlation"], abs=0.01)
    assert e["mse"] != f["mse"]  # the engine really ran instead of the float cores


def test_retrained_artifact_runs_with_its_retrained_checkpoint(radar_run, tmp_path):
    """`compress --retrain-epochs` fine-tunes the layers outside the artifact as well (here the
    output convolution): it writes that float model next to the artifact, the artifact's
    figures are reproduced from it, and the dense checkpoint is refused as the artifact's host."""
    artifact, report = tmp_path / "r.lfz", tmp_path / "r.json"
    args = ["compress", str(radar_run), "--density", "0.5", "--pes", "2", "--retrain-epochs", "1"]
    args += ["--prune-steps", "1", "--out", str(artifact), "--json", str(report)]
    assert run_cli(args) == 0
    figures = json.loads(report.read_text())
    retrained = tmp_path / "r-retrained.ckpt"
    assert figures["retrained_checkpoint"] == str(retrained.resolve())
    assert load_module(retrained).hparams.arch == load_module(radar_run).hparams.arch
    assert compress.load(artifact).settings["retrained_checkpoint"] == str(retrained.resolve())
    assert not torch.equal(  # fine-tuning moved the layer the artifact does not hold
        load_module(retrained).model.head.weight, load_module(radar_run).model.head.weight
    )
    scores = {}
    for name, extra in (("pruned_float", []), ("pruned_integer", ["--artifact", str(artifact)])):
        out = tmp_path / f"{name}.json"
        cli = ["nowcast", "evaluate", "--checkpoint", str(retrained), "--json", str(out)]
        assert run_cli([*cli, *extra]) == 0
        scores[name] = json.loads(out.read_text())["results"]["model"]
    for name in scores:
        assert scores[name]["mse"] == pytest.approx(figures["metrics"][name]["mse"], rel=1e-6)
    with pytest.raises(InputError, match="r-retrained.ckpt"):
        engine.substitute(load_module(radar_run), compress.load(artifact))
    dense = ["nowcast", "evaluate", "--checkpoint", str(radar_run), "--artifact", str(artifact)]
    assert run_cli(dense) == 2
    # the retrained model compressed again: never written over by its own run ...
    again = ["compress", str(retrained), "--density", "0.25", "--pes", "2", "--out", str(artifact)]
    before = retrained.read_bytes()
    assert run_cli([*again, "--retrain-epochs", "1", "--prune-steps", "1"]) == 2
    assert retrained.read_bytes() == before
    # ... and kept by a run without retraining, whose artifact it hosts
    assert run_cli([*again, "--no-evaluate"]) == 0
    assert retrained.read_bytes() == before
    engine.substitute(load_module(retrained), compress.load(artifact))
    # a run without retraining into another artifact's name drops that artifact's model
    assert (
        run_cli(["compress", str(radar_run), "--pes", "2", "--no-evaluate", "--out", str(artifact)])
        == 0
    )
    assert not retrained.exists()


def test_per_matrix_densities_by_hand_and_by_sensitivity(radar_run, tmp_path):
    """`--matrix-density` sets chosen matrices' densities (through the retraining schedule too);
    `--sensitivity` shares `--density` out by measured sensitivity (Han et al. 2015)."""
    artifact, report = tmp_path / "m.lfz", tmp_path / "m.json"
    base = ["compress", str(radar_run), "--pes", "2", "--out", str(artifact), "--no-evaluate"]
    chosen = "model.encoder:weight_h_l0"
    args = [*base, "--density", "0.25", "--matrix-density", f"{chosen}=0.5"]
    args += ["--retrain-epochs", "1", "--prune-steps", "2", "--json", str(report)]
    assert run_cli(args) == 0
    figures = json.loads(report.read_text())
    densities = figures["matrix_densities"]
    assert densities[chosen] == 0.5
    assert {d for key, d in densities.items() if key != chosen} == {0.25}
    assert (
        figures["retrain"][0]["density"][chosen]
        > figures["retrain"][0]["density"]["model.encoder:weight_x_l0"]
    )  # each matrix follows its own schedule
    kept = {
        f"{block.name}:{name}": (m.dense_codes() != 0).mean()
        for block in compress.load(artifact).blocks
        for name, m in block.matrices.items()
    }
    assert set(kept) == set(densities)
    for key, d in densities.items():
        assert kept[key] == pytest.approx(d, abs=0.05)
    assert run_cli([*base, "--matrix-density", "nope=0.1"]) == 2
    assert run_cli([*base, "--matrix-density", "weight_h_l0"]) == 2
    assert run_cli([*base, "--matrix-density", "weight_h_l0=2"]) == 2
    both = [*base, "--matrix-density", "weight_h_l0=0.5", "--sensitivity", "0.1"]
    assert run_cli(both) == 2
    assert run_cli([*base, "--density", "0.3", "--sensitivity", "0.1", "--json", str(report)]) == 0
    shared_report = json.loads(report.read_text())
    shared = shared_report["matrix_densities"]
    assert set(shared_report["sensitivity"]) == set(shared)
    sizes = {
        f"{block.name}:{name}": m.dense_codes().size
        for block in compress.load(artifact).blocks
        for name, m in block.matrices.items()
    }
    overall = sum(shared[k] * sizes[k] for k in sizes) / sum(sizes.values())
    assert overall == pytest.approx(0.3) and len(set(shared.values())) > 1
    assert min(shared.values()) >= 0.1  # never below the probe, where nothing was measured
    # a bare PARAM sets every matrix so named; BLOCK:PARAM wins over it
    named = [*base, "--matrix-density", "weight_h_l0=0.5", "--matrix-density", f"{chosen}=0.75"]
    assert run_cli([*named, "--json", str(report)]) == 0
    by_name = json.loads(report.read_text())
    assert by_name["matrix_densities"][chosen] == 0.75
    assert by_name["matrix_densities"]["model.forecaster.0:weight_h_l0"] == 0.5
    assert 0.1 < by_name["overall_density"] < 0.75


def test_evaluation_device_choice():
    assert evaluation_device("cpu") == torch.device("cpu")
    assert evaluation_device("auto", integer_engine=True) == torch.device("cpu")
    auto = evaluation_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="integer engine"):
        evaluation_device("gpu", integer_engine=True)
    if not torch.cuda.is_available():
        for name in ("gpu", "cuda"):
            with pytest.raises(InputError, match="no CUDA device"):
                evaluation_device(name)


@pytest.mark.slow
def test_full_size_moving_mnist_script_on_tiny_models(tmp_path):
    """scripts/moving_mnist_full.sh (the GPU run of docs/results.md) end to end on the CPU."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = os.environ | {
        "CONV_ARCH": "tiny-convlstm", "FC_ARCH": "tiny-fc-lstm", "NUM_TRAIN": "8",
        "NUM_VAL": "4", "NUM_TEST": "4", "WORKERS": "0", "ACCELERATOR": "cpu",
        "BATCH": "2", "LR": "0.0005", "PYTHON": sys.executable, "PYTHONPATH": str(root / "src"),
    }  # fmt: skip
    script = root / "scripts" / "moving_mnist_full.sh"
    done = subprocess.run(
        ["bash", str(script), str(tmp_path), "0.05"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for run in ("convlstm", "fclstm"):
        report = json.loads((tmp_path / f"{run}.json").read_text())
        assert report["test_windows"] == 4 and report["results"]["model"]["cross_entropy"] > 0
        assert (tmp_path / f"{run}-figures" / "example_00.png").is_file()
        hparams = (tmp_path / run / "logs" / "csv" / "version_0" / "hparams.yaml").read_text()
        assert "batch_size: 2\n" in hparams and "lr: 0.0005\n" in hparams


@pytest.mark.skipif(
    not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")),
    reason="torch.compile's CPU back end needs a C compiler",
)
def test_compiled_training_keeps_plain_checkpoints(tmp_path):
    out = tmp_path / "compiled"
    assert (
        run_cli(["nowcast", "train", "--out", str(out), *TINY_RADAR, "--compile", "default"]) == 0
    )
    extra = json.loads((out / "train_config.json").read_text())["extra"]
    assert extra == {"compile": "default", "num_workers": 0}
    module = load_module(out / "checkpoints" / "best.ckpt")  # the keys of an uncompiled model
    assert not any("_orig_mod" in key for key in module.state_dict())
