"""`lstmforge emg`: finger kinematics from sEMG (train, evaluate, baselines, stream)."""

from __future__ import annotations

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
from lstmforge.errors import InputError

emg = typer.Typer(help="Finger kinematics from surface EMG with LE-ConvMN.", no_args_is_help=True)

Dataset = Annotated[str, typer.Option("--dataset", help="synthetic, ninapro-db2 or ninapro-db8.")]
DataDir = Annotated[
    Path | None, typer.Option("--data", help="Directory with the NinaPro .mat files.")
]
Subjects = Annotated[
    str | None, typer.Option("--subjects", help="Comma-separated subject numbers (default: all).")
]
SyntheticSubjects = Annotated[
    int, typer.Option("--synthetic-subjects", min=1, help="Synthetic: number of subjects.")
]
Electrodes = Annotated[int, typer.Option("--electrodes", help="Synthetic: 12 (DB2) or 16 (DB8).")]
Repetitions = Annotated[
    int, typer.Option("--repetitions", min=2, help="Synthetic: repetitions per movement.")
]
DataSeed = Annotated[int, typer.Option("--data-seed", help="Synthetic: data seed.")]
SyntheticPreset = Annotated[
    str,
    typer.Option(
        "--synthetic-preset",
        help="Synthetic: clean (default) or realistic (electrode shift, gain drift, fatigue, "
        "recruitment noise; docs/le-convmn.md).",
    ),
]
Sessions = Annotated[
    int, typer.Option("--sessions", min=1, help="Synthetic: sessions per subject.")
]
HoldOut = Annotated[
    str,
    typer.Option(
        "--hold-out",
        help="repetitions (2, 5 of every session), sessions (the last one) or sessions-val "
        "(the last one; the one before validates); sessions need synthetic data.",
    ),
]
Movements = Annotated[
    int, typer.Option("--movements", min=1, max=9, help="Synthetic: use the first N movements.")
]
Window = Annotated[int, typer.Option("--window", min=1, help="Envelope frames per window.")]
Step = Annotated[int, typer.Option("--step", min=1, help="Envelope frames between windows.")]
EnvelopeRate = Annotated[float, typer.Option("--envelope-rate", help="Envelope frames per second.")]
DoaMap = Annotated[
    Path | None, typer.Option("--doa-map", help="DB8: 5x18 glove-to-DoA matrix (.npy or .csv).")
]
AugmentShift = Annotated[
    float,
    typer.Option(
        "--augment-shift",
        min=0.0,
        help="Training: random armband rotation, at most this many electrode spacings (0 = off).",
    ),
]
AugmentGain = Annotated[
    float,
    typer.Option(
        "--augment-gain",
        min=0.0,
        help="Training: log-std of random per-electrode contact gains (0 = off).",
    ),
]
Checkpoint = Annotated[Path, typer.Option("--checkpoint", help="A checkpoint of `emg train`.")]
Artifact = Annotated[
    Path | None, typer.Option("--artifact", help="Evaluate a compressed model (.lfz) instead.")
]
Smoothing = Annotated[
    float, typer.Option("--smoothing", help="Output smoothing alpha in (0, 1]; 1 = off.")
]
Deadband = Annotated[
    float, typer.Option("--deadband", help="Output deadband in target units; 0 = off.")
]


