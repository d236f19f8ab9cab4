"""SQLite: a save's events go in by ONE statement, its own transaction: all of
them or none, with the notification ids the log then shows."""

from __future__ import annotations

import sqlite3
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger.application import KmoLedger
from ledger.storage.sqlite import ONE_STATEMENT_ROWS, LedgerSQLiteRecorder, rows_per_statement


def stored(originator_id, version: int = 1) -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=version, topic="t", state=b"{}")


@pytest.fixture
def recorder(sqlite_url: str):
    ledger = KmoLedger(sqlite_url)
    assert isinstance(ledger.recorder, LedgerSQLiteRecorder)
    yield ledger.recorder
    ledger.close()


def test_a_save_with_one_clashing_event_writes_none_of_its_events(recorder):
    taken, fresh = uuid4(), uuid4()
    recorder.insert_events([stored(taken)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([stored(fresh), stored(taken)])
    assert recorder.select_events(fresh) == []
    assert recorder.max_notification_id() == 1


@pytest.mark.parametrize("variables, rows", [(32_766, ONE_STATEMENT_ROWS), (999, 249)])
def test_a_save_fits_in_one_statement_only_as_far_as_sqlite_takes_its_parameters(variables, rows):
    connection = sqlite3.connect(":memory:")
    connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variables)  # an older SQLite takes 999
    assert rows_per_statement(connection) == rows
    connection.close()


@pytest.mark.parametrize("count", [1, 3, ONE_STATEMENT_ROWS + 1])
def test_the_ids_a_save_returns_are_the_ids_its_events_have_in_the_log(recorder, count):
    recorder.insert_events([stored(uuid4())])
    ids = recorder.insert_events([stored(uuid4(), v) for v in range(1, count + 1)])
    logged = recorder.select_notifications(start=2, limit=count + 10)
    assert list(ids) == [n.id for n in logged] == list(range(2, count + 2))
    # up to ONE_STATEMENT_ROWS events by one statement, more by the library's transaction
    assert (count in recorder._statements) == (count <= ONE_STATEMENT_ROWS)
