"""PostgreSQL: a command's events go in through the ledger's own stored function,
which takes the table lock that keeps commit order = notification order."""

from __future__ import annotations

import psycopg
import pytest

from ledger import commands as c
from ledger.application import KmoLedger
from tests.conftest import BACK_OFFICE, ENTERPRISE, sme


@pytest.mark.postgres
def test_commands_insert_through_the_locking_function_even_if_the_library_recreates_its_own(postgres_url):
    base, schema = postgres_url.split("?schema=")
    ledger = KmoLedger(postgres_url)
    try:
        with psycopg.connect(base, autocommit=True) as connection:
            # what an older process (or the stock library) installs at its start
            connection.execute(f"DROP FUNCTION IF EXISTS {schema}.es_insert_events_uuid")
            source = connection.execute(
                "SELECT prosrc FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace "
                "WHERE nspname = %s AND proname = 'kmo_ledger_insert_events_uuid'", (schema,)
            ).fetchone()
        assert source is not None and "LOCK TABLE" in source[0]
        wallet = ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij", sme=sme()), BACK_OFFICE)
        assert ledger.recorder.max_notification_id() == 1
        assert ledger.get_wallet(ENTERPRISE).version == wallet.version
    finally:
        ledger.close()
