"""End to end through the CLI: train a tiny model (loss falls), evaluate, transcribe, profile,
the task registry, and bad input (exit status 2, one line naming the file)."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from lstmforge.cli import main
from lstmforge.data.phones import PHONES
from lstmforge.data.speech_synthetic import generate_corpus, read_manifest
from lstmforge.tasks import get_task
from lstmforge.tasks.speech.spec import load_module
from test_speech_timit import make_tree


def run_cli(args, capsys):
    """Run ``lstmforge ARGS`` in-process; returns (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), 10, seed=1).parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("run")
    args = ["speech", "train", "--out", out, "--data", corpus, "--config", "tiny"]
    args += ["--corpus-utterances", 10, "--epochs", 4, "--batch-size", 4, "--lr", 0.01]
    args += ["--seed", 1, "--corpus-seed", 1, "--accelerator", "cpu"]
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code in (0, None)
    return out


def _mean_ctc_loss(module, datamodule):
    module.eval()
    with torch.no_grad():
        losses = [module._loss(batch)[0] for batch in datamodule.train_dataloader()]
    return float(torch.stack(losses).mean())


def test_training_lowers_the_ctc_loss(trained, corpus):
    checkpoint = trained / "checkpoints" / "best.ckpt"
    module = load_module(checkpoint)
    assert module.hparams.task == "speech" and module.hparams.arch == "lstmp"
    datamodule = get_task("speech").build_datamodule(dict(module.hparams), None)
    torch.manual_seed(1)
    untrained = type(module)(**module.hparams)  # same architecture, fresh random weights
    assert _mean_ctc_loss(module, datamodule) < 0.8 * _mean_ctc_loss(untrained, datamodule)
    history = json.loads((trained / "history.json").read_text())["epochs"]
    assert len(history) == 4 and all(np.isfinite(r["val_loss"]) for r in history)


def test_evaluate_writes_per_with_sdi(trained, tmp_path, capsys):
    out_json = tmp_path / "eval.json"
    checkpoint = trained / "checkpoints" / "best.ckpt"
    code, out, _ = run_cli(
        ["speech", "evaluate", "--checkpoint", checkpoint, "--json", out_json], capsys
    )
    assert code == 0 and "PER" in out
    metrics = json.loads(out_json.read_text())
    parts = ("substitution_rate", "deletion_rate", "insertion_rate")
    assert metrics["per"] == pytest.approx(sum(metrics[k] for k in parts))
    assert metrics["utterances"] == 1 and metrics["reference_phones"] > 3
    # the one test utterance's speaker has the overall PER
    (speaker_key,) = [k for k in metrics if k.startswith("per_speaker/")]
    assert metrics[speaker_key] == pytest.approx(metrics["per"])
    # the TaskSpec evaluation gives the same greedy PER
    spec = get_task("speech")
    module = spec.load_module(checkpoint)
    assert spec.headline(dict(module.hparams)) == ("per", False)
    again = spec.evaluate(module, spec.build_datamodule(dict(module.hparams), None))
    assert again["per"] == pytest.approx(metrics["per"])
    code, _, _ = run_cli(
        ["speech", "evaluate", "--checkpoint", checkpoint, "--decoder", "beam", "--json", out_json],
        capsys,
    )
    beam = json.loads(out_json.read_text())
    assert code == 0 and beam["beam_width"] == 8
    assert beam["parameters"] == sum(p.numel() for p in module.model.parameters())


