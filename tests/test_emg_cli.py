"""`lstmforge emg` end to end on a tiny synthetic set, and bad input through the CLI."""

import json

import numpy as np
import pytest
import scipy.io
import torch

from lstmforge.cli import main

TINY = ["--synthetic-subjects", "1", "--movements", "1", "--repetitions", "6"]


def run_cli(args, capsys):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    try:
        main(args)
        status = 0
    except SystemExit as exit_:
        status = exit_.code or 0
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("emg_run")
    try:
        main(
            ["emg", "train", "--out", str(out), *TINY, "--hidden", "4,2", "--epochs", "1",
             "--chunk", "4", "--limit-train-batches", "2", "--accelerator", "cpu",
             "--augment-shift", "0.5", "--augment-gain", "0.2", "--json", str(out / "train.json")]
        )  # fmt: skip
    except SystemExit as exit_:
        assert not exit_.code
    return out


def test_train_writes_checkpoint_and_test_metrics(trained):
    report = json.loads((trained / "train.json").read_text())
    assert (trained / "checkpoints" / "best.ckpt").is_file()
    assert (trained / "test_metrics.json").is_file()
    assert report["arch"] == "le-convmn" and report["epochs_run"] >= 1
    subject = report["subjects"]["1"]
    assert isinstance(subject["cc"], float) and -1.0 <= subject["cc"] <= 1.0
    assert len(subject["per_joint"]) == 10 and subject["test_windows"] > 0


