"""A bounded wait for the event store: a table lock held elsewhere refuses the
command after one lock timeout (``store_busy``, a 503) instead of ten of them."""

from __future__ import annotations

import time
from datetime import date

import psycopg
import pytest
from freezegun import freeze_time

from api.problems import status_of
from ledger.build import ledger_at
from ledger.domain.errors import StoreBusy
from tests.scenarios.helpers import Story


@pytest.mark.postgres
def test_a_table_lock_held_elsewhere_refuses_the_command_after_one_lock_timeout(postgres_url):
    ledger = ledger_at(postgres_url, env={"POSTGRES_LOCK_TIMEOUT": "1"})
    try:
        with freeze_time("2026-03-02 09:00:00"):
            story = Story(ledger)
        schema = postgres_url.split("schema=")[1]
        with psycopg.connect(postgres_url.split("?")[0]) as holder:
            holder.execute(f"LOCK TABLE {schema}.{ledger.recorder.events_table_name} IN EXCLUSIVE MODE")
            started = time.monotonic()
            with freeze_time("2026-03-02 09:00:00"), pytest.raises(StoreBusy, match="held the ledger's event table"):
                story.submit(date(2026, 3, 16))
            waited = time.monotonic() - started
            holder.rollback()
        assert waited < 5  # one lock timeout of 1 s, not the library's ten tries (about 12 s)
        assert story.events() == ["WalletOpened"]  # nothing recorded
        with freeze_time("2026-03-02 09:00:00"):
            story.submit(date(2026, 3, 16))  # the lock gone, the same command goes through
        assert story.events() == ["WalletOpened", "ApplicationSubmitted"]
    finally:
        ledger.close()
    assert status_of(StoreBusy.code) == 503
