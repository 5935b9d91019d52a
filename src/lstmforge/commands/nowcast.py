"""`lstmforge nowcast train|evaluate|predict`: precipitation nowcasting (Shi et al. 2015)."""

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

nowcast_app = typer.Typer(help="Precipitation nowcasting with ConvLSTM (Shi et al. 2015).")


@nowcast_app.command("train")
def train_command(
    out: OutDir,
    dataset: Annotated[str, typer.Option(help="moving-mnist or radar.")] = "radar",
    arch: Annotated[
        str, typer.Option(help="Named configuration (see configs).")
    ] = "small-convlstm-3x3-16-16",
    data: Annotated[
        Path | None,
        typer.Option(
            help="MNIST IDX directory (moving-mnist) or radar HDF5 file; default synthetic."
        ),
    ] = None,
    test_file: Annotated[
        Path | None, typer.Option(help="mnist_test_seq.npy as the Moving MNIST test set.")
    ] = None,
    in_len: Annotated[int | None, typer.Option(help="Input frames (default 10 / 5).")] = None,
    out_len: Annotated[int | None, typer.Option(help="Predicted frames (default 10 / 15).")] = None,
    frame_size: Annotated[int | None, typer.Option(help="Frame side (default 64 / 100).")] = None,
    num_train: Annotated[
        int | None, typer.Option(help="Training sequences (default 10000 / 2000).")
    ] = None,
    num_val: Annotated[
        int | None, typer.Option(help="Validation sequences (default 2000 / 200).")
    ] = None,
    num_test: Annotated[
        int | None, typer.Option(help="Test sequences (default 3000 / 400).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Batch size per device (default 16).")
    ] = None,
    shuffle: Annotated[bool, typer.Option(help="Shuffle training sequences.")] = True,
    loss: Annotated[
        str | None,
        typer.Option(
            help="bce, mse or balanced-mse (default: bce for moving-mnist, balanced-mse for radar)."
        ),
    ] = None,
    lr: LearningRate = 1e-3,
    peephole: Annotated[
        str | None,
        typer.Option(
            help="ConvLSTM peepholes: pixel (the paper's Hadamard), channel or none "
            "(default: the architecture's)."
        ),
    ] = None,
    epochs: Epochs = 10,
    seed: Seed = 0,
    devices: Devices = 1,
    num_nodes: NumNodes = 1,
    accelerator: Accelerator = "auto",
    resume: Resume = False,
    patience: Patience = 5,
    limit_train_batches: Annotated[
        int | None, typer.Option(help="Batches per epoch (smoke runs).")
    ] = None,
    max_minutes: MaxMinutes = None,
    num_workers: Annotated[
        int, typer.Option(min=0, help="Data-loading worker processes per device.")
    ] = 0,
    compile_mode: Annotated[
        str | None,
        typer.Option(
            "--compile",
            help="Compile the network with torch.compile: default, reduce-overhead (CUDA "
            "graphs) or max-autotune. Checkpoints are unchanged.",
        ),
    ] = None,
) -> None:
    """Train an encoder-forecaster; checkpoints in OUT/checkpoints (best.ckpt, last.ckpt)."""

    from lstmforge.data.moving_mnist import check_mnist_test_seq
    from lstmforge.tasks.nowcast.data import default_data
    from lstmforge.tasks.nowcast.train import train

    if test_file is not None:  # checked now, not when the run is evaluated
        check_mnist_test_seq(test_file)
    config = default_data(
        dataset,
        data=str(data.resolve()) if data else None,
        test_file=str(test_file.resolve()) if test_file else None,
        in_len=in_len,
        out_len=out_len,
        frame_size=frame_size,
        num_train=num_train,
        num_val=num_val,
        num_test=num_test,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
    )
    cfg = train_config(
        out,
        epochs,
        seed,
        devices,
        num_nodes,
        accelerator,
        resume,
        patience,
        limit_train_batches=limit_train_batches,
        max_minutes=max_minutes,
    )
    result = train(arch, config, cfg, loss, lr, peephole, num_workers, compile_mode)
    console.print(
        f"trained {arch} on {dataset} for {result.epochs_run} epochs in {result.seconds:.0f} s; "
        f"best checkpoint: {result.best_checkpoint}"
    )


