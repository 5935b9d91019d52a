"""`lstmforge nowcast` (not yet registered)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the `nowcast` command(s) to the root app."""
