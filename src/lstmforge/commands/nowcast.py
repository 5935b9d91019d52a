"""`lstmforge nowcast train|evaluate|predict`: precipitation nowcasting (Shi et al. 2015)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import (
    Accelerator,
    Devices,
    Epochs,
    NumNodes,
    OutDir,
    Patience,
    Resume,
    Seed,
    console,
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
    num_train: Annotated[int | None, typer.Option(help="Training sequences.")] = None,
    num_val: Annotated[int | None, typer.Option(help="Validation sequences.")] = None,
    num_test: Annotated[int | None, typer.Option(help="Test sequences.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size per device.")] = None,
    shuffle: Annotated[bool, typer.Option(help="Shuffle training sequences.")] = True,
    loss: Annotated[
        str | None, typer.Option(help="bce, mse or balanced-mse (default bce / mse).")
    ] = None,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
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
) -> None:
    """Train an encoder-forecaster; checkpoints in OUT/checkpoints (best.ckpt, last.ckpt)."""

    from lstmforge.tasks.nowcast.data import default_data
    from lstmforge.tasks.nowcast.train import train

    config = default_data(
        dataset,
        data=str(data) if data else None,
        test_file=str(test_file) if test_file else None,
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
    )
    result = train(arch, config, cfg, loss, lr)
    console.print(
        f"trained {arch} on {dataset} for {result.epochs_run} epochs in {result.seconds:.0f} s; "
        f"best checkpoint: {result.best_checkpoint}"
    )


def register(app: typer.Typer) -> None:
    """Add the `nowcast` sub-app to the root app."""
    app.add_typer(nowcast_app, name="nowcast")