def test_transcribe_and_profile(trained, corpus, tmp_path, capsys):
    checkpoint = trained / "checkpoints" / "best.ckpt"
    test_wav = next(
        corpus / u["wav"] for u in read_manifest(corpus)["utterances"] if u["split"] == "test"
    )
    code, out, _ = run_cli(["speech", "transcribe", test_wav, "--checkpoint", checkpoint], capsys)
    assert code == 0 and set(out.split()) <= set(PHONES)
    # another sample rate is resampled for transcription
    audio, rate = sf.read(test_wav)
    sf.write(tmp_path / "at8k.wav", audio[::2], rate // 2)
    code, _, _ = run_cli(
        ["speech", "transcribe", tmp_path / "at8k.wav", "--checkpoint", checkpoint], capsys
    )
    assert code == 0
    profile_json = tmp_path / "profile.json"
    code, out, _ = run_cli(
        [
            "speech",
            "profile",
            "--checkpoint",
            checkpoint,
            "--utterances",
            1,
            "--json",
            profile_json,
        ],
        capsys,
    )
    assert code == 0 and "LSTM share" in out
    report = json.loads(profile_json.read_text())
    assert set(report["seconds"]) == {
        "audio_loading", "features", "lstm_layer_0", "output_layer", "decoding"
    }  # fmt: skip
    assert sum(report["share_percent"].values()) == pytest.approx(100.0)
    assert report["lstm_share_percent"] == pytest.approx(report["share_percent"]["lstm_layer_0"])
    page = tmp_path / "profile.html"  # `lstmforge report` shows the stages
    code, _, _ = run_cli(["report", profile_json, "--out", page], capsys)
    text = page.read_text()
    assert code == 0 and "Speech pipeline profile: LSTM" in text and "<td>lstm_layer_0</td>" in text
    # an untrained model of a named configuration, timed on the corpus' test files
    code, out, _ = run_cli(
        ["speech", "profile", "--config", "small", "--data", corpus, "--utterances", 1,
         "--json", profile_json],
        capsys,
    )  # fmt: skip
    assert code == 0 and "lstm_layer_1" in json.loads(profile_json.read_text())["seconds"]
    code, _, err = run_cli(["speech", "profile", "--data", corpus], capsys)
    assert code == 2 and "exactly one of --checkpoint and --config" in err


def test_bad_audio_files_exit_with_status_2(trained, tmp_path, capsys):
    checkpoint = trained / "checkpoints" / "best.ckpt"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00not really a wave file")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    cases = [
        (garbage, "not a readable WAV/SPHERE"),
        (empty, "empty (0 samples)"),
        (tmp_path / "missing.wav", "audio file not found"),
    ]
    for path, message in cases:
        code, _, err = run_cli(["speech", "transcribe", path, "--checkpoint", checkpoint], capsys)
        assert code == 2 and message in err and str(path.name) in err
        assert len(err.strip().splitlines()) == 1
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:300])
    code, _, err = run_cli(["speech", "evaluate", "--checkpoint", truncated], capsys)
    assert code == 2 and "not a readable checkpoint" in err


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("rate", "sample rate is 8000 Hz, expected 16000 Hz"),
        ("phone", "phone 'zz' is not in the 61-phone set"),
        ("times", "past the end of the audio"),
    ],
)
def test_bad_timit_data_exits_with_status_2_before_training(tmp_path, capsys, damage, message):
    root = make_tree(tmp_path / "timit", rate=8000 if damage == "rate" else 16000)
    phn = root / "TRAIN/DR2/MKLS0/SX177.PHN"
    if damage == "phone":
        phn.write_text("0 1000 h#\n1000 2000 zz\n")
    if damage == "times":
        phn.write_text("0 1000 h#\n1000 99999 sh\n")
    out = tmp_path / "run"
    code, _, err = run_cli(
        ["speech", "train", "--dataset", "timit", "--data", root, "--out", out, "--config", "tiny"],
        capsys,
    )
    assert code == 2 and message in err
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())


def test_evaluate_a_compressed_artifact(trained, tmp_path, capsys):
    from lstmforge.compress import compress_model

    checkpoint = trained / "checkpoints" / "best.ckpt"
    module = load_module(checkpoint)
    datamodule = get_task("speech").build_datamodule(dict(module.hparams), None)
    calibration = next(iter(datamodule.train_dataloader()))[0]
    cm = compress_model(module, density=0.5, num_pes=4, calibration=calibration)
    # ESE runs the LSTM layers and the output layer: both are in the artifact
    assert [block.name for block in cm.blocks] == ["model.layers.0", "model.output"]
    artifact = tmp_path / "model.lfz"
    cm.save(artifact)
    out_json = tmp_path / "eval.json"
    code, _, err = run_cli(
        ["speech", "evaluate", "--checkpoint", checkpoint, "--artifact", artifact,
         "--json", out_json],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads(out_json.read_text())
    assert 0.0 <= metrics["per"] and metrics["reference_phones"] > 3


def test_train_and_evaluate_on_a_timit_tree(tmp_path, capsys):
    root = make_tree(tmp_path / "timit")
    out = tmp_path / "run"
    args = ["speech", "train", "--dataset", "timit", "--data", root, "--out", out]
    code, _, err = run_cli([*args, "--config", "tiny", "--epochs", 1, "--batch-size", 2], capsys)
    assert code == 0, err
    module = load_module(out / "checkpoints" / "best.ckpt")
    assert module.hparams.data["dataset"] == "timit"
    out_json = tmp_path / "eval.json"
    code, _, err = run_cli(
        [
            "speech",
            "evaluate",
            "--checkpoint",
            out / "checkpoints" / "best.ckpt",
            "--json",
            out_json,
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads(out_json.read_text())
    # core test set: FELC0's two sentences of 5 folded phones each (sil sh ih sh sil)
    assert metrics["utterances"] == 2 and metrics["reference_phones"] == 10
    assert set(k for k in metrics if k.startswith("per_speaker/")) == {"per_speaker/FELC0"}


@pytest.mark.slow  # a fresh interpreter imports torch and lightning (~10 s of CPU)
def test_console_command_exits_2_with_one_line(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "missing.ckpt"
    result = subprocess.run(
        [sys.executable, "-m", "lstmforge.cli", "speech", "transcribe", str(tmp_path / "a.wav"),
         "--checkpoint", str(missing)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {missing}: checkpoint file not found"]


def test_train_takes_the_size_and_seed_of_the_corpus_in_data(corpus, tmp_path):
    out = tmp_path / "run"
    args = ["speech", "train", "--out", out, "--data", corpus, "--config", "tiny", "--epochs", 1]
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in [*args, "--batch-size", 4, "--accelerator", "cpu"]])
    assert exit_info.value.code in (0, None)
    data = load_module(out / "checkpoints" / "last.ckpt").hparams["data"]
    assert (data["corpus_utterances"], data["corpus_seed"]) == (10, 1)
