"""A long wallet loads from its snapshot and equals a fold of every event."""

from __future__ import annotations

from datetime import date

from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.audit.replay import replay_events
from ledger.domain import commands as c
from ledger.domain.identifiers import wallet_id
from tests.conftest import BACK_OFFICE, ENTERPRISE, sme


def test_a_wallet_with_hundreds_of_events_loads_from_a_snapshot_equal_to_a_full_fold(sqlite_url):
    with freeze_time("2026-03-02 09:00:00"):
        ledger = KmoLedger(sqlite_url)
        ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Long", sme=sme()), BACK_OFFICE)
        for year in range(250):
            ledger.file_sme_figures(
                ENTERPRISE, c.FileSmeFigures(year=2000 + year % 26, sme=sme(fte=10 + year % 5)), BACK_OFFICE
            )
        ledger.close()
        fresh = KmoLedger(sqlite_url)
        snapshots = list(fresh.snapshots.get(wallet_id(ENTERPRISE)))
        assert [s.originator_version for s in snapshots] == [100, 200]
        loaded = fresh.get_wallet(ENTERPRISE)
        folded = replay_events(fresh.wallet_events(ENTERPRISE))
        assert loaded.version == 251 and loaded.state == folded
        fresh.file_sme_figures(ENTERPRISE, c.FileSmeFigures(year=2026, sme=sme()), BACK_OFFICE)
        assert fresh.verify_wallet(ENTERPRISE) == []
        fresh.close()


def test_a_replay_as_of_a_date_from_a_snapshot_equals_a_fold_of_the_events_up_to_that_date(sqlite_url):
    from datetime import timedelta

    from ledger.summaries import wallet_summary

    ledger = KmoLedger(sqlite_url)
    day = date(2026, 1, 5)
    with freeze_time(day):
        ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Long", sme=sme()), BACK_OFFICE)
    for n in range(230):
        with freeze_time(day + timedelta(days=n // 10)):
            ledger.file_sme_figures(ENTERPRISE, c.FileSmeFigures(year=2025, sme=sme(fte=10 + n % 3)), BACK_OFFICE)
    events = ledger.wallet_events(ENTERPRISE)
    for as_of in (
        day,
        day + timedelta(days=9),
        day + timedelta(days=10),
        day + timedelta(days=15),
        day + timedelta(days=30),
    ):
        included = [e for e in events if e.business_date <= as_of]
        expected = wallet_summary(replay_events(included), included[-1].originator_version, as_of)
        assert ledger.replay(ENTERPRISE, as_of) == expected | {"as_of": as_of.isoformat()}
    ledger.close()