def _int_list(text: str | None, field: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{field}: expected comma-separated integers, got {text!r}") from None


def _data_config(
    dataset: str,
    subjects: str | None,
    synthetic_subjects: int,
    electrodes: int,
    repetitions: int,
    movements: int,
    data_seed: int,
    synthetic_preset: str,
    sessions: int,
    hold_out: str,
    window: int,
    step: int,
    envelope_rate: float,
    doa_map: Path | None,
):
    from lstmforge.data.emg_preprocessing import PreprocessConfig
    from lstmforge.data.emg_synthetic import MOVEMENTS, SyntheticEMGConfig, preset
    from lstmforge.data.ninapro import load_doa_map
    from lstmforge.tasks.emg.dataset import EMGDataConfig

    extra = {}
    if doa_map is not None:
        extra["doa_map"] = tuple(map(tuple, load_doa_map(doa_map).tolist()))
    return EMGDataConfig(
        dataset=dataset,
        subjects=_int_list(subjects, "--subjects"),
        synthetic=SyntheticEMGConfig(
            n_subjects=synthetic_subjects,
            n_electrodes=electrodes,
            n_repetitions=repetitions,
            movements=tuple(MOVEMENTS)[:movements],
            seed=data_seed,
            n_sessions=sessions,
            **preset(synthetic_preset),
        ),
        hold_out=hold_out,
        preprocess=PreprocessConfig(window=window, step=step, envelope_rate=envelope_rate),
        **extra,
    )


def _print_report(report: dict, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("subject", "CC", "NRMSE", "RMSE", "R²", "MAE"):
        table.add_column(column, justify="right")
    for subject, v in report["subjects"].items():
        table.add_row(subject, *(f"{v[m]:.3f}" for m in ("cc", "nrmse", "rmse", "r2", "mae")))
    s = report["summary"]
    table.add_row(
        "mean ± std",
        *(f"{s[m]:.3f} ± {s[m + '_std']:.3f}" for m in ("cc", "nrmse", "rmse", "r2", "mae")),
    )
    console.print(table)


@emg.command("train")
def train(
    out: OutDir,
    dataset: Dataset = "synthetic",
    data: DataDir = None,
    arch: Annotated[str, typer.Option("--arch", help="le-convmn or lstm.")] = "le-convmn",
    hidden: Annotated[
        str | None, typer.Option("--hidden", help="Hidden sizes per layer, e.g. 64,32,10.")
    ] = None,
    epochs: Epochs = 10,
    seed: Seed = 0,
    lr: LearningRate = 1e-3,
    chunk: Annotated[int, typer.Option("--chunk", min=1, help="Windows per sequence.")] = 16,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    validation: Annotated[
        str,
        typer.Option(
            "--validation",
            help="chunks (zero-state sequences) or recording (state carried, as evaluated).",
        ),
    ] = "chunks",
    subjects: Subjects = None,
    synthetic_subjects: SyntheticSubjects = 5,
    electrodes: Electrodes = 12,
    repetitions: Repetitions = 6,
    movements: Movements = 9,
    data_seed: DataSeed = 0,
    synthetic_preset: SyntheticPreset = "clean",
    sessions: Sessions = 1,
    hold_out: HoldOut = "repetitions",
    window: Window = 10,
    step: Step = 5,
    envelope_rate: EnvelopeRate = 50.0,
    doa_map: DoaMap = None,
    devices: Devices = 1,
    num_nodes: NumNodes = 1,
    accelerator: Accelerator = "auto",
    resume: Resume = False,
    patience: Patience = 5,
    max_minutes: MaxMinutes = None,
    augment_shift: AugmentShift = 0.0,
    augment_gain: AugmentGain = 0.0,
    ring_channels: Annotated[
        bool,
        typer.Option(
            "--ring-channels",
            help="The channels are one ring of equally spaced electrodes (an armband): pad the "
            "channel axis circularly. Only for --arch le-convmn.",
        ),
    ] = False,
    peephole: Annotated[
        str,
        typer.Option(
            "--peephole",
            help="LE-ConvMN peepholes: pixel (Shi et al.'s Hadamard), channel or none.",
        ),
    ] = "pixel",
    kernel_size: Annotated[
        int,
        typer.Option(
            "--kernel-size",
            help="LE-ConvMN: square kernel of every ConvLSTM layer (odd; the paper's 3).",
        ),
    ] = 3,
    limit_train_batches: Annotated[
        int | None, typer.Option("--limit-train-batches", help="Smoke runs: batches per epoch.")
    ] = None,
    json: JsonOut = None,
) -> None:
    """Train LE-ConvMN (or the LSTM baseline) and score it on the held-out repetitions."""
    from lstmforge.data.emg_augmentation import ArmbandAugmentation
    from lstmforge.tasks.emg.train import train_emg

    data_cfg = _data_config(
        dataset, subjects, synthetic_subjects, electrodes, repetitions, movements, data_seed,
        synthetic_preset, sessions, hold_out, window, step, envelope_rate, doa_map,
    )  # fmt: skip
    cfg = train_config(
        out, epochs, seed, devices, num_nodes, accelerator, resume, patience,
        limit_train_batches=limit_train_batches, max_minutes=max_minutes,
    )  # fmt: skip
    result, report = train_emg(
        data_cfg, data, cfg, arch=arch, hidden=_int_list(hidden, "--hidden"), lr=lr,
        chunk=chunk, batch_size=batch_size, validation=validation,
        augmentation=ArmbandAugmentation(augment_shift, augment_gain),
        ring_channels=ring_channels, peephole=peephole, kernel_size=kernel_size,
    )  # fmt: skip
    _print_report(report, f"{arch} on {dataset}: test repetitions")
    console.print(f"best checkpoint: {result.best_checkpoint}  ({result.seconds:.0f} s)")
    emit_json(json, report)


def _load(checkpoint: Path, artifact: Path | None, data: Path | None):
    from lstmforge.tasks import get_task

    spec = get_task("emg")
    module = spec.load_module(checkpoint)
    if artifact is not None:
        from lstmforge import compress, engine

        module = engine.substitute(module, compress.load(artifact))
    return module, spec.build_datamodule(dict(module.hparams), data)


@emg.command("evaluate")
def evaluate(
    checkpoint: Checkpoint,
    data: DataDir = None,
    artifact: Artifact = None,
    smoothing: Smoothing = 1.0,
    deadband: Deadband = 0.0,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Directory for per-subject trajectory plots.")
    ] = None,
    json: JsonOut = None,
) -> None:
    """Per-subject and per-joint CC, RMSE, NRMSE, R², MAE on the test repetitions."""
    from lstmforge.tasks.emg.evaluate import metrics_report, predict_subject
    from lstmforge.tasks.emg.plots import plot_joint_cc, plot_trajectories

    module, datamodule = _load(checkpoint, artifact, data)
    pre = datamodule.cfg.preprocess
    predictions = [
        predict_subject(module, s, pre, alpha=smoothing, deadband=deadband)
        for s in datamodule.subjects
    ]
    report = metrics_report(predictions) | {
        "checkpoint": str(checkpoint),
        "artifact": None if artifact is None else str(artifact),
        "smoothing": smoothing,
        "deadband": deadband,
    }
    _print_report(report, f"{module.hparams.arch}: test repetitions")
    if plots is not None:
        for p in predictions:
            plot_trajectories(p, plots / f"subject{p.subject}_trajectories.png")
        plot_joint_cc(report, plots / "cc_per_joint.png")
        console.print(f"plots in {plots}")
    emit_json(json, report)


@emg.command("baselines")
def baselines(
    dataset: Dataset = "synthetic",
    data: DataDir = None,
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated: ridge, sparse-gp.")
    ] = "ridge,sparse-gp",
    seed: Seed = 0,
    subjects: Subjects = None,
    synthetic_subjects: SyntheticSubjects = 5,
    electrodes: Electrodes = 12,
    repetitions: Repetitions = 6,
    movements: Movements = 9,
    data_seed: DataSeed = 0,
    synthetic_preset: SyntheticPreset = "clean",
    sessions: Sessions = 1,
    hold_out: HoldOut = "repetitions",
    window: Window = 10,
    step: Step = 5,
    envelope_rate: EnvelopeRate = 50.0,
    doa_map: DoaMap = None,
    smoothing: Smoothing = 1.0,
    deadband: Deadband = 0.0,
    augment_shift: AugmentShift = 0.0,
    augment_gain: AugmentGain = 0.0,
    augment_copies: Annotated[
        int,
        typer.Option("--augment-copies", min=1, help="Augmented copies of each recording."),
    ] = 4,
    json: JsonOut = None,
) -> None:
    """Per-subject ridge and sparse-GP regression on the same features and test repetitions."""
    import time

    from lstmforge.data.emg_augmentation import ArmbandAugmentation
    from lstmforge.tasks.emg.baselines import BASELINES, baseline_predictions
    from lstmforge.tasks.emg.dataset import build_features
    from lstmforge.tasks.emg.evaluate import metrics_report

    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in BASELINES]
    if unknown or not names:
        raise InputError(f"--methods: expected a subset of {', '.join(BASELINES)}, got {methods!r}")
    data_cfg = _data_config(
        dataset, subjects, synthetic_subjects, electrodes, repetitions, movements, data_seed,
        synthetic_preset, sessions, hold_out, window, step, envelope_rate, doa_map,
    )  # fmt: skip
    with console.status("preprocessing"):
        features = build_features(data_cfg, data)
    payload = {}
    for name in names:
        start = time.perf_counter()
        with console.status(f"fitting {name} per subject"):
            predictions = baseline_predictions(
                name, features, data_cfg.preprocess, seed, alpha=smoothing, deadband=deadband,
                augmentation=ArmbandAugmentation(augment_shift, augment_gain),
                copies=augment_copies,
            )  # fmt: skip
        payload[name] = metrics_report(predictions) | {"seconds": time.perf_counter() - start}
        _print_report(payload[name], f"{name} on {dataset}: test repetitions")
    emit_json(json, payload)


