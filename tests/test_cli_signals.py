"""The entry point's exit statuses for runs that do not end normally."""

import signal

import pytest
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lstmforge import cli


def test_sigterm_is_reported_and_not_a_success(monkeypatch, capsys):
    """Lightning ends a run on SIGTERM with a SystemExit without a code (status 0)."""

    def terminated(**_):
        raise SIGTERMException

    monkeypatch.setattr(cli, "app", terminated)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["nowcast", "train"])
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert "--resume" in capsys.readouterr().err


def test_other_exits_pass_through(monkeypatch):
    def done(**_):
        raise SystemExit(0)

    monkeypatch.setattr(cli, "app", done)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["version"])
    assert exit_info.value.code == 0
