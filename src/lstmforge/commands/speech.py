"""`lstmforge speech corpus|train|evaluate|transcribe|profile`: phone recognition with the
LSTMP acoustic model that ESE accelerates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import (
    Accelerator,
    Devices,
    Epochs,
    JsonOut,
    LearningRate,
    MaxMinutes,
    NumNodes,
    OutDir,
    Patience,
    Resume,
    Seed,
    console,
    emit_json,
    train_config,
)

speech_app = typer.Typer(
    help="Speech (phone) recognition: eSpeak NG / TIMIT corpora, LSTMP acoustic model, CTC.",
    no_args_is_help=True,
)

Checkpoint = Annotated[
    Path, typer.Option("--checkpoint", help="A speech checkpoint (e.g. OUT/checkpoints/best.ckpt).")
]
Decoder = Annotated[str, typer.Option("--decoder", help="CTC decoding: greedy or beam.")]
BeamWidth = Annotated[int, typer.Option("--beam-width", min=1, help="Beam width (beam decoder).")]
DataDir = Annotated[
    Path | None,
    typer.Option("--data", help="Corpus directory (synthetic) or TIMIT root; default: as trained."),
]


def _progress_bar(description: str) -> tuple[object, Callable[[int, int], None]]:
    """A rich progress bar and the ``progress(done, total)`` callback that advances it."""
    from rich.progress import Progress

    bar = Progress(console=console, transient=True)
    task = bar.add_task(description, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, advance


@speech_app.command("corpus")
def corpus_command(
    out: OutDir,
    utterances: Annotated[int, typer.Option("--utterances", min=10, help="Utterances.")] = 400,
    seed: Seed = 0,
) -> None:
    """Generate the synthetic eSpeak NG corpus (reused when already there)."""
    from lstmforge.data.speech_synthetic import generate_corpus

    bar, advance = _progress_bar("synthesising")
    with bar:
        manifest = generate_corpus(out, utterances, seed, progress=advance)
    console.print(f"corpus manifest: {manifest}")


@speech_app.command("train")
def train_command(
    out: OutDir,
    dataset: Annotated[str, typer.Option("--dataset", help="synthetic or timit.")] = "synthetic",
    data: Annotated[
        Path | None,
        typer.Option("--data", help="TIMIT root, or synthetic corpus dir (default OUT/corpus)."),
    ] = None,
    config: Annotated[
        str, typer.Option("--config", help="small, cpu, tiny or google-lstm (ESE's 1024/512).")
    ] = "small",
    corpus_utterances: Annotated[
        int | None,
        typer.Option(
            "--corpus-utterances",
            min=10,
            help="Synthetic corpus size (default: the corpus in --data, else 400).",
        ),
    ] = None,
    corpus_seed: Annotated[
        int | None,
        typer.Option(
            "--corpus-seed",
            help="Synthetic corpus seed (default: the corpus in --data, else 0).",
        ),
    ] = None,
    timit_test: Annotated[
        str, typer.Option("--timit-test", help="TIMIT test set: core_test or test.")
    ] = "core_test",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Utterances/batch.")] = 16,
    lr: LearningRate = 1e-3,
    epochs: Epochs = 10,
    seed: Seed = 0,
    devices: Devices = 1,
    num_nodes: NumNodes = 1,
    accelerator: Accelerator = "auto",
    resume: Resume = False,
    patience: Patience = 3,
    max_minutes: MaxMinutes = None,
) -> None:
    """Train an LSTMP acoustic model with CTC; checkpoints in OUT/checkpoints."""
    from lstmforge.tasks.speech.train import train_speech

    cfg = train_config(
        out,
        epochs,
        seed,
        devices,
        num_nodes,
        accelerator,
        resume,
        patience,
        max_minutes=max_minutes,
    )
    result = train_speech(
        cfg,
        dataset=dataset,
        data_dir=data,
        config=config,
        batch_size=batch_size,
        learning_rate=lr,
        corpus_utterances=corpus_utterances,
        corpus_seed=corpus_seed,
        timit_test=timit_test,
    )
    last = result.history[-1] if result.history else {}
    console.print(
        f"trained {result.epochs_run} epochs in {result.seconds:.0f} s; "
        f"val_loss {last.get('val_loss', float('nan')):.3f}, "
        f"val_per {last.get('val_per', float('nan')):.1f}%; best: {result.best_checkpoint}"
    )


@speech_app.command("evaluate")
def evaluate_command(
    checkpoint: Checkpoint,
    data: DataDir = None,
    artifact: Annotated[
        Path | None,
        typer.Option("--artifact", help="Run the LSTM and output layers from this .lfz instead."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="test or val.")] = "test",
    decoder: Decoder = "greedy",
    beam_width: BeamWidth = 8,
    json_path: JsonOut = None,
) -> None:
    """Phone error rate (with S/D/I) of a checkpoint on the held-out test speakers."""
    from lstmforge.errors import InputError
    from lstmforge.tasks.speech.evaluate import evaluate_split
    from lstmforge.tasks.speech.model import count_parameters
    from lstmforge.tasks.speech.spec import build_datamodule, load_module

    if split not in ("test", "val"):
        raise InputError(f"--split: expected test or val, got {split!r}")
    module = load_module(checkpoint)
    parameters = count_parameters(module.model)
    if artifact is not None:
        from lstmforge import compress, engine

        module = engine.substitute(module, compress.load(artifact))
    datamodule = build_datamodule(dict(module.hparams), data)
    with console.status("computing features and decoding"):
        metrics = evaluate_split(module, datamodule, split, decoder, beam_width)
    console.print(
        f"PER {metrics['per']:.2f}% (S {metrics['substitution_rate']:.2f}, "
        f"D {metrics['deletion_rate']:.2f}, I {metrics['insertion_rate']:.2f}) over "
        f"{metrics['reference_phones']:.0f} phones, {metrics['utterances']:.0f} utterances"
    )
    emit_json(json_path, metrics | {"beam_width": float(beam_width), "parameters": parameters})


@speech_app.command("transcribe")
def transcribe_command(
    wav: Annotated[Path, typer.Argument(help="Audio file (WAV/SPHERE, any rate).")],
    checkpoint: Checkpoint,
    decoder: Decoder = "greedy",
    beam_width: BeamWidth = 8,
) -> None:
    """Print the phone string recognised in WAV."""
    from lstmforge.tasks.speech.spec import load_module
    from lstmforge.tasks.speech.transcribe import transcribe

    print(" ".join(transcribe(load_module(checkpoint), wav, decoder, beam_width)))


@speech_app.command("profile")
def profile_command(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="A trained speech checkpoint.")
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="Time an untrained model of this named configuration (e.g. google-lstm) "
            "instead of a checkpoint; needs --data (a synthetic corpus).",
        ),
    ] = None,
    data: DataDir = None,
    utterances: Annotated[
        int, typer.Option("--utterances", min=1, help="Test utterances to time.")
    ] = 50,
    decoder: Decoder = "greedy",
    beam_width: BeamWidth = 8,
    seed: Seed = 0,
    json_path: JsonOut = None,
) -> None:
    """Where the time goes: audio loading, features, each LSTM layer, output layer, decoding."""
    from rich.table import Table

    from lstmforge.errors import InputError
    from lstmforge.tasks.speech.profile import profile_pipeline

    if (checkpoint is None) == (config is None):
        raise InputError("profile: give exactly one of --checkpoint and --config")
    if checkpoint is not None:
        from lstmforge.tasks.speech.spec import build_datamodule, load_module

        module = load_module(checkpoint)
        test = build_datamodule(dict(module.hparams), data).splits()["test"]
        wavs = [u.wav for u in test[:utterances]]
    else:
        import lightning as L

        from lstmforge.data.speech_synthetic import read_manifest
        from lstmforge.tasks.speech.train import build_module

        if data is None:
            raise InputError("profile --config: --data (a synthetic corpus directory) is needed")
        L.seed_everything(seed, verbose=False)
        module = build_module(config)
        records = read_manifest(data)["utterances"]
        wavs = [data / u["wav"] for u in records if u["split"] == "test"][:utterances]
    bar, advance = _progress_bar("profiling")
    with bar:
        report = profile_pipeline(module, wavs, decoder, beam_width, progress=advance)
    table = Table(title=f"{len(wavs)} utterances, {report['audio_seconds']:.1f} s of audio")
    table.add_column("stage")
    table.add_column("ms / utterance", justify="right")
    table.add_column("share %", justify="right")
    for stage, seconds in report["seconds"].items():
        share = report["share_percent"][stage]
        table.add_row(stage, f"{1000 * seconds / len(wavs):.2f}", f"{share:.1f}")
    console.print(table)
    console.print(
        f"LSTM share: {report['lstm_share_percent']:.1f}%; "
        f"real-time factor {report['real_time_factor']:.3f}"
    )
    emit_json(json_path, report)


def register(app: typer.Typer) -> None:
    """Add the `speech` command group to the root app."""
    app.add_typer(speech_app, name="speech")
