"""`lstmforge compress CKPT`: prune, quantize and encode a task checkpoint into a `.lfz`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import JsonOut, Seed, console, emit_json
from lstmforge.errors import InputError


def compress(
    checkpoint: Annotated[Path, typer.Argument(help="Task checkpoint (.ckpt) to compress.")],
    out: Annotated[Path, typer.Option("--out", help="The .lfz artifact to write.")],
    density: Annotated[float, typer.Option("--density", help="Fraction of weights kept.")] = 0.1,
    matrix_density: Annotated[
        list[str] | None,
        typer.Option(
            "--matrix-density",
            help="BLOCK:PARAM=D: this matrix's density instead of --density; PARAM=D: every "
            "matrix so named (repeatable; BLOCK:PARAM wins).",
        ),
    ] = None,
    sensitivity: Annotated[
        float | None,
        typer.Option(
            "--sensitivity",
            help="Share --density out over the matrices by their sensitivity, measured by "
            "pruning one matrix at a time to this density (validation loss).",
        ),
    ] = None,
    pes: Annotated[int, typer.Option("--pes", min=1, help="Processing elements.")] = 32,
    weight_bits: Annotated[int, typer.Option("--weight-bits", min=2, max=16)] = 12,
    retrain_epochs: Annotated[
        int, typer.Option("--retrain-epochs", min=0, help="Fine-tuning epochs per prune step.")
    ] = 0,
    prune_steps: Annotated[int, typer.Option("--prune-steps", min=1, help="Gradual steps.")] = 3,
    retrain_fraction: Annotated[
        float,
        typer.Option("--retrain-fraction", min=0.0, max=1.0, help="Share of each epoch's batches."),
    ] = 1.0,
    unbalanced: Annotated[
        bool, typer.Option("--unbalanced", help="Plain magnitude pruning (no PE balancing).")
    ] = False,
    qat: Annotated[bool, typer.Option("--qat", help="Quantization-aware fine-tuning.")] = False,
    activation: Annotated[str, typer.Option("--activation", help="lut or plan.")] = "lut",
    lut_bits: Annotated[int, typer.Option("--lut-bits", min=1, max=16)] = 10,
    interpolate: Annotated[bool, typer.Option("--interpolate/--no-interpolate")] = True,
    calibration_batches: Annotated[int, typer.Option("--calibration-batches", min=1)] = 8,
    cell_guard_bits: Annotated[
        int,
        typer.Option(
            "--cell-guard-bits",
            min=0,
            max=8,
            help="Integer bits of the cell states above their calibrated range (0: none).",
        ),
    ] = 0,
    data: Annotated[
        Path | None, typer.Option("--data", help="Real data path for the task.")
    ] = None,
    evaluate: Annotated[
        bool, typer.Option("--evaluate/--no-evaluate", help="Score dense/pruned/integer.")
    ] = True,
    seed: Seed = 0,
    json_out: JsonOut = None,
) -> None:
    """Compress CKPT (ESE: balanced pruning, 12-bit weights, per-PE CSC) into OUT."""
    from rich import box
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from lstmforge.compress.pipeline import compress_checkpoint, stage_names
    from lstmforge.engine.activation_units import ActivationConfig

    overrides = _matrix_densities(matrix_density or [])
    stages = stage_names(
        retrain=retrain_epochs > 0,
        evaluate=evaluate,
        balanced=not unbalanced,
        sensitivity=sensitivity is not None,
    )
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("compress", total=len(stages))

        def on_stage(name: str) -> None:
            bar.update(task, description=name, completed=stages.index(name))

        run = compress_checkpoint(
            checkpoint,
            out,
            density=density,
            num_pes=pes,
            matrix_density=overrides,
            sensitivity_probe=sensitivity,
            weight_bits=weight_bits,
            balanced=not unbalanced,
            retrain_epochs=retrain_epochs,
            prune_steps=prune_steps,
            retrain_fraction=retrain_fraction,
            qat=qat,
            calibration_batches=calibration_batches,
            data=data,
            activation=ActivationConfig(
                kind=activation, index_bits=lut_bits, interpolate=interpolate
            ),
            cell_guard_bits=cell_guard_bits,
            evaluate=evaluate,
            seed=seed,
            on_stage=on_stage,
        )
        bar.update(task, description="done", completed=len(stages))
    report = run.artifact.report
    fp = report["footprint"]
    # borderless, short headers: the matrix names keep the width (an 80-column terminal fits
    # "model.layers.0:weight_ih_l0"); dens. kept fraction, nnz nonzeros, pad padding entries,
    # ptr pointer bits
    names = min(40, max(map(len, fp["matrices"]), default=6))
    table = Table(
        title=f"footprint of {out}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    table.add_column("matrix", overflow="fold", min_width=names)
    for column in ("shape", "dens.", "nnz", "pad", "ptr", "KiB", "x fp32"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, row in fp["matrices"].items():
        rows, cols = row["shape"]
        table.add_row(
            name,
            f"{rows}x{cols}",
            f"{row['nonzeros'] / (rows * cols):.3f}",
            str(row["nonzeros"]),
            str(row["padding_entries"]),
            str(row["pointer_bits"]),
            f"{row['total_bits'] / 8192:.1f}",
            f"{row['ratio_vs_fp32']:.1f}",
        )
    console.print(table)
    kib = {k: v / 1024 for k, v in fp.items() if k.endswith("_bytes")}
    console.print(
        f"total {kib['compressed_bytes']:.1f} KiB (values {kib['values_bytes']:.1f}, indices "
        f"{kib['indices_bytes']:.1f}, pointers {kib['pointers_bytes']:.1f}, padding "
        f"{kib['padding_bytes']:.1f}, biases {kib['biases_bytes']:.1f}, peepholes "
        f"{kib['peepholes_bytes']:.1f} stored dense) vs dense fp32 {kib['dense_fp32_bytes']:.1f} "
        f"KiB: {fp['ratio_vs_fp32']:.1f}x ({fp['ratio_vs_dense_weight_bits']:.1f}x vs dense "
        f"{weight_bits}-bit; {fp['ratio_vs_fp32_without_peepholes']:.1f}x without the peepholes); "
        f"activation tables {kib['activation_tables_bytes']:.1f} KiB, not in the ratio"
    )
    load = Table(
        title=f"PE load over {pes} PEs (max / mean nonzeros; utilisation = mean / max)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    load.add_column("matrix", overflow="fold", min_width=names)
    for column in ("balanced", "plain pruning", "utilisation (plain)"):
        load.add_column(column, justify="right", no_wrap=True)
    for name, row in report["pe_load"].items():
        load.add_row(
            name,
            f"{row['balanced']['imbalance']:.3f}",
            f"{row['unbalanced']['imbalance']:.3f}",
            f"{row['unbalanced']['utilisation']:.3f}",
        )
    console.print(load)
    if run.metrics:
        metrics = Table(
            title=f"{run.task}: dense float vs pruned float (both pruning modes, one shot for "
            "the other) vs pruned + integer",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        metrics.add_column("metric", overflow="fold")
        for name in run.metrics:  # dense_float -> "dense float" can wrap between the words
            metrics.add_column(name.replace("_", " "), justify="right")
        for key in run.metrics["dense_float"]:
            metrics.add_row(
                key, *(f"{run.metrics[m].get(key, float('nan')):.4f}" for m in run.metrics)
            )
        console.print(metrics)
    for unit, error in report["activation_unit_error"].items():
        console.print(
            f"{unit} unit ({run.artifact.activation.kind}): max error "
            f"{error['max_abs_error']:.2e}, mean {error['mean_abs_error']:.2e} over all inputs"
        )
    if run.sensitivity is not None:
        console.print(
            f"sensitivity (validation loss increase with one matrix at density {sensitivity}): "
            + ", ".join(f"{k} {v:+.4g}" for k, v in run.sensitivity.items())
        )
    if run.retrained_checkpoint is not None:
        console.print(
            f"retrained float model (pruned float; the artifact's host): {run.retrained_checkpoint}"
            f" — evaluate the artifact with --checkpoint {run.retrained_checkpoint}"
        )
    clamped = {site: n for site, n in run.saturation.items() if n}
    # a saturating accumulator counts every addition that clamps, not every clamped output
    console.print(f"clamp events per site: {clamped or 'none'}")
    emit_json(
        json_out,
        {
            "task": run.task,
            "artifact": str(out),
            "retrained_checkpoint": (
                str(run.retrained_checkpoint) if run.retrained_checkpoint else None
            ),
            "density": density,
            "matrix_densities": run.densities if isinstance(run.densities, dict) else None,
            "overall_density": sum(r["nonzeros"] for r in fp["matrices"].values())
            / sum(r["shape"][0] * r["shape"][1] for r in fp["matrices"].values()),
            "sensitivity": run.sensitivity,
            "num_pes": pes,
            "weight_bits": weight_bits,
            "balanced": not unbalanced,
            "footprint": fp,
            "pe_load": report["pe_load"],
            "activation_unit_error": report["activation_unit_error"],
            "metrics": run.metrics,
            "headline": list(run.headline) if run.headline else None,
            "saturation": run.saturation,
            "retrain": run.retrain,
            "seconds": run.seconds,
        },
    )


def _matrix_densities(items: list[str]) -> dict[str, float]:
    """``["model.layers.0:weight_hh_l0=0.2", ...]`` as a dict (``--matrix-density``)."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not key or number is None:
            raise InputError(f"--matrix-density: expected BLOCK:PARAM=D or PARAM=D, got {item!r}")
        out[key] = number
    return out


def register(app: typer.Typer) -> None:
    """Add the `compress` command to the root app."""
    app.command("compress")(compress)
