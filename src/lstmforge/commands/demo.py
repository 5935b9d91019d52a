"""`lstmforge demo` (not yet registered)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the `demo` command(s) to the root app."""
