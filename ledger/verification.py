"""Verification: a wallet's hash chain and the money invariants of RULES.md
section 6, checked from the stored rows themselves."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable
from uuid import UUID

from ledger import events as ev
from ledger.money import format_euro
from ledger.state import AT_FINANCIAL_MANAGER


def check_chain(rows: Iterable[tuple[int, str, dict[str, Any]]], originator_id: UUID) -> list[str]:
    """Each row is (version, event type, stored state). Names every changed,
    missing or reordered event."""
    problems: list[str] = []
    expected_version, previous_hash = 1, ""
    for version, type_name, state in rows:
        if version != expected_version:
            problems.append(f"event {expected_version} is missing (the next stored is {version})")
        content = {k: v for k, v in state.items() if k != "hash"}
        content.update(originator_id=str(originator_id), originator_version=version, type=type_name)
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


def check_invariants(events: Iterable[ev.WalletEvent]) -> list[str]:
    """Fold the events and check after every one: legs sum to zero, no balance at
    the financial manager negative, ceilings held, payouts within the project,
    money at the financial manager equal to what left the outside accounts."""
    problems: list[str] = []
    wallet = None
    outside: dict[str, int] = defaultdict(int)
    for event in events:
        where = f"event {event.originator_version} ({type(event).__name__})"
        try:
            wallet = event.mutate(wallet)
        except Exception as error:  # a stored event that cannot apply is itself a finding
            problems.append(f"{where} cannot be applied: {error}")
            return problems
        legs = getattr(event, "legs", ())
        if sum(leg.amount for leg in legs) != 0:
            problems.append(f"{where}: its legs do not sum to zero")
        for leg in legs:
            if leg.account not in AT_FINANCIAL_MANAGER:
                outside[event.application_id] += leg.amount
        state = wallet.state
        touched = getattr(event, "application_id", None)
        applications = [state.applications[touched]] if touched in state.applications else []
        for application in applications:
            for account in AT_FINANCIAL_MANAGER:
                if application.held(account) < 0:
                    problems.append(
                        f"{where}: {account} of application {application.application_id} is negative"
                    )
            if application.paid_out > application.project_amount:
                problems.append(f"{where}: application {application.application_id} paid out more than its project")
            at_manager = sum(application.held(a) for a in AT_FINANCIAL_MANAGER)
            if at_manager != -outside[application.application_id]:
                problems.append(
                    f"{where}: money at the financial manager {format_euro(at_manager)} differs from "
                    f"the money moved in {format_euro(-outside[application.application_id])}"
                )
        for ceiling in (c for a in applications for c in state.ceilings.values() if c.year == a.year):
            if ceiling.claimed > ceiling.ceiling:
                problems.append(f"{where}: the {ceiling.year} {ceiling.key} ceiling is exceeded")
    return problems


def verify_rows(aggregate_id: UUID, rows: list[tuple[int, str, dict[str, Any]]]) -> list[str]:
    """A wallet's stored rows checked: the chain, then (on a history without holes)
    every invariant after every event."""
    problems = check_chain(rows, aggregate_id)
    if any("missing" in p for p in problems):
        return problems  # the invariants cannot be judged on a history with a hole
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
            return problems
    return problems + check_invariants(events)
