"""``kmo-ledger verify``: a changed, missing or reordered stored event is named
by wallet and sequence, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from uuid import UUID

import orjson
import pytest
from freezegun import freeze_time

from ledger.build import ledger_at
from ledger.domain import commands as c
from ledger.domain.commands import FileSmeFigures
from ledger.domain.events import chain_hash
from ledger.domain.identifiers import compact_payment_reference, wallet_id
from ledger.idempotency import Idempotency
from ledger.storage.records import idempotency_id, reference_id
from ledger.storage.snapshots import snapshot_digest
from scripts import export, verify
from tests.conftest import BACK_OFFICE, ENTERPRISE, OTHER_ENTERPRISE, sme
from tests.scenarios.helpers import Story
from tests.scenarios.test_trusted_state import StoredRows, hold, long_wallet
from tests.tools.helpers import StoredEvents, Tools

WALLET = wallet_id(ENTERPRISE)
OTHER_WALLET = wallet_id(OTHER_ENTERPRISE)


@pytest.fixture
def tools(monkeypatch, capsys, database_url):
    return Tools(monkeypatch, capsys, database_url)


@pytest.fixture
def two_wallets(ledger):
    """Events 1..7 of the first wallet: opened, submitted, confirmed, deposited
    (4), topped up (5), payout ordered (6) and executed (7); a second wallet beside it."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 16))
        other = Story(ledger, OTHER_ENTERPRISE)
        other.submit(date(2026, 3, 16))
    with freeze_time("2026-03-05 10:00:00"):
        story.fund(application_id, date(2026, 3, 5))
    with freeze_time("2026-04-01 10:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
    return story


def findings(tools: Tools, *args: str) -> tuple[int, dict]:
    outcome = tools.run(verify.main, *args, "--json")
    return outcome.code, json.loads(outcome.out)


def named(report: dict) -> set[tuple[str, int | None]]:
    return {(p["enterprise_number"], p["sequence"]) for p in report["problems"]}


def test_an_untouched_ledger_verifies(tools, two_wallets):
    code, report = findings(tools)
    assert code == 0 and report["ok"] and report["problems"] == []
    assert (report["wallets"], report["events"]) == (2, 9)
    human = tools.run(verify.main)
    assert human.code == 0 and "Verified 2 wallet(s), 9 event(s)" in human.out and "OK" in human.out


def test_a_changed_amount_in_a_stored_event_is_named(tools, two_wallets):
    stored = StoredEvents(tools.database_url)
    state = stored.state(WALLET, 4)
    assert b'"amount":"7000.00"' in state
    stored.update(WALLET, 4, state.replace(b'"amount":"7000.00"', b'"amount":"7100.00"'))
    code, report = findings(tools)
    assert code == 1 and not report["ok"]
    assert (ENTERPRISE, 4) in named(report)
    assert any("event 4 (OwnShareDeposited) was changed" in p["problem"] for p in report["problems"])
    assert {p["enterprise_number"] for p in report["problems"]} == {ENTERPRISE}
    human = tools.run(verify.main)
    assert human.code == 1 and ENTERPRISE in human.out and "FAILED" in human.out


def test_a_deleted_stored_event_is_named(tools, two_wallets):
    StoredEvents(tools.database_url).delete(WALLET, 5)
    code, report = findings(tools)
    assert code == 1
    assert any(p["sequence"] == 5 and "missing" in p["problem"] for p in report["problems"])
    assert {p["enterprise_number"] for p in report["problems"]} == {ENTERPRISE}


def test_a_deleted_submission_is_found_through_the_reference_it_claimed(tools, two_wallets):
    StoredEvents(tools.database_url).delete(OTHER_WALLET, 2)  # the other wallet's last event
    code, report = findings(tools)
    assert code == 1
    assert any(
        p["enterprise_number"] == OTHER_ENTERPRISE and "ApplicationSubmitted event is missing" in p["problem"]
        for p in report["problems"]
    )


def test_reordered_stored_events_are_named(tools, two_wallets):
    stored = StoredEvents(tools.database_url)
    third, fourth = stored.state(WALLET, 3), stored.state(WALLET, 4)
    stored.update(WALLET, 3, fourth)
    stored.update(WALLET, 4, third)
    code, report = findings(tools)
    assert code == 1 and {(ENTERPRISE, 3), (ENTERPRISE, 4)} <= named(report)


def test_a_deleted_opening_event_is_still_found(tools, two_wallets):
    StoredEvents(tools.database_url).delete(WALLET, 1)
    code, report = findings(tools)
    assert code == 1 and (ENTERPRISE, 1) in named(report)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_row_put_in_with_the_wallets_id_in_capitals_is_verified_not_a_crash(tools, two_wallets):
    """SQLite keeps whatever text a hand writes as a row's id: the wallet is still
    one wallet, checked once (the library reads it back as the same UUID)."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tools.database_url[len("sqlite:///") :])) as db, db:
        db.execute(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "SELECT upper(originator_id), originator_version, topic, state FROM stored_events "
            "WHERE originator_id = ? AND originator_version = 1",
            (WALLET.hex,),
        )
    code, report = findings(tools)
    assert code == 1 and report["wallets"] == 2
    [odd] = [p for p in report["problems"] if "put in by hand" in p["problem"]]
    assert odd["wallet_id"] == str(WALLET) and odd["sequence"] == 1
    assert repr(WALLET.hex.upper()) in odd["problem"]


def test_a_wallet_with_neither_its_opening_nor_its_application_left_is_still_verified(tools, two_wallets):
    """Every originator of a wallet event is a wallet: with events 1 to 3 deleted
    (opened, submitted, confirmed), the deposit, top-up and payouts left are still
    checked, and the missing events named in that wallet."""
    stored = StoredEvents(tools.database_url)
    for version in (1, 2, 3):
        stored.delete(WALLET, version)
    code, report = findings(tools)
    assert code == 1 and report["wallets"] == 2
    assert any(
        p["wallet_id"] == str(WALLET) and p["sequence"] == 1 and "missing" in p["problem"] for p in report["problems"]
    )


def test_one_wallet_only(tools, two_wallets):
    StoredEvents(tools.database_url).delete(WALLET, 5)
    code, report = findings(tools, "BE 0202.239.951")
    assert code == 0 and report["wallets"] == 1 and report["projections"]["checked"] is False
    code, report = findings(tools, ENTERPRISE)
    assert code == 1 and (ENTERPRISE, 5) in named(report)


def test_an_unknown_wallet_is_bad_input(tools, two_wallets):
    outcome = tools.run(verify.main, "0417497106")
    assert outcome.code == 2 and "no wallet" in outcome.err


def test_a_tail_deleted_after_an_export_is_found_against_the_archive(tools, two_wallets, tmp_path):
    assert tools.run(export.main, "--out", str(tmp_path / "archive")).code == 0
    StoredEvents(tools.database_url).delete(WALLET, 7)  # the last event: the chain itself still holds
    code, report = findings(tools, "--against", str(tmp_path / "archive"))
    assert code == 1
    assert any(p["sequence"] == 7 and "sealed it as a chain head" in p["problem"] for p in report["problems"])


def test_a_rewritten_history_with_recomputed_hashes_differs_from_its_snapshot(tools, ledger):
    """The chain alone cannot catch a forger who recomputes every hash; the
    snapshot taken every 100 events can."""
    figures = FileSmeFigures(year=2025, sme={"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"})
    with freeze_time("2026-03-02 09:00:00"):
        Story(ledger)
        for _ in range(100):
            ledger.file_sme_figures(ENTERPRISE, figures, BACK_OFFICE)
    stored = StoredEvents(tools.database_url)
    previous = orjson.loads(stored.state(WALLET, 1))["hash"]
    for version in range(2, 102):
        state = orjson.loads(stored.state(WALLET, version))
        if version == 2:
            state["figures"]["turnover"] = "9000000.00"
        state["previous_hash"] = previous
        content = {k: v for k, v in state.items() if k != "hash"}
        content.update(originator_id=str(WALLET), originator_version=version, type="SmeFiguresFiled")
        state["hash"] = previous = chain_hash(content)
        stored.update(WALLET, version, orjson.dumps(state))
    code, report = findings(tools)
    assert code == 1
    assert [p["sequence"] for p in report["problems"]] == [100]
    assert "differs from the snapshot" in report["problems"][0]["problem"]


def test_a_read_model_that_drifted_from_the_events_is_reported(tools, two_wallets, ledger):
    runner = pytest.importorskip("projections.runner")
    with runner.Projector(ledger) as projector:
        projector.catch_up()
    code, report = findings(tools)
    assert code == 0 and report["projections"]["checked"] is True
    if tools.database_url.startswith("sqlite"):
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(tools.database_url[len("sqlite:///") :])) as db, db:
            db.execute("UPDATE wallet_balances SET held_own_share = held_own_share + 1")
    else:
        import psycopg

        schema = tools.database_url.split("schema=")[1]
        with psycopg.connect(tools.database_url.split("?")[0], autocommit=True) as db:
            db.execute(f"UPDATE {schema}.wallet_balances SET held_own_share = held_own_share + 1")
    code, report = findings(tools)
    assert code == 1 and report["projections"]["differences"]
    assert all(p["problem"].startswith("projections: ") for p in report["problems"])


def enterprise_number(n: int) -> str:
    """The ``n``-th valid enterprise number of a made-up series (mod-97 check digits)."""
    base = f"0{n:07d}"
    return f"{base}{97 - int(base) % 97:02d}"


@pytest.fixture
def digests_only(monkeypatch):
    """The views must agree with verify's fold of the rows it read by their digests
    alone: the row-for-row comparison, and any fold of the comparison's own, fail it."""
    from projections import consistency, digest

    def refused(*_args, **_kwargs):
        raise AssertionError("the comparison reached the exact comparison or folded the log itself")

    monkeypatch.setattr(consistency, "exact_differences", refused)
    monkeypatch.setattr(digest, "fold_digests", refused)
    monkeypatch.setattr(digest, "fold_task", refused)


@pytest.mark.parametrize("where", ["this process", "worker processes"])
def test_verify_folds_the_rows_it_read_and_views_agree_by_digests(tools, ledger, digests_only, monkeypatch, where):
    """Verify reads each wallet's rows once: its fresh fold of the read models is made
    of them, chunk by chunk, in whichever process checks the chunk."""
    from ledger.audit import ledger_verification
    from projections import Projector

    with freeze_time("2026-03-02 09:00:00"):
        for n in range(6):
            Story(ledger, enterprise_number(n + 1)).submit(date(2026, 3, 16))
    with Projector(ledger) as projector:
        projector.catch_up()
    if where == "worker processes":
        monkeypatch.setattr(ledger_verification, "PARALLEL_FROM", 1)
        monkeypatch.setattr(ledger_verification, "CHUNK_WALLETS", 1)
    code, report = findings(tools)
    assert code == 0, report["problems"]
    assert report["projections"] == {"checked": True, "differences": []}
    assert (report["wallets"], report["events"]) == (6, 12)


@pytest.mark.parametrize("where", ["this process", "worker processes"])
def test_a_drifted_view_is_named_when_verify_folds_the_rows_it_read(tools, two_wallets, ledger, monkeypatch, where):
    from ledger.audit import ledger_verification
    from projections import Projector

    with Projector(ledger) as projector:
        projector.catch_up()
        with projector.target.transaction():
            projector.target.execute(
                "UPDATE audit_trail SET actor_role = 'provider' WHERE sequence = 2 AND enterprise_number = ?",
                (ENTERPRISE,),
            )
    if where == "worker processes":
        monkeypatch.setattr(ledger_verification, "PARALLEL_FROM", 1)
        monkeypatch.setattr(ledger_verification, "CHUNK_WALLETS", 1)
    code, report = findings(tools)
    assert code == 1
    assert report["projections"]["differences"] == [
        f"audit_trail: row ('{ENTERPRISE}', 2) differs: actor_role 'provider' (fresh fold: 'back-office')"
    ]


# ---------------------------------------------------------------- stored state beside the events


def sealed_answer(ledger, key: str = "figures-1") -> UUID:
    """File SME figures with an Idempotency-Key: its first answer is stored as a record."""
    figures = FileSmeFigures(year=2025, sme={"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"})
    answer = Idempotency("bo-test", key, "fingerprint", lambda wallet: (200, {"version": wallet.version}))
    with freeze_time("2026-03-02 09:00:00"):
        ledger.file_sme_figures(ENTERPRISE, figures, BACK_OFFICE, idempotency=answer)
    return idempotency_id("bo-test", key)


def test_an_edited_snapshot_is_named_by_wallet_and_version(tools, ledger):
    application_id = long_wallet(ledger)
    StoredRows(tools.database_url, "snapshots").edit(WALLET, 100, hold("70000.00", "30000.00", application_id))
    code, report = findings(tools)
    assert code == 1 and named(report) == {(ENTERPRISE, 100)}
    (problem,) = report["problems"]
    assert "the snapshot taken at version 100 differs from a fold of events 1 to 100" in problem["problem"]
    assert '"70000.00" in the snapshot, "700.00" folded' in problem["problem"]
    human = tools.run(verify.main)
    assert human.code == 1 and ENTERPRISE in human.out and "snapshot" in human.out


def test_every_snapshot_is_compared_with_a_fold_not_only_the_latest(tools, ledger):
    """A forger who also recomputes the digest passes the cheap check of a load; not the fold."""
    application_id = long_wallet(ledger, events=205)
    change = hold("70000.00", "30000.00", application_id)

    def forged(snapshot: dict) -> None:
        change(snapshot)
        snapshot["digest"] = snapshot_digest(WALLET, 100, snapshot["topic"], snapshot["state"])

    StoredRows(tools.database_url, "snapshots").edit(WALLET, 100, forged)
    code, report = findings(tools)
    assert code == 1 and named(report) == {(ENTERPRISE, 100)}
    assert "differs from a fold" in report["problems"][0]["problem"]


def test_a_snapshot_whose_digest_alone_was_changed_is_named(tools, ledger):
    long_wallet(ledger)
    StoredRows(tools.database_url, "snapshots").edit(WALLET, 100, lambda snapshot: snapshot.update(digest="0" * 64))
    code, report = findings(tools)
    assert code == 1 and named(report) == {(ENTERPRISE, 100)}
    assert "its digest does not match its content" in report["problems"][0]["problem"]


def test_a_snapshot_without_a_digest_that_equals_the_fold_is_no_finding(tools, ledger):
    long_wallet(ledger)
    StoredRows(tools.database_url, "snapshots").edit(WALLET, 100, lambda snapshot: snapshot.pop("digest"))
    code, report = findings(tools)
    assert code == 0 and report["problems"] == []


def test_a_flipped_bit_in_a_stored_idempotency_answer_is_named(tools, two_wallets, ledger):
    answer = sealed_answer(ledger)
    stored = StoredEvents(tools.database_url)
    state = stored.state(answer, 1)
    assert b'"body":{"version":8}' in state
    stored.update(answer, 1, state.replace(b'"version":8', b'"version":0'))  # "8" is 0x38, "0" is 0x30
    code, report = findings(tools)
    assert code == 1 and report["records"]["answers"] == 1
    (problem,) = report["problems"]
    assert str(answer) in problem["problem"] and "'figures-1'" in problem["problem"]
    assert "its digest does not match its content" in problem["problem"]


def test_an_answer_stored_before_digests_is_counted_and_one_whose_digest_was_removed_is_named(
    tools, two_wallets, ledger
):
    """Answers stored before digests existed come first in the log; one without
    a digest after a sealed one had it removed."""
    older, _sealed, newer = (sealed_answer(ledger, f"figures-{n}") for n in range(3))
    stored = StoredEvents(tools.database_url)

    def unseal(answer: UUID) -> None:
        content = orjson.loads(stored.state(answer, 1))
        stored.update(answer, 1, orjson.dumps({k: v for k, v in content.items() if k != "digest"}))

    unseal(older)
    code, report = findings(tools)
    assert code == 0 and report["records"]["answers_without_digest"] == 1
    unseal(newer)
    code, report = findings(tools)
    assert code == 1 and [str(newer) in p["problem"] for p in report["problems"]] == [True]
    assert "its digest was removed" in report["problems"][0]["problem"]


def test_a_payment_reference_claim_changed_in_the_store_is_named(tools, two_wallets, ledger):
    application_id = next(iter(ledger.get_wallet(ENTERPRISE).state.applications))
    reference = ledger.application_summary(ENTERPRISE, application_id)["payment_reference"]
    claim = reference_id(compact_payment_reference(reference) or "")
    stored = StoredEvents(tools.database_url)
    original = orjson.loads(stored.state(claim, 1))
    stored.update(claim, 1, orjson.dumps(original | {"enterprise_number": OTHER_ENTERPRISE}))
    code, report = findings(tools)
    assert code == 1 and any(str(claim) in p["problem"] and "digest" in p["problem"] for p in report["problems"])
    # stored before claims carried a digest, the claim is still checked against its submission
    forged = {k: v for k, v in original.items() if k != "digest"} | {"enterprise_number": OTHER_ENTERPRISE}
    stored.update(claim, 1, orjson.dumps(forged))
    code, report = findings(tools)
    assert code == 1 and any("the claim was changed" in p["problem"] for p in report["problems"])
    stored.update(claim, 1, orjson.dumps({k: v for k, v in original.items() if k != "digest"}))
    code, report = findings(tools)
    assert code == 0 and report["records"]["claims"] == 2


@pytest.mark.postgres
def test_verify_names_the_notification_the_read_models_cannot_apply(monkeypatch, capsys, postgres_url):
    """A NUL in a name recorded before the text rule: PostgreSQL's text columns
    cannot hold it, so the read models stop there. verify says where and why."""
    ledger = ledger_at(postgres_url)
    try:
        with freeze_time("2026-03-02 09:00:00"):
            Story(ledger, OTHER_ENTERPRISE).submit(date(2026, 3, 16))
            opening = c.OpenWallet(enterprise_number=ENTERPRISE, name="x", sme=sme()).model_copy(
                update={"name": "Bakkerij\u0000Peeters"}
            )
            ledger.open_wallet(opening, BACK_OFFICE)  # as it could be recorded before the rule
        stuck_at = ledger.recorder.max_notification_id()
    finally:
        ledger.close()

    code, report = findings(Tools(monkeypatch, capsys, postgres_url))

    assert code == 1 and not report["ok"]
    problems = [p["problem"] for p in report["problems"]]
    assert any(
        f"cannot apply notification {stuck_at} (WalletOpened) of {stuck_at}" in problem and "NUL" in problem
        for problem in problems
    ), problems
