"""`lstmforge simulate` (not yet registered)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the `simulate` command(s) to the root app."""
