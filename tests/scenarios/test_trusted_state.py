"""Nothing stored is trusted unchecked: a snapshot edited in the store is not
used to load its wallet, and a payment-reference claim is used only once its
digest and its wallet confirm it. Stored bytes are edited behind the ledger's
back, as an attacker with a copy of the store would, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.errors import InsufficientFunds
from ledger.domain.identifiers import compact_payment_reference, wallet_id
from ledger.domain.money import parse_euro
from ledger.storage.records import RecordUnverifiable, reference_id
from ledger.storage.snapshots import snapshot_digest
from tests.api.conftest import running, write_keys
from tests.conftest import BACK_OFFICE, ENTERPRISE, sme
from tests.scenarios.helpers import Story

WALLET = wallet_id(ENTERPRISE)
LOG = "kmo_ledger.ledger"


class StoredRows:
    """A table of the store edited directly: ``events`` (events and records) or
    ``snapshots``; on PostgreSQL in the test's schema."""

    TABLES = {
        "events": ("stored_events", "kmo_ledger_events"),
        "snapshots": ("stored_snapshots", "kmo_ledger_snapshots"),
    }

    def __init__(self, database_url: str, table: str):
        self.url = database_url
        self.sqlite = database_url.startswith("sqlite")
        sqlite_table, postgres_table = self.TABLES[table]
        self.table = sqlite_table if self.sqlite else f"{database_url.split('schema=')[1]}.{postgres_table}"

    def _run(self, sql: str, *params: Any) -> list[tuple]:
        if self.sqlite:
            with closing(sqlite3.connect(self.url[len("sqlite:///") :])) as db, db:
                return db.execute(sql, params).fetchall()
        import psycopg

        with psycopg.connect(self.url.split("?")[0], autocommit=True) as db:
            cursor = db.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    def _id(self, originator_id: UUID) -> Any:
        return originator_id.hex if self.sqlite else originator_id

    def state(self, originator_id: UUID, version: int) -> bytes:
        rows = self._run(
            f"SELECT state FROM {self.table} WHERE originator_id = ? AND originator_version = ?",
            self._id(originator_id),
            version,
        )
        return bytes(rows[0][0])

    def update(self, originator_id: UUID, version: int, state: bytes) -> None:
        self._run(
            f"UPDATE {self.table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
            state,
            self._id(originator_id),
            version,
        )

    def edit(self, originator_id: UUID, version: int, change: Callable[[dict[str, Any]], None]) -> None:
        """Decode the stored JSON, ``change`` it in place, store it again."""
        content = orjson.loads(self.state(originator_id, version))
        change(content)
        self.update(originator_id, version, orjson.dumps(content))


def hold(own_share: str, subsidy: str, application_id: str) -> Callable[[dict[str, Any]], None]:
    """An edit of a snapshot: the application holds other balances (digest left as it was)."""

    def change(snapshot: dict[str, Any]) -> None:
        balances = snapshot["state"]["applications"][application_id]["balances"]
        balances.update(held_own_share=own_share, held_subsidy=subsidy)

    return change


def long_wallet(ledger: KmoLedger, events: int = 103) -> str:
    """A wallet holding one 1,000.00 project (700.00 own share, 300.00 subsidy)
    and ``events`` events (a snapshot at version 100); its application's id."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 16), cost_lines=[{"kind": "fee", "amount": "1000.00"}])
        story.fund(application_id, date(2026, 3, 2))
        for n in range(events - 5):
            ledger.file_sme_figures(ENTERPRISE, c.FileSmeFigures(year=2000 + n % 26, sme=sme()), BACK_OFFICE)
    return application_id


@pytest.fixture
def funded(ledger: KmoLedger) -> str:
    application_id = long_wallet(ledger)
    assert [s.originator_version for s in ledger.snapshots.get(WALLET)] == [100]
    return application_id


@pytest.fixture
def cold(database_url: str) -> Iterator[KmoLedger]:
    """Another process's ledger on the same store: nothing cached."""
    app = KmoLedger(database_url)
    yield app
    app.close()


def held(ledger: KmoLedger, application_id: str) -> dict[str, str]:
    return ledger.application_summary(ENTERPRISE, application_id)["held"]


def order(ledger: KmoLedger, application_id: str, amount: str) -> Any:
    return ledger.handle(ENTERPRISE, application_id, c.OrderPayout(amount=parse_euro(amount)), BACK_OFFICE)


def not_used_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG and "not used" in r.getMessage()]


