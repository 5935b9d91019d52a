"""`lstmforge demo`: the end-to-end main job (synthetic speech to the simulated accelerator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import JsonOut, OutDir, Seed, console, emit_json


def demo_command(
    out: OutDir = Path("runs/demo"),
    utterances: Annotated[
        int, typer.Option("--utterances", min=20, help="Synthetic corpus size.")
    ] = 300,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs.")] = 10,
    density: Annotated[
        float, typer.Option("--density", min=0.01, max=1.0, help="Weights kept.")
    ] = 0.25,
    retrain_epochs: Annotated[
        int, typer.Option("--retrain-epochs", min=0, help="Fine-tuning epochs per pruning step.")
    ] = 1,
    prune_steps: Annotated[int, typer.Option("--prune-steps", min=1, help="Pruning steps.")] = 3,
    pes: Annotated[int, typer.Option("--pes", min=1, help="PEs per channel.")] = 8,
    seed: Seed = 0,
    json_path: JsonOut = None,
) -> None:
    """Train, compress, evaluate and simulate a small speech model; write one HTML report."""
    import torch

    from lstmforge.report.demo import run_demo

    torch.set_num_threads(1)
    summary = run_demo(
        out,
        utterances=utterances,
        epochs=epochs,
        density=density,
        retrain_epochs=retrain_epochs,
        prune_steps=prune_steps,
        num_pes=pes,
        seed=seed,
        say=console.print,
    )
    per = summary["per"]
    console.print(
        f"PER dense {per['dense_float']:.1f}%, compressed on the integer engine "
        f"{per['pruned_integer']:.1f}%; "
        f"{summary['simulation']['balanced']['latency_us_per_frame']:.1f} µs/frame simulated"
    )
    console.print(f"report: [bold]{summary['report']}[/]")
    emit_json(json_path, summary)


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root app."""
    app.command("demo")(demo_command)
