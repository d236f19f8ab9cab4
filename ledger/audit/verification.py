"""Verification: a wallet's hash chain and the money invariants of RULES.md
section 6, checked from the stored rows themselves, on the wallet as an auditor
replays it on every business date of its history.

A finding names the event, the wallet, the application, the date and the
invariant broken, e.g. ``event 5 (ApplicationLapsed): wallet 0403170701,
application 9c4e…, as of 2026-01-20: no held balance is negative:
held_own_share is -7,000.00``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any
from uuid import UUID

from ledger.audit.screen import screen
from ledger.domain import events as ev
from ledger.domain.fold import apply_event
from ledger.domain.money import format_euro
from ledger.domain.state import AT_FINANCIAL_MANAGER, WalletState

LEGS_BALANCE = "the legs of an event sum to zero"
HELD_NOT_NEGATIVE = "no held balance is negative"
WITHIN_CEILING = "subsidy granted in a year stays within its ceiling"
PAYOUT_WITHIN_PROJECT = "a payout never exceeds what is held for the application"
MONEY_AT_MANAGER = "money at the financial manager equals its held and due balances"
DATES_IN_ORDER = "an application's events never go back in business date"
APPLIES = "every stored event applies to the wallet"
_AS_OF = re.compile(r", as of \d{4}-\d{2}-\d{2}")


def check_chain(rows: Iterable[tuple[int, str, dict[str, Any]]], originator_id: UUID) -> list[str]:
    """Each row is (version, event type, stored state). Names every changed,
    missing or reordered event."""
    problems: list[str] = []
    expected_version, previous_hash, wallet = 1, "", str(originator_id)
    for version, type_name, state in rows:
        if version != expected_version:
            problems.append(f"event {expected_version} is missing (the next stored is {version})")
        content = dict(state)
        content.pop("hash", None)
        content.update(originator_id=wallet, originator_version=version, type=type_name)
        if ev.chain_hash(content) != state.get("hash"):
            problems.append(f"event {version} ({type_name}) was changed: its hash does not match its content")
        if state.get("previous_hash") != previous_hash:
            problems.append(
                f"event {version} ({type_name}) does not follow event {version - 1}: "
                "the chain is broken (an event missing, reordered or changed)"
            )
        previous_hash = state.get("hash", "")
        expected_version = version + 1
    return problems


def _finding(event: ev.WalletEvent, wallet: str, application: str | None, on: date, invariant: str, detail: str) -> str:
    where = f"event {event.originator_version} ({type(event).__name__}): wallet {wallet}"
    if application:
        where += f", application {application}"
    return f"{where}, as of {on}: {invariant}: {detail}"


def dates_out_of_order(events: Sequence[ev.WalletEvent], wallet: str) -> list[str]:
    """Every event dated before an earlier-stored event of its own application."""
    latest: dict[str, tuple[date, int]] = {}
    problems = []
    for event in events:
        application_id = getattr(event, "application_id", None)
        if application_id is None:
            continue
        before = latest.get(application_id)
        if before is not None and event.business_date < before[0]:
            problems.append(
                _finding(
                    event,
                    wallet,
                    application_id,
                    event.business_date,
                    DATES_IN_ORDER,
                    f"dated {event.business_date}, after event {before[1]} dated {before[0]}",
                )
            )
        else:
            latest[application_id] = (event.business_date, event.originator_version)
    return problems


class _Checker:
    """Folds events and checks the invariants after each, for the applications
    (and their years' ceilings) the event touched."""

    def __init__(self, wallet: str):
        self.wallet = wallet
        self.state: WalletState | None = None
        self.outside: dict[str, int] = defaultdict(int)
        self.problems: list[str] = []

    def step(self, event: ev.WalletEvent, on: date, check_legs: bool = True) -> bool:
        try:
            self.state = apply_event(self.state, event)
        except Exception as error:  # a stored event that cannot apply is itself a finding
            self.problems.append(
                _finding(
                    event,
                    self.wallet,
                    getattr(event, "application_id", None),
                    on,
                    APPLIES,
                    f"it cannot be applied: {error!r}",
                )
            )
            return False
        legs = getattr(event, "legs", ())
        application_id: str | None = getattr(event, "application_id", None)
        if check_legs and legs and sum(leg.amount for leg in legs) != 0:
            self.problems.append(_finding(event, self.wallet, application_id, on, LEGS_BALANCE, "they do not"))
        application = self.state.applications.get(application_id) if application_id else None
        if application_id is None or application is None:
            return True
        for leg in legs:
            if leg.account not in AT_FINANCIAL_MANAGER:
                self.outside[application_id] += leg.amount
        found = []
        balances = application.balances
        held = [(account, balances.get(account, 0)) for account in AT_FINANCIAL_MANAGER]
        for account, amount in held:
            if amount < 0:
                found.append((HELD_NOT_NEGATIVE, f"{account} is {format_euro(amount)}"))
        if application.paid_out > application.project_amount:
            found.append(
                (
                    PAYOUT_WITHIN_PROJECT,
                    f"{format_euro(application.paid_out)} paid out of a project of "
                    f"{format_euro(application.project_amount)}",
                )
            )
        at_manager = sum(amount for _account, amount in held)
        moved_in = -self.outside[application_id]
        if at_manager != moved_in:
            found.append(
                (MONEY_AT_MANAGER, f"{format_euro(at_manager)} held and due, {format_euro(moved_in)} moved in")
            )
        for ceiling in self.state.ceilings.values():
            if ceiling.claimed > ceiling.ceiling and ceiling.year == application.year:
                found.append(
                    (
                        WITHIN_CEILING,
                        f"the {ceiling.year} {ceiling.key} ceiling of "
                        f"{format_euro(ceiling.ceiling)} has {format_euro(ceiling.claimed)} granted",
                    )
                )
        if found:
            self.problems += [_finding(event, self.wallet, application_id, on, what, detail) for what, detail in found]
        return True


def check_invariants(events: Sequence[ev.WalletEvent]) -> list[str]:
    """The invariants of section 6 on the wallet as replayed on every business
    date of its history (what ``replay --as-of`` shows), and no application's
    events going back in business date.

    When every application's events keep their date order, the wallet as of a
    date is the fold of the events sorted by business date (stable: stored order
    within a day) up to that date, so one sorted fold checked after every event
    covers every date. Otherwise each date is replayed as an auditor would: the
    stored events up to that date, in stored order."""
    if not events:
        return []
    wallet = getattr(events[0], "enterprise_number", None) or str(events[0].originator_id)
    problems = dates_out_of_order(events, wallet)
    if not problems:
        checker = _Checker(wallet)
        for event in sorted(events, key=lambda e: e.business_date):
            if not checker.step(event, event.business_date):
                break
        return checker.problems
    seen: set[str] = set()
    for on in sorted({e.business_date for e in events}):
        checker = _Checker(wallet)
        for event in events:
            if event.business_date <= on and not checker.step(event, on, check_legs=False):
                break
        for problem in checker.problems:
            key = _AS_OF.sub("", problem)
            if key not in seen:  # the same finding on later dates is named once, at its first date
                seen.add(key)
                problems.append(problem)
    for event in events:
        if sum(leg.amount for leg in getattr(event, "legs", ())) != 0:
            problems.append(
                _finding(
                    event,
                    wallet,
                    getattr(event, "application_id", None),
                    event.business_date,
                    LEGS_BALANCE,
                    "they do not",
                )
            )
    return problems


def verify_rows(aggregate_id: UUID, rows: list[tuple[int, str, dict[str, Any]]]) -> list[str]:
    """A wallet's stored rows checked: the chain, then (on a history without holes)
    every invariant on every business date."""
    if screened(aggregate_id, rows):
        return []
    return check_rows(aggregate_id, rows)[0]


def screened(aggregate_id: UUID, rows: list[tuple[int, str, dict[str, Any]]]) -> bool:
    """Whether the wallet's chain holds and :func:`~ledger.audit.screen.screen`
    vouches for the rest: then :func:`check_rows` would find nothing, and need not run."""
    return not check_chain(rows, aggregate_id) and screen(rows)


def check_rows(
    aggregate_id: UUID, rows: list[tuple[int, str, dict[str, Any]]]
) -> tuple[list[str], list[ev.WalletEvent] | None]:
    """:func:`verify_rows`'s findings, and the events read from the rows in stored
    order (None when the history has a hole or a row cannot be read: nothing can
    be folded from it)."""
    problems = check_chain(rows, aggregate_id)
    if any("missing" in p for p in problems):
        return problems, None  # the invariants cannot be judged on a history with a hole
    events = []
    for version, type_name, state in rows:
        try:
            events.append(
                ev.EVENT_TYPES[type_name].model_validate(
                    state | {"originator_id": aggregate_id, "originator_version": version}
                )
            )
        except Exception as error:  # an unreadable stored event is itself a finding
            problems.append(f"event {version} ({type_name}) cannot be read: {str(error).splitlines()[0]}")
            return problems, None
    return problems + check_invariants(events), events