@nowcast_app.command("evaluate")
def evaluate_command(
    checkpoint: Annotated[Path, typer.Option(help="A nowcast checkpoint (best.ckpt).")],
    json_out: JsonOut = None,
    baselines: Annotated[
        bool, typer.Option(help="Also score persistence and optical-flow extrapolation.")
    ] = False,
    artifact: Annotated[
        Path | None,
        typer.Option(help="A compressed model (.lfz): evaluate through the integer engine."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Data path replacing the one the model was trained on.")
    ] = None,
    num_test: Annotated[int | None, typer.Option(help="Test sequences (synthetic data).")] = None,
    test_file: Annotated[
        Path | None, typer.Option(help="mnist_test_seq.npy as the Moving MNIST test set.")
    ] = None,
    figures: Annotated[
        Path | None, typer.Option(help="Write frame strips, GIFs and skill plots here.")
    ] = None,
    examples: Annotated[int, typer.Option(min=0, help="Example sequences to draw.")] = 3,
    accelerator: Accelerator = "cpu",
) -> None:
    """Score a trained model on its test split (overall and per lead time)."""
    from dataclasses import replace

    from rich.progress import Progress
    from rich.table import Table

    from lstmforge.tasks.nowcast.data import NowcastDataModule
    from lstmforge.tasks.nowcast.evaluate import evaluate_all, evaluation_device
    from lstmforge.tasks.nowcast.spec import build_datamodule, load_module

    module = load_module(checkpoint)
    datamodule = build_datamodule(module.hparams, data)
    overrides = {"num_test": num_test, "test_file": str(test_file.resolve()) if test_file else None}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        datamodule = NowcastDataModule(replace(datamodule.config, **overrides))
    if artifact is not None:
        from lstmforge import compress, engine

        module = engine.substitute(module, compress.load(artifact))
    module = module.to(evaluation_device(accelerator, integer_engine=artifact is not None))
    with Progress(console=console, transient=True) as progress:
        datamodule.split("test")
        bar = progress.add_task("evaluating", total=None)
        results, shown = evaluate_all(
            module,
            datamodule,
            baselines=baselines,
            num_examples=examples if figures else 0,
            on_batch=lambda done, total: progress.update(bar, completed=done, total=total),
        )
    radar = module.hparams.data_config["dataset"] == "radar"
    table = Table(title=f"{module.hparams.arch} on {module.hparams.data_config['dataset']}")
    table.add_column("metric")
    for method in results:
        table.add_column(method, justify="right")
    for name in (k for k in results["model"] if k != "per_lead" and not k.startswith("fss")):
        table.add_row(name, *(f"{scores[name]:.4g}" for scores in results.values()))
    console.print(table)
    if figures is not None:
        from lstmforge.tasks.nowcast.plots import write_figures

        past, future, forecasts = shown.arrays()
        written = write_figures(figures, results, past, future, forecasts, radar)
        console.print(f"wrote {len(written)} figures to {figures}")
    emit_json(
        json_out,
        {
            "checkpoint": str(checkpoint),
            "artifact": str(artifact) if artifact else None,
            "arch": module.hparams.arch,
            "dataset": module.hparams.data_config["dataset"],
            "test_windows": len(datamodule.split("test")),
            "results": results,
        },
    )


@nowcast_app.command("predict")
def predict_command(
    checkpoint: Annotated[Path, typer.Option(help="A nowcast checkpoint.")],
    past: Annotated[
        Path, typer.Option("--input", help="Past frames: radar HDF5 ([N, T, H, W]) or .npy.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output .npz (pysteps-ready for radar).")],
    horizon: Annotated[int, typer.Option(min=1, help="Frames to predict.")] = 15,
    sequence: Annotated[int, typer.Option(min=0, help="Which sequence of the input.")] = 0,
) -> None:
    """Forecast HORIZON frames after the frames of one input sequence (no targets needed)."""
    import numpy as np

    from lstmforge.errors import InputError
    from lstmforge.tasks.nowcast.predict import export_nowcast, input_units, predict
    from lstmforge.tasks.nowcast.spec import load_module

    module = load_module(checkpoint)
    conversion = {}  # Z-R constants and time step of the input, kept in the output's metadata
    if past.suffix == ".npy":
        if not past.is_file():
            raise InputError(f"{past}: input file not found")
        try:
            frames = np.load(past, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise InputError(f"{past}: not a readable .npy file ({err})") from None
    else:
        from lstmforge.data.radar_hdf5 import load_radar_hdf5

        radar = load_radar_hdf5(past)
        frames = radar.dbz
        conversion = {
            "zr_a": radar.zr_a,
            "zr_b": radar.zr_b,
            "timestep_minutes": radar.timestep_minutes,
        }
    if np.ndim(frames) != 4 or sequence >= len(frames):
        raise InputError(f"{past}: expected [N, T, H, W] with more than {sequence} sequences")
    forecast = predict(module, frames[sequence], horizon)
    if input_units(module) == "dBZ":
        export_nowcast(out, forecast, **conversion)
    else:
        from lstmforge.io import atomic_path

        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, frames=forecast)
    console.print(f"wrote {horizon} forecast frames to {out}")


def register(app: typer.Typer) -> None:
    """Add the `nowcast` sub-app to the root app."""
    app.add_typer(nowcast_app, name="nowcast")