def test_an_untouched_snapshot_starts_the_wallet_and_equals_the_fold(funded, cold, caplog):
    caplog.set_level(logging.INFO, LOG)
    assert held(cold, funded) == {"own_share": "700.00", "subsidy": "300.00"}
    assert cold.get_wallet(ENTERPRISE).version == 103
    assert not_used_lines(caplog) == []


def test_a_snapshot_edited_to_hold_more_is_not_used_and_the_payout_beyond_the_real_balance_is_refused(
    funded, cold, database_url, caplog
):
    caplog.set_level(logging.INFO, LOG)
    StoredRows(database_url, "snapshots").edit(WALLET, 100, hold("70000.00", "30000.00", funded))
    with freeze_time("2026-04-01 10:00:00"):
        assert held(cold, funded) == {"own_share": "700.00", "subsidy": "300.00"}
        with pytest.raises(InsufficientFunds):
            order(cold, funded, "50000.00")
        assert held(cold, funded) == {"own_share": "700.00", "subsidy": "300.00"}
        assert cold.replay(ENTERPRISE, date(2026, 4, 1))["held"] == {"own_share": "700.00", "subsidy": "300.00"}
    assert "PayoutOrdered" not in [type(e).__name__ for e in cold.wallet_events(ENTERPRISE)]
    lines = not_used_lines(caplog)
    assert lines and all(f"wallet {WALLET} at version 100" in line and "digest" in line for line in lines)
    # the wallet itself works: folded from its events, it decides on the real balance
    with freeze_time("2026-04-01 10:00:00"):
        order(cold, funded, "1000.00")
    assert held(cold, funded) == {"own_share": "700.00", "subsidy": "300.00"}
    assert cold.verify_wallet(ENTERPRISE) == []


def test_a_snapshot_resealed_over_another_chain_head_is_not_used(funded, cold, database_url):
    """Its digest matches its content, but the event at its version does not have the hash it names."""
    change = hold("70000.00", "30000.00", funded)

    def reseal(snapshot: dict[str, Any]) -> None:
        change(snapshot)
        snapshot["state"]["last_hash"] = "0" * 64
        snapshot["digest"] = snapshot_digest(WALLET, 100, snapshot["topic"], snapshot["state"])

    StoredRows(database_url, "snapshots").edit(WALLET, 100, reseal)
    assert held(cold, funded) == {"own_share": "700.00", "subsidy": "300.00"}


def test_a_snapshot_taken_before_snapshots_carried_a_digest_is_not_used(funded, cold, database_url, caplog):
    """A missing digest cannot be told from a removed one, and checking the
    snapshot costs the fold that ignoring it costs: the wallet is folded."""
    caplog.set_level(logging.INFO, LOG)
    StoredRows(database_url, "snapshots").edit(WALLET, 100, lambda snapshot: snapshot.pop("digest"))
    assert held(cold, funded) == {"own_share": "700.00", "subsidy": "300.00"}
    assert any("taken before snapshots carried a digest" in line for line in not_used_lines(caplog))


def test_the_api_shows_the_real_balance_and_refuses_the_payout_an_edited_snapshot_would_allow(
    sqlite_url: str, tmp_path: Path
):
    ledger = KmoLedger(sqlite_url)
    application_id = long_wallet(ledger)
    ledger.close()
    StoredRows(sqlite_url, "snapshots").edit(WALLET, 100, hold("70000.00", "30000.00", application_id))
    keys_file = write_keys(tmp_path / "api-keys.json")
    with freeze_time("2026-04-01 10:00:00"), running(sqlite_url, keys_file) as api:
        wallet = api.get(f"/wallets/{ENTERPRISE}").json()
        refused = api.act({"application_id": application_id}, "payout-orders", {"amount": "50000.00"})
    assert wallet["held"] == {"own_share": "700.00", "subsidy": "300.00"}
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_funds"


def test_a_claim_changed_in_the_store_is_not_used(ledger, database_url):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 16))
    reference = story.application(application_id)["payment_reference"]
    claim = reference_id(compact_payment_reference(reference) or "")
    assert ledger.payment_reference_owner(reference).application_id == application_id
    stored = StoredRows(database_url, "events")
    original = stored.state(claim, 1)
    stored.edit(claim, 1, lambda content: content.update(application_id="another-application"))
    with pytest.raises(RecordUnverifiable):
        ledger.payment_reference_owner(reference)

    def forged(content: dict[str, Any]) -> None:  # the claim's digest removed as well: its wallet still says no
        content.update(application_id="another-application")
        content.pop("digest")

    stored.update(claim, 1, original)
    stored.edit(claim, 1, forged)
    with pytest.raises(RecordUnverifiable):
        ledger.payment_reference_owner(reference)
