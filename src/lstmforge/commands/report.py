"""`lstmforge report RUN.json [...] --out report.html`: one HTML page from command outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstmforge.commands._common import console


def report_command(
    runs: Annotated[
        list[Path],
        typer.Argument(help="JSON files written by compress, simulate, <task> evaluate, demo, ..."),
    ],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
) -> None:
    """Build one self-contained HTML report (tables and figures) from the JSON outputs."""
    from lstmforge.report.page import write_report
    from lstmforge.report.runs import load_run

    loaded = [load_run(path) for path in runs]
    title = "lstmforge report: " + ", ".join(run.name for run in loaded)
    path = write_report(loaded, out, title)
    console.print(f"report: [bold]{path}[/] ({', '.join(r.kind for r in loaded)})")


def register(app: typer.Typer) -> None:
    """Add the `report` command to the root app."""
    app.command("report")(report_command)
