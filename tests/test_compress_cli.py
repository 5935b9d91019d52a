"""`lstmforge compress`: bad input exits 2 with one line; a real task checkpoint end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lstmforge.cli import main
from lstmforge.compress import load
from lstmforge.compress.pipeline import stage_names


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code, capsys.readouterr()


def test_missing_checkpoint_exits_2(tmp_path, capsys):
    code, out = _cli(
        ["compress", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "a.lfz")], capsys
    )
    assert code == 2 and "none.ckpt" in out.err and "Traceback" not in out.err
    assert len(out.err.strip().splitlines()) == 1
    assert not (tmp_path / "a.lfz").exists()


def test_corrupt_or_taskless_checkpoint_exits_2(tmp_path, capsys):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00garbage")
    code, out = _cli(["compress", str(junk), "--out", str(tmp_path / "a.lfz")], capsys)
    assert code == 2 and "not a readable checkpoint" in out.err
    taskless = tmp_path / "taskless.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, taskless)
    code, out = _cli(["compress", str(taskless), "--out", str(tmp_path / "a.lfz")], capsys)
    assert code == 2 and "no task" in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.ckpt", "taskless.ckpt"]


@pytest.mark.slow
def test_speech_checkpoint_end_to_end(tmp_path):
    """Train a tiny speech model, compress it, and read the figures back from --json."""
    script = (
        "import torch; torch.set_num_threads(1)\n"
        "from pathlib import Path\n"
        "from lstmforge.training import TrainConfig\n"
        "from lstmforge.tasks.speech.train import train_speech\n"
        f"train_speech(TrainConfig(out_dir=Path({str(tmp_path / 'run')!r}), max_epochs=1, progress=False),"
        " config='tiny', corpus_utterances=20, batch_size=8)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    lfz, report = tmp_path / "m.lfz", tmp_path / "m.json"
    cli = [sys.executable, "-m", "lstmforge.cli", "compress", str(ckpt)]
    bad = subprocess.run(
        [*cli, "--density", "1.5", "--out", str(lfz)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "density" in bad.stderr and not lfz.exists()
    done = subprocess.run(
        [*cli, "--density", "0.2", "--pes", "4", "--out", str(lfz), "--json", str(report)]
        + ["--cell-guard-bits", "2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(Path(report).read_text())
    assert figures["task"] == "speech" and lfz.is_file()
    assert list(figures["metrics"]) == [
        "dense_float",
        "pruned_float",
        "pruned_float_unbalanced",
        "pruned_integer",
    ]
    assert isinstance(figures["metrics"]["pruned_integer"]["per"], float)
    assert load(lfz).settings["cell_guard_bits"] == 2
    assert figures["footprint"]["ratio_vs_fp32"] > 5
    assert all(row["balanced"]["imbalance"] == 1.0 for row in figures["pe_load"].values())


def test_stage_names_follow_the_options():
    assert stage_names(retrain=False, evaluate=False, balanced=True) == ["load", "compress"]
    assert stage_names(retrain=True, evaluate=True, balanced=False) == [
        "load",
        "retrain",
        "compress",
        "evaluate dense_float",
        "evaluate pruned_float",
        "evaluate pruned_float_balanced",
        "evaluate pruned_integer",
    ]
