"""Verification sees what an auditor sees: bad events written straight into a
store (sealed into the chain, so only the invariants can catch them) are named
with the wallet, the application, the date and the invariant they break."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

import pytest
from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.audit import verification as v
from ledger.domain import events as ev
from ledger.domain.identifiers import wallet_id
from ledger.domain.state import Leg
from tests.conftest import ENTERPRISE
from tests.scenarios.helpers import Story

FORGER = ev.Actor(key_id="forger", role="back-office")


def forge(ledger: KmoLedger, event_class: type[ev.WalletEvent], on: date, **fields) -> ev.WalletEvent:
    """Append a sealed event to the wallet's stored chain, past every rule."""
    aggregate_id = wallet_id(ENTERPRISE)
    last = list(ledger.events.get(aggregate_id))[-1]
    event = event_class(
        originator_id=aggregate_id,
        originator_version=last.originator_version + 1,
        timestamp=datetime(on.year, on.month, on.day, 12, tzinfo=UTC),
        business_date=on,
        actor=FORGER,
        previous_hash=last.hash,
        **fields,
    ).sealed()
    ledger.recorder.insert_events([ledger.mapper.to_stored_event(event)])
    return event


def forge_deposit(ledger: KmoLedger, application_id: str, on: date, deposit_legs: tuple[Leg, ...]) -> None:
    """A sealed own-share deposit of 7,000.00 on ``on`` with the given legs."""
    forge(
        ledger,
        ev.OwnShareDeposited,
        on,
        application_id=application_id,
        amount=700_000,
        value_date=on,
        payment_reference="+++000/0000/00097+++",
        legs=deposit_legs,
    )


def forge_lapse(ledger: KmoLedger, application_id: str, lapse_legs: tuple[Leg, ...]) -> None:
    """A sealed lapse of the provider's answer, dated 17 March 2026, with the given legs."""
    forge(
        ledger,
        ev.ApplicationLapsed,
        date(2026, 3, 17),
        application_id=application_id,
        rule="provider_answer",
        deadline=date(2026, 3, 16),
        ceiling_freed=300_000,
        legs=lapse_legs,
    )


def legs(*moves: tuple[str, str, int]) -> tuple[Leg, ...]:
    return tuple(
        leg
        for source, target, amount in moves
        for leg in (Leg(account=source, amount=-amount), Leg(account=target, amount=amount))
    )


@pytest.fixture
def submitted(ledger: KmoLedger) -> tuple[KmoLedger, str]:
    """A wallet with one unanswered application of 10,000 (own share 7,000) of 2 March 2026."""
    with freeze_time("2026-03-02 09:00:00"):
        application_id = Story(ledger).submit(date(2026, 3, 16))
    return ledger, application_id


def test_a_lapse_dated_before_a_late_deposit_shows_the_negative_balance_of_its_date(submitted):
    ledger, application_id = submitted
    forge_deposit(ledger, application_id, date(2026, 3, 19), legs(("enterprise", "held_own_share", 700_000)))
    forge_lapse(ledger, application_id, legs(("held_own_share", "due_enterprise", 700_000)))
    problems = ledger.verify_wallet(ENTERPRISE)
    assert any(
        p.startswith(
            f"event 4 (ApplicationLapsed): wallet {ENTERPRISE}, application {application_id}, "
            f"as of 2026-03-17: {v.DATES_IN_ORDER}: dated 2026-03-17, after event 3 dated 2026-03-19"
        )
        for p in problems
    ), problems
    assert (
        f"event 4 (ApplicationLapsed): wallet {ENTERPRISE}, application {application_id}, as of 2026-03-17: "
        f"{v.HELD_NOT_NEGATIVE}: held_own_share is -7000.00" in problems
    ), problems
    # on the day of the deposit the history adds up again: named once, at its first date
    assert not any("as of 2026-03-19" in p and v.HELD_NOT_NEGATIVE in p for p in problems)


