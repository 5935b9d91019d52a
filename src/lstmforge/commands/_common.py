"""Small helpers shared by the command modules: JSON output and the common training options."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from lstmforge.io import write_json

if TYPE_CHECKING:
    from lstmforge.training import TrainConfig

console = Console()

# Options shared by every `<task> train` command (typer Annotated aliases).
OutDir = Annotated[Path, typer.Option("--out", help="Run directory (checkpoints, logs, figures).")]
Epochs = Annotated[int, typer.Option("--epochs", min=1, help="Maximum number of epochs.")]
Seed = Annotated[
    int,
    typer.Option(
        "--seed",
        help="Random seed (init, shuffling; synthetic data unless it has its own seed option).",
    ),
]
Devices = Annotated[int, typer.Option("--devices", min=1, help="Devices per node (DDP when > 1).")]
NumNodes = Annotated[int, typer.Option("--num-nodes", min=1, help="Number of nodes (DDP).")]
Accelerator = Annotated[str, typer.Option("--accelerator", help="auto, cpu or gpu.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoints.")]
MaxMinutes = Annotated[
    float | None,
    typer.Option("--max-minutes", help="Stop training after this many minutes of wall time."),
]
Patience = Annotated[
    int, typer.Option("--patience", min=0, help="Early-stopping patience (0: off).")
]


def _positive_finite(value: float) -> float:
    if not 0 < value < math.inf:
        raise typer.BadParameter(f"must be a finite number > 0, got {value}")
    return value


LearningRate = Annotated[
    float, typer.Option("--lr", help="Adam learning rate.", callback=_positive_finite)
]
JsonOut = Annotated[
    Path | None, typer.Option("--json", help="Write the figures as one JSON object to this path.")
]


def emit_json(path: Path | None, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` as one JSON object when ``--json`` was given."""
    if path is not None:
        write_json(path, payload)
        console.print(f"wrote {path}")


def train_config(
    out: Path,
    epochs: int,
    seed: int,
    devices: int,
    num_nodes: int,
    accelerator: str,
    resume: bool,
    patience: int,
    **settings: Any,
) -> TrainConfig:
    """Build the shared :class:`~lstmforge.training.TrainConfig` from the common options.

    ``settings`` passes any further ``TrainConfig`` field (e.g. ``monitor``).
    """
    from lstmforge.training import TrainConfig

    return TrainConfig(
        out_dir=out,
        max_epochs=epochs,
        seed=seed,
        devices=devices,
        num_nodes=num_nodes,
        accelerator=accelerator,
        resume=resume,
        patience=patience or None,
        **settings,
    )
