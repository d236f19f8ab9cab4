"""Racing commands on one wallet never act on stale state."""

from __future__ import annotations

import threading
from datetime import date

from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.errors import CeilingExceeded
from tests.conftest import BACK_OFFICE, ENTERPRISE, sme, training


def race(count: int, action) -> list:
    barrier = threading.Barrier(count)
    outcomes: list = []

    def run():
        barrier.wait()
        try:
            outcomes.append(action())
        except Exception as error:  # collected and asserted on below
            outcomes.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_applications_racing_for_the_last_of_a_ceiling_never_both_get_it(database_url):
    with freeze_time("2026-03-02 09:00:00"):
        # two ledger instances = two processes sharing one store
        first, second = KmoLedger(database_url), KmoLedger(database_url)
        first.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Race", sme=sme()), BACK_OFFICE)
        command = c.SubmitApplication(**training(date(2026, 3, 20), fee="20000.00"))  # 30% = 6,000 of 7,500
        ledgers = iter([first, second, first, second, first, second, first, second])
        lock = threading.Lock()

        def submit():
            with lock:
                ledger = next(ledgers)
            return ledger.submit_application(ENTERPRISE, command, BACK_OFFICE)

        outcomes = race(8, submit)
        granted = [o for o in outcomes if isinstance(o, tuple)]
        assert all(isinstance(o, (tuple, CeilingExceeded)) for o in outcomes), outcomes
        wallet = KmoLedger(database_url).wallet_summary(ENTERPRISE)
        subsidies = sorted(a["subsidy"] for a in wallet["applications"])
        assert len(granted) == 2 and subsidies == ["1500.00", "6000.00"]
        assert wallet["ceilings"][0]["remaining"] == "0.00"
        assert first.verify_wallet(ENTERPRISE) == []
        first.close()
        second.close()
