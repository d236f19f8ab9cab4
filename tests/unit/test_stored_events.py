"""What is stored for an event is the event itself: every field, read back equal."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.identifiers import wallet_id
from ledger.domain.wallet import Wallet
from tests.conftest import BACK_OFFICE, ENTERPRISE, sme


def new_wallet(now: datetime) -> Wallet:
    """A new wallet of a small bakery, not yet saved."""
    command = c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij", sme=sme())
    return Wallet.open(wallet_id(ENTERPRISE), command, BACK_OFFICE, now)


def test_a_stored_event_holds_every_field_and_reads_back_equal():
    ledger = KmoLedger("memory://")
    try:
        now = datetime(2026, 3, 2, 9, tzinfo=UTC)
        wallet = new_wallet(now)
        wallet.file_sme_figures(c.FileSmeFigures(year=2025, sme=sme()), BACK_OFFICE, now)
        for event in wallet.pending_events:
            stored = ledger.mapper.to_stored_event(event)
            assert orjson.loads(stored.state) == event.model_dump(
                mode="json", exclude={"originator_id", "originator_version"}
            )
            assert ledger.mapper.to_domain_event(stored) == event
    finally:
        ledger.close()


def test_stored_topics_keep_the_names_rows_were_first_stored_under(sqlite_url):
    from eventsourcing.persistence import StoredEvent

    ledger = KmoLedger(sqlite_url)
    try:
        now = datetime(2026, 3, 2, 9, tzinfo=UTC)
        wallet = new_wallet(now)
        [opened] = wallet.pending_events
        assert ledger.mapper.to_stored_event(opened).topic == "ledger.events:WalletOpened"
        # a row stored before the domain moved to ledger/domain/ still reads back
        old_row = StoredEvent(
            originator_id=opened.originator_id,
            originator_version=1,
            topic="ledger.events:WalletOpened",
            state=orjson.dumps(opened.model_dump(mode="json", exclude={"originator_id", "originator_version"})),
        )
        ledger.recorder.insert_events([old_row])
        assert ledger.get_wallet(ENTERPRISE).state.name == "Bakkerij"
    finally:
        ledger.close()
