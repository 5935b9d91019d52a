"""`lstmforge simulate`: run a `.lfz` artifact on the cycle-level ESE accelerator model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import JsonOut, console, emit_json
from lstmforge.errors import InputError

SWEEP_PES = "8,16,32,64"
SWEEP_BANDWIDTH = "2.5,5,10,20.48"
DEFAULT_PRESET = "ese-ku060"


def _numbers(text: str, kind: type, option: str) -> list:
    """Comma-separated positive finite numbers."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise InputError(f"{option}: expected at least one value")
    bad = [v for v in values if not (0 < v < math.inf)]
    if bad:
        raise InputError(f"{option}: expected positive finite numbers, got {bad[0]!r}")
    return values


def simulate_command(
    artifact: Annotated[Path, typer.Argument(help="Compressed model (.lfz).")],
    config: Annotated[Path | None, typer.Option("--config", help="Accelerator YAML file.")] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", help=f"Shipped preset, instead of --config (default {DEFAULT_PRESET})."
        ),
    ] = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Frames per utterance.")] = 100,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Explore PEs x bandwidth x density.")
    ] = False,
    pes: Annotated[
        str | None, typer.Option("--pes", help=f"Sweep: PEs per channel (default {SWEEP_PES}).")
    ] = None,
    bandwidth: Annotated[
        str | None, typer.Option("--bandwidth", help=f"Sweep: GB/s (default {SWEEP_BANDWIDTH}).")
    ] = None,
    density: Annotated[
        str | None,
        typer.Option("--density", help="Sweep: densities (default: the artifact's, x0.5)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Directory for figures.")] = None,
    json_path: JsonOut = None,
) -> None:
    """Simulate the accelerator running the artifact's LSTM stack; print and save the figures."""
    from rich.table import Table

    from lstmforge.compress import load
    from lstmforge.hw import load_config, load_preset, simulate
    from lstmforge.report.plots import pareto_plot, timeline_plot

    if config is not None and preset is not None:
        raise InputError("simulate: give --config or --preset, not both")
    sweep_only = {"--pes": pes, "--bandwidth": bandwidth, "--density": density}
    given = [name for name, value in sweep_only.items() if value is not None]
    if given and not sweep:
        raise InputError(f"simulate: {', '.join(given)} only apply with --sweep")
    preset = preset or DEFAULT_PRESET
    cm = load(artifact)
    cfg = load_config(config) if config is not None else load_preset(preset)
    source = str(config) if config is not None else f"preset {preset}"
    if sweep:
        from lstmforge.hw.sim.sweep import stored_density
        from lstmforge.hw.sim.sweep import sweep as run_sweep

        base = stored_density(cm)
        densities = _numbers(density, float, "--density") if density else [base, base / 2]
        with console.status("sweeping the design space"):
            result = run_sweep(
                cm,
                cfg,
                frames,
                _numbers(pes or SWEEP_PES, int, "--pes"),
                _numbers(bandwidth or SWEEP_BANDWIDTH, float, "--bandwidth"),
                densities,
            )
        table = Table("density", "PEs", "GB/s", "µs/frame", "utilisation", "Pareto")
        front = {id(p) for p in result["pareto_front"]}
        for p in result["points"]:
            table.add_row(
                f"{p['density']:.3f}",
                str(p["pes_per_channel"]),
                f"{p['memory_bandwidth_gbs']:g}",
                f"{p['latency_us_per_frame']:.1f}",
                f"{p['pe_utilisation']:.2f}",
                "*" if id(p) in front else "",
            )
        console.print(table)
        if out is not None:
            path = pareto_plot(result["points"], result["pareto_front"], out / "pareto.png")
            console.print(f"figure: {path}")
        emit_json(json_path, result | {"config_source": source})
        return
    with console.status(f"simulating {frames} frames on {cfg.channels} channels"):
        report = simulate(cm, cfg, frames)
    table = Table("figure", "value")
    rows = [
        ("latency per frame (µs)", f"{report.latency_us_per_frame:.2f}"),
        ("cycles per frame", f"{report.cycles_per_frame:.0f}"),
        ("latency per utterance (µs)", f"{report.latency_us_per_utterance:.1f}"),
        ("GOP/s (sparse)", f"{report.gops_sparse:.1f}"),
        ("GOP/s (dense-equivalent)", f"{report.gops_dense_equivalent:.1f}"),
        ("PE utilisation (mean)", f"{report.pe_utilisation_mean:.3f}"),
        (
            "PE utilisation (min / max PE)",
            f"{min(report.pe_utilisation):.3f} / {max(report.pe_utilisation):.3f}",
        ),
        *((f"  cycles: {k}", f"{v:.3f}") for k, v in report.cycle_breakdown.items()),
        ("weight bytes per frame", f"{report.memory['weight_bytes_per_frame']:.0f}"),
        ("memory bandwidth used", f"{report.memory['bandwidth_utilisation']:.2f}"),
        ("FIFO max occupancy", str(report.buffers["fifo_max_occupancy"])),
        ("energy per frame (µJ)", f"{report.energy_j_per_frame['total'] * 1e6:.2f}"),
        ("dynamic power estimate (W)", f"{report.power_w:.2f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if out is not None:
        path = timeline_plot(report.timeline, report.timeline_frame, out / "timeline.png")
        console.print(f"figure: {path}")
    emit_json(json_path, report.to_dict() | {"config_source": source})


def register(app: typer.Typer) -> None:
    """Add the `simulate` command to the root app."""
    app.command("simulate")(simulate_command)