def test_legs_that_do_not_balance_are_named(submitted):
    ledger, application_id = submitted
    unbalanced = (Leg(account="enterprise", amount=-700_000), Leg(account="held_own_share", amount=710_000))
    forge_deposit(ledger, application_id, date(2026, 3, 5), unbalanced)
    problems = ledger.verify_wallet(ENTERPRISE)
    prefix = f"event 3 (OwnShareDeposited): wallet {ENTERPRISE}, application {application_id}, as of 2026-03-05: "
    assert prefix + f"{v.LEGS_BALANCE}: they do not" in problems
    assert prefix + f"{v.MONEY_AT_MANAGER}: 7100.00 held and due, 7000.00 moved in" in problems


def test_a_ceiling_exceeded_by_a_second_application_is_named(submitted):
    ledger, _first = submitted
    first = list(ledger.events.get(wallet_id(ENTERPRISE)))[1]
    second = first.model_dump() | {"application_id": "forged-second", "sequence": 2, "subsidy": 500_000}
    for envelope in (
        "originator_id",
        "originator_version",
        "timestamp",
        "business_date",
        "actor",
        "previous_hash",
        "hash",
    ):
        second.pop(envelope)
    forge(ledger, ev.ApplicationSubmitted, date(2026, 3, 3), **second)
    problems = ledger.verify_wallet(ENTERPRISE)
    assert (
        f"event 3 (ApplicationSubmitted): wallet {ENTERPRISE}, application forged-second, as of 2026-03-03: "
        f"{v.WITHIN_CEILING}: the 2026 wallet ceiling of 7500.00 has 8000.00 granted" in problems
    ), problems


def test_a_payout_beyond_what_is_held_is_named(submitted):
    ledger, application_id = submitted
    forge(
        ledger,
        ev.PayoutOrdered,
        date(2026, 3, 6),
        application_id=application_id,
        order_id="o1",
        amount=1_200_000,
        own_share_part=840_000,
        subsidy_part=360_000,
    )
    forge(
        ledger,
        ev.PayoutExecuted,
        date(2026, 3, 7),
        application_id=application_id,
        order_id="o1",
        amount=1_200_000,
        own_share_part=840_000,
        subsidy_part=360_000,
        value_date=date(2026, 3, 7),
        legs=(
            Leg(account="held_own_share", amount=-840_000),
            Leg(account="held_subsidy", amount=-360_000),
            Leg(account="provider", amount=1_200_000),
        ),
    )
    problems = ledger.verify_wallet(ENTERPRISE)
    prefix = f"event 4 (PayoutExecuted): wallet {ENTERPRISE}, application {application_id}, as of 2026-03-07: "
    assert prefix + f"{v.HELD_NOT_NEGATIVE}: held_own_share is -8400.00" in problems
    assert prefix + f"{v.PAYOUT_WITHIN_PROJECT}: 12000.00 paid out of a project of 10000.00" in problems


def test_the_command_line_verify_fails_on_a_copy_of_a_store_with_a_forged_event(tmp_path, capsys, monkeypatch):
    original = tmp_path / "ledger.db"
    ledger = KmoLedger(f"sqlite:///{original}")
    with freeze_time("2026-03-02 09:00:00"):
        application_id = Story(ledger).submit(date(2026, 3, 16))
    ledger.close()
    copy = tmp_path / "copy.db"
    shutil.copy(original, copy)
    forged = KmoLedger(f"sqlite:///{copy}")
    forge_lapse(forged, application_id, legs(("held_own_share", "due_enterprise", 1)))
    forged.close()
    from scripts.verify import main

    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", f"sqlite:///{copy}")
    assert main([ENTERPRISE, "--json"]) == 1
    out = capsys.readouterr().out
    assert f"application {application_id}, as of 2026-03-17: {v.HELD_NOT_NEGATIVE}" in out
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", f"sqlite:///{original}")
    assert main([ENTERPRISE, "--json"]) == 0
