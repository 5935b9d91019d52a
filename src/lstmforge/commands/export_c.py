"""`lstmforge export-c ART.lfz --out DIR`: the compressed model as self-contained C99."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import JsonOut, console, emit_json


def export_c_command(
    artifact: Annotated[Path, typer.Argument(help="Compressed model (.lfz).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the C files.")],
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", help="C name prefix (default: from the artifact's file name)."),
    ] = None,
    json_path: JsonOut = None,
) -> None:
    """Write PREFIX.h, PREFIX_model.h, PREFIX.c and PREFIX_example.c (docs/export-c.md)."""
    from lstmforge.compress import load
    from lstmforge.export import default_prefix, export_c

    cm = load(artifact)
    summary = export_c(cm, out, prefix or default_prefix(artifact), source=artifact.name)
    memory = summary["memory_bytes"]
    console.print(
        f"wrote {', '.join(summary['files'])} to {out}: {memory['total'] / 1024:.1f} KiB of "
        f"constant data ({memory['values'] / 1024:.1f} values, "
        f"{memory['rel_index'] / 1024:.1f} indices, "
        f"{memory['col_ptr'] / 1024:.1f} {summary['col_ptr_bits']}-bit column pointers)"
    )
    console.print(
        f"build: cc -std=c99 -O2 {out / summary['prefix']}.c {out / summary['prefix']}_example.c"
    )
    emit_json(json_path, summary)


def register(app: typer.Typer) -> None:
    """Add the `export-c` command to the root app."""
    app.command("export-c")(export_c_command)
