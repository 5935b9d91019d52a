"""`lstmforge report RUN.json [...] --out report.html`: one HTML page from command outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import console
from lstmforge.errors import InputError


def report_command(
    runs: Annotated[
        list[Path],
        typer.Argument(help="JSON files written by compress, simulate, <task> evaluate, demo, ..."),
    ],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
) -> None:
    """Build one self-contained HTML report (tables and figures) from the JSON outputs."""
    from rich.markup import escape

    from lstmforge.report.page import write_report
    from lstmforge.report.runs import load_run

    if out.is_dir():
        raise InputError(f"--out {out}: a directory; give the path of the HTML file to write")
    loaded = [load_run(path) for path in runs]
    title = "lstmforge report: " + ", ".join(run.name for run in loaded)
    path = write_report(loaded, out, title)
    kinds = ", ".join(r.kind for r in loaded)
    console.print(f"report: [bold]{escape(str(path))}[/] ({kinds})")


def register(app: typer.Typer) -> None:
    """Add the `report` command to the root app."""
    app.command("report")(report_command)
