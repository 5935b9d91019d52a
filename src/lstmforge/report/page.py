"""One HTML page from the JSON outputs of one or more commands (``lstmforge report``, the demo).

Each run contributes the sections of its kind (:mod:`lstmforge.report.sections`); with several
runs, headings name the file each came from and each run draws its figures into its own
sub-directory. A malformed object of a known kind (a field missing or of the wrong type) is an
:class:`~lstmforge.errors.InputError` naming the run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from lstmforge.errors import InputError
from lstmforge.report import html
from lstmforge.report.runs import Run
from lstmforge.report.sections import BUILDERS, Section

MALFORMED = (
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    AttributeError,
    StopIteration,
    ArithmeticError,  # e.g. a count of 0 that a section divides by
)
"""What a section builder raises on a JSON object with a missing or malformed field."""


def run_sections(run: Run, figures: Path) -> list[Section]:
    """The sections of one run, drawing its figures into ``figures``."""
    figures.mkdir(parents=True, exist_ok=True)
    try:
        return BUILDERS[run.kind](run.data, figures)
    except MALFORMED as err:
        raise InputError(
            f"{run.name}: {run.kind} JSON with a missing or malformed field "
            f"({type(err).__name__}: {err})"
        ) from None


def write_report(
    runs: Sequence[Run], out: str | Path, title: str, figures: str | Path | None = None
) -> Path:
    """Write the page for ``runs`` to ``out`` (atomically); returns its path.

    ``figures``: where the PNGs go (they are also embedded in the page); None keeps them only
    in the page.
    """
    if not runs:
        raise InputError("report: no JSON files given")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(figures) if figures is not None else Path(scratch)
        sections: list[Section] = []
        for i, run in enumerate(runs):
            if len(runs) == 1:
                sections += run_sections(run, root)
            else:
                own = run_sections(run, root / f"{i + 1}_{run.kind}")
                sections += [(f"{run.name}: {heading}", body) for heading, body in own]
        return html.write_page(Path(out), title, sections)
