"""The ``lstmforge`` command: one sub-command per pipeline stage.

Thin by design: each module in :mod:`lstmforge.commands` parses its options, calls the library
and prints. Bad input anywhere (an :class:`~lstmforge.errors.InputError`) becomes one line on
stderr and exit status 2, with no traceback.
"""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console
from rich.markup import escape

from lstmforge.commands import REGISTRARS
from lstmforge.errors import InputError

app = typer.Typer(
    name="lstmforge",
    help="Recurrent networks from training to a sparse fixed-point ESE-style accelerator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for register in REGISTRARS:
    register(app)


@app.command()
def version() -> None:
    """Print the lstmforge version."""
    from lstmforge import __version__

    print(__version__)


def _exit_with(message: str, status: int = 2) -> None:
    """Print one line on stderr (rich markup in ``message``; paths and user text escaped by the
    caller) and exit with ``status``."""
    Console(stderr=True).print(message, highlight=False, soft_wrap=True)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, mapping bad input to exit status 2."""
    try:
        app(args=argv, standalone_mode=True)
    except InputError as err:
        _exit_with(f"[bold red]error:[/] {escape(str(err))}")
    except FileNotFoundError as err:
        _exit_with(f"[bold red]error:[/] file not found: {escape(str(err.filename or err))}")
    except SystemExit as err:
        # Lightning ends a run on SIGTERM with SIGTERMException, a SystemExit without a code,
        # which would read as success (only looked up if raised: importing Lightning is slow)
        if type(err).__name__ != "SIGTERMException":
            raise
        _exit_with(
            "[bold red]stopped by SIGTERM[/]: checkpoints saved so far are kept; a training run "
            "continues with the same command and --resume",
            128 + signal.SIGTERM,
        )
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as err:  # output paths
        name = escape(str(err.filename or err))
        _exit_with(f"[bold red]error:[/] cannot write {name}: a file or directory is in the way")


if __name__ == "__main__":
    main()
