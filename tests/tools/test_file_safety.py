"""The ledger's own files are its owner's alone: the SQLite database, its -wal
and -shm files and the folders the ledger creates for them (the exports are
checked in ``test_export.py``)."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest
from freezegun import freeze_time

from api.settings import ensure_keys_file
from ledger.application import KmoLedger
from tests.scenarios.helpers import Story


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request) -> Iterator[int]:
    """The process umask for one test (the ledger must not depend on it)."""
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def test_a_new_database_its_wal_and_shm_files_and_its_folder_are_owner_only(tmp_path, umask):
    database = tmp_path / "var" / "ledger.db"
    ledger = KmoLedger(f"sqlite:///{database}")
    try:
        with freeze_time("2024-03-04 09:00:00"):
            story = Story(ledger)
            story.submit(date(2024, 3, 18))
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert {path.name: mode(path) for path in files} == {
            "ledger.db": 0o600,
            "ledger.db-wal": 0o600,
            "ledger.db-shm": 0o600,
        }
        assert mode(database.parent) == 0o700
    finally:
        ledger.close()
    assert mode(database) == 0o600


def test_an_existing_database_readable_by_others_is_made_owner_only_with_a_warning(tmp_path, caplog):
    database = tmp_path / "ledger.db"
    with closing(sqlite3.connect(database, isolation_level=None)) as earlier:  # as versions before this one did
        earlier.execute("PRAGMA journal_mode=WAL")
        earlier.execute("CREATE TABLE earlier (x)")
        os.chmod(database, 0o644)
        for suffix in ("-wal", "-shm"):
            os.chmod(f"{database}{suffix}", 0o644)
        with caplog.at_level(logging.WARNING, logger="kmo_ledger.storage"):
            ledger = KmoLedger(f"sqlite:///{database}")
        try:
            assert [mode(Path(f"{database}{suffix}")) for suffix in ("", "-wal", "-shm")] == [0o600] * 3
        finally:
            ledger.close()
    assert f"{database} was readable by others" in caplog.text


def test_the_generated_api_keys_file_lies_in_an_owner_only_folder(tmp_path, umask):
    keys = tmp_path / "var" / "api-keys.json"
    assert ensure_keys_file(keys)
    assert (mode(keys.parent), mode(keys)) == (0o700, 0o600)


def test_an_existing_folder_keeps_its_permissions(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o750)
    KmoLedger(f"sqlite:///{folder / 'ledger.db'}").close()
    assert (mode(folder), mode(folder / "ledger.db")) == (0o750, 0o600)
