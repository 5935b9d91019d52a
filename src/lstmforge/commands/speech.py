"""`lstmforge speech` (not yet registered)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the `speech` command(s) to the root app."""