def test_evaluate_with_conditioning_plots_and_json(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "best.ckpt")
    status, out, _ = run_cli(
        ["emg", "evaluate", "--checkpoint", ckpt, "--json", str(tmp_path / "plain.json")], capsys
    )
    assert status == 0 and "mean ± std" in out
    status, _, _ = run_cli(
        ["emg", "evaluate", "--checkpoint", ckpt, "--smoothing", "0.3", "--deadband", "1.0",
         "--plots", str(tmp_path / "plots"), "--json", str(tmp_path / "smooth.json")],
        capsys,
    )  # fmt: skip
    assert status == 0
    plain = json.loads((tmp_path / "plain.json").read_text())
    smooth = json.loads((tmp_path / "smooth.json").read_text())
    # the evaluation of `train` and of `evaluate` agree
    assert plain["summary"]["cc"] == pytest.approx(
        json.loads((trained / "train.json").read_text())["summary"]["cc"], abs=1e-6
    )
    assert smooth["smoothing"] == 0.3 and smooth["summary"]["rmse"] != plain["summary"]["rmse"]
    assert (tmp_path / "plots" / "subject1_trajectories.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "cc_per_joint.png").is_file()


def test_stream_reports_latency_and_matches_offline(trained, tmp_path, capsys):
    ckpt = str(trained / "checkpoints" / "best.ckpt")
    path = tmp_path / "stream.json"
    status, out, _ = run_cli(["emg", "stream", "--checkpoint", ckpt, "--json", str(path)], capsys)
    assert status == 0 and "latency" in out
    summary = json.loads(path.read_text())
    assert summary["windows"] > 100 and summary["latency_mean_ms"] > 0
    assert summary["max_abs_diff_vs_offline"] < 1e-3
    page = tmp_path / "stream.html"  # `lstmforge report` shows the latency against the period
    status, _, _ = run_cli(["report", str(path), "--out", str(page)], capsys)
    assert status == 0 and "EMG streaming: subject" in page.read_text()
    status, _, err = run_cli(["emg", "stream", "--checkpoint", ckpt, "--subject", "7"], capsys)
    assert status == 2 and "--subject: 7" in err


def test_evaluate_a_compressed_artifact(trained, tmp_path, capsys):
    from lstmforge.compress import compress_model
    from lstmforge.tasks.emg.spec import load_module

    module = load_module(trained / "checkpoints" / "best.ckpt")
    calibration = torch.randn(1, 8, 1, 12, 10)
    cm = compress_model(module, density=0.5, num_pes=4, calibration=calibration)
    assert "net.convlstm" in [block.name for block in cm.blocks]
    artifact = tmp_path / "model.lfz"
    cm.save(artifact)
    path = tmp_path / "artifact.json"
    status, _, err = run_cli(
        ["emg", "evaluate", "--checkpoint", str(trained / "checkpoints" / "best.ckpt"),
         "--artifact", str(artifact), "--json", str(path)],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    report = json.loads(path.read_text())
    assert report["artifact"] == str(artifact) and np.isfinite(report["summary"]["cc"])


def test_ridge_baseline_command(tmp_path, capsys):
    path = tmp_path / "baselines.json"
    status, out, _ = run_cli(
        ["emg", "baselines", *TINY, "--methods", "ridge", "--json", str(path)], capsys
    )
    assert status == 0 and "ridge" in out
    plain = json.loads(path.read_text())["ridge"]["summary"]
    assert plain["cc"] > 0.3
    status, out, _ = run_cli(
        ["emg", "baselines", *TINY, "--methods", "ridge", "--augment-shift", "0.5",
         "--augment-copies", "2", "--json", str(path)],
        capsys,
    )  # fmt: skip
    augmented = json.loads(path.read_text())["ridge"]["summary"]
    assert status == 0 and augmented["cc"] > 0.3 and augmented["rmse"] != plain["rmse"]


def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys):
    cases = []
    status, _, err = run_cli(
        ["emg", "train", "--dataset", "ninapro-db2", "--data", str(tmp_path), "--subjects", "1",
         "--out", str(tmp_path / "run")],
        capsys,
    )  # fmt: skip
    cases.append((status, err, "S1_E1_A1.mat: NinaPro .mat file not found"))
    rng = np.random.default_rng(0)
    variables = {
        "emg": rng.normal(size=(400, 12)),
        "glove": rng.normal(size=(400, 22)),
        "restimulus": np.ones((400, 1)),
    }
    scipy.io.savemat(tmp_path / "S1_E1_A1.mat", variables)
    status, _, err = run_cli(
        ["emg", "baselines", "--dataset", "ninapro-db2", "--data", str(tmp_path)], capsys
    )
    cases.append((status, err, "missing variable 'rerepetition' or 'repetition'"))
    variables["rerepetition"] = np.ones((400, 1))
    variables["emg"][5, 3] = np.nan
    scipy.io.savemat(tmp_path / "S1_E1_A1.mat", variables)
    status, _, err = run_cli(
        ["emg", "baselines", "--dataset", "ninapro-db2", "--data", str(tmp_path)], capsys
    )
    cases.append((status, err, "'emg' contains 1 NaN"))
    variables["emg"][5, 3] = 0.0
    scipy.io.savemat(tmp_path / "S1_E1_A1.mat", variables)  # only repetition 1: no test data
    status, _, err = run_cli(
        ["emg", "baselines", "--dataset", "ninapro-db2", "--data", str(tmp_path)], capsys
    )
    cases.append((status, err, "no test repetitions"))
    variables["emg"] = variables["emg"][:, :8]
    scipy.io.savemat(tmp_path / "S1_E1_A1.mat", variables)
    status, _, err = run_cli(
        ["emg", "baselines", "--dataset", "ninapro-db2", "--data", str(tmp_path)], capsys
    )
    cases.append((status, err, r"'emg' must be [N, 12]"))
    other = tmp_path / "speech.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"task": "speech"}}, other)
    status, _, err = run_cli(["emg", "evaluate", "--checkpoint", str(other)], capsys)
    cases.append((status, err, "checkpoint is from task 'speech', expected 'emg'"))
    for status, err, expected in cases:
        assert status == 2
        assert expected in err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.ckpt"))


def test_task_spec_rebuilds_the_data_and_scores_the_checkpoint(trained):
    from lstmforge.tasks import get_task

    spec = get_task("emg")
    assert spec.headline({}) == ("cc", True)
    module = spec.load_module(trained / "checkpoints" / "best.ckpt")
    assert not module.training and module.hparams.task == "emg"
    datamodule = spec.build_datamodule(dict(module.hparams), None)
    assert datamodule.train_set.augmentation.shift == 0.5  # training augmentation restored
    assert datamodule.train_set.augmentation.gain == 0.2
    scores = spec.evaluate(module, datamodule)
    expected = json.loads((trained / "train.json").read_text())["summary"]
    assert scores["cc"] == pytest.approx(expected["cc"], abs=1e-6)
    assert scores["nrmse_s1"] == pytest.approx(expected["nrmse"], abs=1e-6)
    assert all(isinstance(v, float) for v in scores.values())
