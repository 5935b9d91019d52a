"""`lstmforge compress` (not yet registered)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the `compress` command(s) to the root app."""
