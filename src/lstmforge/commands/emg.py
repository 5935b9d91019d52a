"""`lstmforge emg` (not yet registered)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the `emg` command(s) to the root app."""
