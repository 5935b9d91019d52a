"""`lstmforge simulate` on the command line: figures as JSON numbers, exit 2 on bad input."""

import json

import pytest
import torch

from lstmforge.cli import main
from lstmforge.compress import compress_model
from lstmforge.nn import LSTM


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    torch.manual_seed(0)
    cm = compress_model(LSTM(6, 16, proj_size=8), density=0.4, num_pes=4)
    return cm.save(tmp_path_factory.mktemp("lfz") / "model.lfz")


@pytest.fixture()
def config_file(tmp_path):
    path = tmp_path / "acc.yaml"
    path.write_text("preset: ese-ku060\npes_per_channel: 4\nchannels: 2\n")
    return path


def _exit_code(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def test_simulate_writes_json_numbers_and_timeline(artifact, config_file, tmp_path):
    out = tmp_path / "figs"
    code = _exit_code(
        [
            "simulate",
            str(artifact),
            "--config",
            str(config_file),
            "--frames",
            "8",
            "--json",
            str(tmp_path / "r.json"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames"] == 8 and report["channels"] == 2
    assert report["config_source"] == str(config_file)
    assert isinstance(report["latency_us_per_frame"], float) and report["latency_us_per_frame"] > 0
    assert len(report["pe_utilisation"]) == 4
    assert sum(report["cycle_breakdown"].values()) == pytest.approx(1.0)
    assert report["latency_us_per_frame"] == pytest.approx(report["cycles_per_frame"] / 200.0)
    assert (out / "timeline.png").stat().st_size > 1000


def test_sweep_writes_points_and_pareto_front(artifact, config_file, tmp_path):
    code = _exit_code(
        [
            "simulate",
            str(artifact),
            "--config",
            str(config_file),
            "--frames",
            "4",
            "--sweep",
            "--pes",
            "2,4",
            "--bandwidth",
            "0.5,20",
            "--density",
            "0.4,0.2",
            "--json",
            str(tmp_path / "s.json"),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "s.json").read_text())
    assert len(result["points"]) == 8 and result["config_source"] == str(config_file)
    assert 0 < len(result["pareto_front"]) < 8
    assert (tmp_path / "pareto.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.lfz"], "not found"),
        (["{artifact}", "--preset", "nope"], "unknown simulator preset"),
        (["{artifact}"], "interleaved over 4 PEs"),
        (["{artifact}", "--config", "{bad}"], "fifo_depth"),
        (["{artifact}", "--config", "{good}", "--sweep", "--pes", "a,b"], "--pes"),
        (["{artifact}", "--config", "{good}", "--sweep", "--density", "0.9"], "sweep density 0.9"),
        (["{artifact}", "--config", "{good}", "--sweep", "--pes", "0"], "positive finite"),
        (["{artifact}", "--config", "{good}", "--sweep", "--bandwidth", "inf"], "positive finite"),
        (["{artifact}", "--config", "{good}", "--pes", "8"], "--pes only apply with --sweep"),
        (["{artifact}", "--config", "{good}", "--density", "0.1"], "only apply with --sweep"),
        (["{artifact}", "--config", "{good}", "--preset", "ese-ku060"], "not both"),
    ],
)
def test_bad_input_exits_2_with_one_line(artifact, config_file, tmp_path, capsys, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: ese-ku060\nfifo_depth: 0\n")
    paths = {"artifact": artifact, "bad": bad, "good": config_file}
    argv = ["simulate", *(a.format(**paths) for a in args), "--json", str(tmp_path / "x.json")]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_corrupt_artifact_exits_2(tmp_path, capsys):
    path = tmp_path / "corrupt.lfz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert _exit_code(["simulate", str(path)]) == 2
    assert "corrupt.lfz" in capsys.readouterr().err


def test_output_path_through_a_file_exits_2(artifact, config_file, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    argv = ["simulate", str(artifact), "--config", str(config_file), "--frames", "2"]
    assert _exit_code([*argv, "--json", str(blocker / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "a file or directory is in the way" in err and "Traceback" not in err
