"""A tool run where there is no ledger says so, "no ledger at PATH", exit 2, and
creates nothing: run from another folder, it used to make an empty
``var/ledger.db`` there and answer "no wallet"."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from ledger.build import ledger_at
from scripts import export, reconcile, replay, run_deadlines, verify
from tests.conftest import ENTERPRISE
from tests.scenarios.helpers import Story
from tests.tools.helpers import DATABASE_URL_VARIABLE, Tools

STATEMENT = "value_date,amount,direction,reference,description\n2026-03-04,5.00,credit,,a payment\n"
READERS = {
    "replay": (replay, [ENTERPRISE]),
    "verify": (verify, []),
    "export": (export, ["--out", "archive"]),
    "reconcile": (reconcile, ["--statement", "statement.csv"]),
    "run-deadlines": (run_deadlines, []),
}


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch) -> Path:
    """A folder with no ledger in it (only a bank statement), as the working folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "statement.csv").write_text(STATEMENT)
    return tmp_path


@pytest.mark.parametrize("name", READERS)
def test_a_tool_run_from_a_folder_without_a_ledger_says_so_and_creates_nothing(elsewhere, monkeypatch, capsys, name):
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)  # the default: ./var/ledger.db
    tool, args = READERS[name]
    capsys.readouterr()
    code = tool.main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"kmo-ledger {name}: no ledger at {elsewhere / 'var' / 'ledger.db'}\n"
    assert files_under(elsewhere) == {"statement.csv"}


@pytest.mark.parametrize("name", READERS)
def test_a_sqlite_file_that_holds_no_ledger_is_no_ledger(elsewhere, monkeypatch, capsys, name):
    other = elsewhere / "other.db"
    other.write_bytes(b"")
    tool, args = READERS[name]
    outcome = Tools(monkeypatch, capsys, f"sqlite:///{other}").run(tool.main, *args)
    assert outcome.code == 2 and outcome.err == f"kmo-ledger {name}: no ledger at {other}\n"
    assert files_under(elsewhere) == {"statement.csv", "other.db"} and other.read_bytes() == b""


def tables_in(postgres_url: str) -> list[str]:
    schema = postgres_url.split("schema=", 1)[1]
    with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return [row[0] for row in rows]


@pytest.mark.postgres
@pytest.mark.parametrize("name", READERS)
def test_a_postgresql_schema_without_the_ledgers_tables_is_no_ledger(
    elsewhere, monkeypatch, capsys, name, postgres_url
):
    tool, args = READERS[name]
    outcome = Tools(monkeypatch, capsys, postgres_url).run(tool.main, *args)
    assert outcome.code == 2 and outcome.err == f"kmo-ledger {name}: no ledger at {postgres_url}\n"
    assert tables_in(postgres_url) == [] and files_under(elsewhere) == {"statement.csv"}


@pytest.mark.postgres
def test_a_postgresql_schema_that_does_not_exist_is_no_ledger_and_is_not_made(monkeypatch, capsys, postgres_server):
    url = f"{postgres_server.split('?')[0]}?schema=t_missing_{os.getpid()}"
    outcome = Tools(monkeypatch, capsys, url).run(replay.main, ENTERPRISE)
    assert outcome.code == 2 and outcome.err == f"kmo-ledger replay: no ledger at {url}\n"
    with psycopg.connect(postgres_server.split("?")[0], autocommit=True) as connection:
        schema = url.split("schema=", 1)[1]
        assert connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None


@pytest.mark.postgres
def test_the_message_names_the_database_without_its_password(monkeypatch, capsys, postgres_server):
    url = postgres_server.split("?")[0].replace("postgres@", "postgres:s3cret@") + f"?schema=t_missing_{os.getpid()}"
    outcome = Tools(monkeypatch, capsys, url).run(verify.main)
    assert outcome.code == 2 and "no ledger at postgresql://postgres@" in outcome.err and "s3cret" not in outcome.err


def test_a_ledger_that_is_there_is_read(monkeypatch, capsys, database_url):
    ledger = ledger_at(database_url)
    try:
        Story(ledger)  # a wallet opened
    finally:
        ledger.close()
    outcome = Tools(monkeypatch, capsys, database_url).run(replay.main, ENTERPRISE, "--json")
    assert outcome.code == 0, outcome.err