@emg.command("stream")
def stream(
    checkpoint: Checkpoint,
    data: DataDir = None,
    artifact: Artifact = None,
    subject: Annotated[
        int | None, typer.Option("--subject", help="Subject to stream (default: the first).")
    ] = None,
    recording: Annotated[
        int, typer.Option("--recording", min=0, help="Which of the subject's recordings.")
    ] = 0,
    smoothing: Smoothing = 1.0,
    deadband: Deadband = 0.0,
    json: JsonOut = None,
) -> None:
    """Run a model causally over a continuous recording, window by window; report latency."""
    from lstmforge.tasks.emg.stream import stream_recording

    module, datamodule = _load(checkpoint, artifact, data)
    by_number = {s.subject: s for s in datamodule.subjects}
    number = subject if subject is not None else datamodule.subjects[0].subject
    if number not in by_number:
        raise InputError(f"--subject: {number} is not in this data (have {sorted(by_number)})")
    features = by_number[number]
    if recording >= len(features.recordings):
        raise InputError(
            f"--recording: subject {number} has {len(features.recordings)} recording(s)"
        )
    with console.status(f"streaming subject {number}"):
        result = stream_recording(
            module, features, datamodule.cfg.preprocess, recording, smoothing, deadband
        )
    summary = result.summary() | {"subject": number, "recording": recording}
    console.print(
        f"{summary['windows']} windows, latency mean {summary['latency_mean_ms']:.2f} ms, "
        f"p95 {summary['latency_p95_ms']:.2f} ms, max {summary['latency_max_ms']:.2f} ms "
        f"(a window every {summary['window_period_ms']:.0f} ms); "
        f"max |stream - offline| = {summary['max_abs_diff_vs_offline']:.2e}"
    )
    emit_json(json, summary)


def register(app: typer.Typer) -> None:
    """Add the `emg` command group to the root app."""
    app.add_typer(emg, name="emg")
