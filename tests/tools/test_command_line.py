"""What every tool shares: exit 2 and one line on bad usage or a bad database,
``--help`` exits 0, ``kmo-ledger`` dispatches to each tool."""

from __future__ import annotations

import pytest

from ledger.build import ledger_at
from scripts import cli, export, reconcile, replay, run_deadlines, verify
from tests.tools.helpers import Tools

DATABASE_URL_VARIABLE = "KMO_LEDGER_DATABASE_URL"

TOOLS = [replay, verify, export, reconcile, run_deadlines]
REQUIRED = {replay: ["0403170701"], export: ["--out", "archive"], reconcile: ["--statement", "statement.xml"]}


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.__name__)
def test_an_unknown_option_exits_2_with_one_line(monkeypatch, capsys, sqlite_url, tool):
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(tool.main, *REQUIRED.get(tool, []), "--no-such-option")
    assert outcome.code == 2 and outcome.out == ""
    assert len(outcome.err.strip().splitlines()) == 1 and "--no-such-option" in outcome.err


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.__name__)
def test_help_exits_0(monkeypatch, capsys, sqlite_url, tool):
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(tool.main, "--help")
    assert outcome.code == 0 and "--json" in outcome.out


def test_an_unsupported_database_url_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, "mysql://somewhere/ledger")
    capsys.readouterr()
    code = verify.main([])
    err = capsys.readouterr().err
    assert code == 2 and "unsupported database URL" in err and len(err.strip().splitlines()) == 1


def test_an_unreachable_database_exits_2_without_its_password(monkeypatch, capsys):
    monkeypatch.setenv(DATABASE_URL_VARIABLE, "postgresql://auditor:s3cret@127.0.0.1:1/ledger")
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", "1")  # the library's own setting, read from the environment
    capsys.readouterr()
    code = run_deadlines.main([])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "s3cret" not in err
    assert "127.0.0.1:1 cannot be reached" in err


def test_kmo_ledger_dispatches_to_the_tools(monkeypatch, capsys, sqlite_url):
    ledger_at(sqlite_url).close()  # an empty ledger: a tool opens one, never makes one
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(cli.main, "verify", "--json")
    assert outcome.code == 0 and '"ok": true' in outcome.out
