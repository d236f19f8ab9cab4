"""The screen (verification's fast path) never vouches for a wallet the full
check finds anything in: every field of every stored event of a sound wallet
is changed in turn (removed, emptied, of another type, another value), the
chain sealed anew so only the content is judged, and each change the full
check names must make the screen refuse. A sound wallet of every screened
event type is vouched for, so verify takes the fast path on it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.audit.screen import SCREENED, screen
from ledger.audit.verification import check_rows, verify_rows
from ledger.domain import commands as c
from ledger.domain import events as ev
from ledger.domain.identifiers import wallet_id
from tests.conftest import BACK_OFFICE, ENTERPRISE, PROVIDER_ACTOR, sme
from tests.scenarios.helpers import Story

Rows = list[tuple[int, str, dict[str, Any]]]


@pytest.fixture(scope="module")
def sound_rows(tmp_path_factory) -> Rows:
    """A wallet whose life has every event type the screen folds."""
    ledger = KmoLedger(f"sqlite:///{tmp_path_factory.mktemp('screen') / 'ledger.db'}")
    try:
        with freeze_time("2026-03-02 09:00:00"):
            story = Story(ledger)
            ledger.change_contact_email(ENTERPRISE, c.ChangeContactEmail(contact_email="boek@peeters.be"), BACK_OFFICE)
            ledger.file_sme_figures(ENTERPRISE, c.FileSmeFigures(year=2025, sme=sme()), BACK_OFFICE)
            paid = story.submit(date(2026, 3, 20), fee="2000.00")
            refused = story.submit(date(2026, 3, 20), fee="2000.00")
            lapsing = story.submit(date(2026, 3, 21), fee="2000.00")
            stopped = story.submit(date(2026, 3, 22), fee="2000.00")
        with freeze_time("2026-03-04 09:00:00"):
            story.fund(paid, date(2026, 3, 4))
            ledger.handle(ENTERPRISE, refused, c.RefuseApplication(reason="geen plaats meer"), PROVIDER_ACTOR)
            story.confirm(lapsing)
            story.confirm(stopped)
            story.deposit(stopped, date(2026, 3, 4))
        with freeze_time("2026-03-25 09:00:00"):
            story.pay(paid, "400.00", date(2026, 3, 25))
            story.order(paid, "100.00")
            ledger.handle(ENTERPRISE, paid, c.CompleteService(completed_on=date(2026, 3, 24)), BACK_OFFICE)
            story.stop(stopped, "provider_cancelled")
        with freeze_time("2026-05-04 09:00:00"):
            ledger.run_deadlines()  # the unfunded application's deposit deadline has passed
        rows = ledger.stored_rows(wallet_id(ENTERPRISE))
    finally:
        ledger.close()
    kinds = {type_name for _version, type_name, _state in rows}
    assert {"ApplicationLapsed", "ApplicationRefused", "ProjectStopped", "ServiceCompleted"} <= kinds
    return [row for row in rows if row[1] in SCREENED]  # the stop's refund is checked the full way


def sealed(rows: Rows) -> Rows:
    """The rows with their chain sealed anew over their content, in the order given."""
    aggregate_id, previous, resealed = wallet_id(ENTERPRISE), "", []
    for version, (_old, type_name, state) in enumerate(rows, start=1):
        content = {k: v for k, v in state.items() if k != "hash"} | {"previous_hash": previous}
        digest = ev.chain_hash(
            content | {"originator_id": str(aggregate_id), "originator_version": version, "type": type_name}
        )
        resealed.append((version, type_name, content | {"hash": digest}))
        previous = digest
    return resealed


def full_check(rows: Rows) -> list[str]:
    return check_rows(wallet_id(ENTERPRISE), rows)[0]


OTHER_VALUES: tuple[Any, ...] = (None, "", "x", 0, 1, -1, True, 1.5, [], {}, "2026-02-30", "12.5", "-1.00", "0.01")


def changes(value: Any) -> Iterator[Any]:
    """Other values for a field: every one of :data:`OTHER_VALUES`, and near misses of its own."""
    yield from OTHER_VALUES
    if isinstance(value, str):
        yield value + "0"
        yield value[:-1]
        if value[:1] != "-":
            yield "-" + value
    if isinstance(value, int) and not isinstance(value, bool):
        yield value + 1
        yield str(value)


def mutations(rows: Rows) -> Iterator[tuple[str, Rows]]:
    """Every row with one field (top level, or in a nested object or list) removed or changed."""
    for index, (_version, type_name, state) in enumerate(rows):
        for path, value in leaves(state):
            for other in [REMOVED, *changes(value)]:
                changed = copy.deepcopy(rows)
                if set_at(changed[index][2], path, other):
                    yield f"event {index + 1} ({type_name}) {'.'.join(map(str, path))} = {other!r}", changed


REMOVED = object()


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key not in ("hash", "previous_hash"):  # the chain's own: judged by the chain check
                yield (*path, key), inner
                yield from leaves(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield (*path, i), inner
            yield from leaves(inner, (*path, i))


def set_at(state: dict, path: tuple, value: Any) -> bool:
    *head, last = path
    for key in head:
        state = state[key]
    if value is REMOVED:
        if isinstance(state, list):
            state.pop(last)
        else:
            del state[last]
    else:
        state[last] = value
    return True


def test_a_sound_wallet_of_every_screened_type_is_vouched_for(sound_rows):
    rows = sealed(sound_rows)
    assert full_check(rows) == []
    assert screen(rows)
    assert SCREENED - {type_name for _v, type_name, _s in rows} == {"ProjectClosed"}  # a closure needs months


def test_no_change_the_full_check_names_is_vouched_for(sound_rows):
    vouched_wrongly, named = [], 0
    for change, rows in mutations(sound_rows):
        rows = sealed(rows)
        if full_check(rows):
            named += 1
            if screen(rows):
                vouched_wrongly.append(change)
    assert named > 500  # the changes reach the invariants and the reading, not only the chain
    assert vouched_wrongly == []


@pytest.mark.parametrize("order", ["swapped", "dated back", "opened twice", "submitted twice"])
def test_a_history_out_of_order_is_checked_the_full_way(sound_rows, order):
    rows = copy.deepcopy(sound_rows)
    if order == "swapped":  # an application's confirmation before its submission
        first = next(i for i, row in enumerate(rows) if row[1] == "ApplicationSubmitted")
        application_id = rows[first][2]["application_id"]
        then = next(i for i in range(first + 1, len(rows)) if rows[i][2].get("application_id") == application_id)
        rows[first], rows[then] = rows[then], rows[first]
    elif order == "dated back":
        last = next(i for i in reversed(range(len(rows))) if "application_id" in rows[i][2])
        rows[last][2]["business_date"] = "2026-03-01"
    elif order == "opened twice":
        rows.append(copy.deepcopy(rows[0]))
    else:
        submitted = next(row for row in rows if row[1] == "ApplicationSubmitted")
        rows.append(copy.deepcopy(submitted))
    rows = sealed(rows)
    assert full_check(rows)
    assert not screen(rows)
    assert verify_rows(wallet_id(ENTERPRISE), rows) == full_check(rows)


def test_verify_rows_names_what_the_full_check_names(sound_rows):
    """``verify_rows`` (what ``verify_wallet`` and the API answer) takes the screen's
    word only when it vouches: a changed amount is still named in full."""
    rows = copy.deepcopy(sound_rows)
    deposit = next(row for row in rows if row[1] == "OwnShareDeposited")
    deposit[2]["legs"][0]["amount"] = "-1.00"
    rows = sealed(rows)
    problems = verify_rows(UUID(str(wallet_id(ENTERPRISE))), rows)
    assert problems == full_check(rows) and problems


def test_a_ledger_in_memory_is_verified_whole(tmp_path):
    """The in-memory store has no table to ask which wallets have snapshots:
    every wallet is then checked with its snapshots read, as before."""
    from ledger.audit.ledger_verification import verify_ledger

    ledger = KmoLedger("memory://")
    try:
        with freeze_time("2026-03-02 09:00:00"):
            Story(ledger).submit(date(2026, 3, 20), fee="2000.00")
        report = verify_ledger(ledger)
    finally:
        ledger.close()
    assert report["ok"] and report["wallets"] == 1 and report["events"] == 2
