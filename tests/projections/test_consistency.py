"""The views against a fresh fold: equal views are recognised by their digests
alone (no fresh fold written), in worker processes for a large ledger, and
any difference is still named exactly as the row-for-row comparison names it,
on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise

import orjson
import pytest

from projections import Projector, consistency, digest
from projections import schema as s
from projections.consistency import find_differences, start_comparison
from tests.projections.helpers import SCENARIOS


@pytest.fixture
def digests_only(monkeypatch):
    """The row-for-row comparison fails the test if it is reached."""

    def refused(*_args):
        raise AssertionError("the exact comparison ran: the digests did not agree")

    monkeypatch.setattr(consistency, "exact_differences", refused)


@pytest.fixture
def parallel(monkeypatch):
    """Any ledger is large enough to be compared in worker processes, in slices of two rows."""
    monkeypatch.setattr(consistency, "PARALLEL_FROM", 1)
    monkeypatch.setattr(digest, "SLICE_ROWS", 2)


@pytest.fixture(scope="module")
def pool():
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        yield executor


def caught_up(ledger, scenario: str = "full_life") -> Projector:
    projector = Projector(ledger)
    SCENARIOS[scenario](ledger, step=projector.catch_up)
    return projector


def exactly(projector: Projector) -> list[str]:
    """What the row-for-row comparison says of the views."""
    return consistency.exact_differences(projector, projector.committed_position(), [])


def tamper(projector: Projector) -> None:
    """A changed cell, a deleted row and an extra row, each in two tables."""
    with projector.target.transaction():
        projector.target.execute("UPDATE ceilings SET used = used + 1")
        projector.target.execute("UPDATE projection_applications SET paid_out = paid_out + 1")
        projector.target.execute("DELETE FROM audit_trail WHERE sequence = 3")
        projector.target.execute("DELETE FROM daily_totals WHERE account_kind = 'provider'")
        projector.target.execute(
            "INSERT INTO payout_orders SELECT 'extra-order', application_id, enterprise_number, project_number, "
            "provider, amount, ordered_on, due_by, state FROM payout_orders WHERE order_id = "
            "(SELECT min(order_id) FROM payout_orders)"
        )
        projector.target.execute(
            "INSERT INTO projection_wallets (wallet_id, enterprise_number, name, opened_on, longest_retain_until) "
            "VALUES ('0' , '0999999999', 'Extra BV', '2026-01-01', NULL)"
        )


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_views_equal_to_a_fresh_fold_agree_by_their_digests_alone(ledger, scenario, digests_only):
    projector = caught_up(ledger, scenario)
    try:
        comparison = start_comparison(ledger)
        assert comparison.differences() == []
        assert comparison.digests_agreed
    finally:
        projector.close()


def test_a_large_ledger_agrees_by_digests_made_in_worker_processes(ledger, digests_only, parallel):
    projector = caught_up(ledger, "lapse")  # two wallets
    try:
        assert find_differences(ledger) == []
    finally:
        projector.close()


def test_a_ledger_in_memory_is_compared_in_this_process(memory_ledger, digests_only, parallel):
    """No other process can open it, however large."""
    SCENARIOS["full_life"](memory_ledger)
    comparison = start_comparison(memory_ledger)
    assert comparison.pool is None and all(future is None for _part, future in comparison.parts)
    assert comparison.differences() == []
    assert comparison.digests_agreed


def test_the_digests_can_be_made_in_the_callers_pool_and_collected_later(ledger, digests_only, parallel, pool):
    projector = caught_up(ledger)
    try:
        comparison = start_comparison(ledger, executor=pool)
        assert all(future is not None for _part, future in comparison.parts)
        assert comparison.differences() == []
        assert comparison.digests_agreed
        assert find_differences(ledger, executor=pool) == []
    finally:
        projector.close()


def test_an_audit_purge_is_left_out_of_the_fresh_digests_too(ledger, digests_only):
    projector = caught_up(ledger)
    try:
        through = projector.committed_position()
        with projector.target.transaction():
            projector.target.execute(
                "DELETE FROM audit_trail WHERE business_date < ? AND notification_id <= ?", ("2026-03-03", through)
            )
            projector.target.execute(
                f"INSERT INTO {s.AUDIT_PURGES.name} (before_date, through_position, purged_at, rows_purged) "
                "VALUES (?, ?, ?, ?)",
                ("2026-03-03", through, "2040-01-01T12:00:00", 2),
            )
        assert find_differences(ledger) == []
    finally:
        projector.close()


@pytest.mark.parametrize("where", ["this process", "worker processes"])
def test_changed_deleted_and_extra_rows_are_named_as_the_row_for_row_comparison_names_them(ledger, where, request):
    if where == "worker processes":
        request.getfixturevalue("parallel")
    projector = caught_up(ledger)
    try:
        tamper(projector)
        problems = find_differences(ledger)
        assert problems == exactly(projector)
        assert any(p.startswith("ceilings: row ('0403170701', 2026, 'wallet') differs: used") for p in problems)
        assert any(p.startswith("projection_applications: row ") and "differs: paid_out" in p for p in problems)
        assert "audit_trail: row ('0403170701', 3) is missing" in problems
        assert any(p.startswith("daily_totals: row (") and "'provider') is missing" in p for p in problems)
        assert "payout_orders: row 'extra-order' is not in a fresh fold" in problems
        assert "projection_wallets: row '0' is not in a fresh fold" in problems
    finally:
        projector.close()


def test_a_change_that_keeps_every_row_count_is_still_found_by_its_digest(ledger, parallel):
    projector = caught_up(ledger)
    try:
        with projector.target.transaction():
            projector.target.execute("UPDATE audit_trail SET actor_role = 'provider' WHERE sequence = 2")
        comparison = start_comparison(ledger)
        assert comparison.differences() == [
            "audit_trail: row ('0403170701', 2) differs: actor_role 'provider' (fresh fold: 'back-office')"
        ]
        assert not comparison.digests_agreed
    finally:
        projector.close()


def test_an_infinite_number_put_where_the_fold_leaves_null_is_found(sqlite_url):
    """orjson writes an infinite float as null, alike to the fresh fold's NULL: the
    views' nullable columns are text, which SQLite gives a number put there as text."""
    from ledger.application import KmoLedger

    ledger = KmoLedger(sqlite_url)
    projector = caught_up(ledger)
    try:
        with projector.target.transaction():
            projector.target.execute("UPDATE audit_trail SET application_id = 9e999 WHERE application_id IS NULL")
        comparison = start_comparison(ledger)
        differences = comparison.differences()
        assert not comparison.digests_agreed
        assert differences and all("application_id inf (fresh fold: None)" in d for d in differences[:-1])
    finally:
        projector.close()
        ledger.close()


def digests_of_read_rows(
    ledger, until: int, purges, key: bytes, per_call: int = 1
) -> tuple[digest.Digests, digest.Daily] | None:
    """What verification's fold of the rows it read for its own checks adds up to,
    ``per_call`` wallets folded at a time (verify folds a chunk of 100 in one call),
    the wallets taken last first."""
    from ledger.audit.ledger_verification import all_wallet_ids
    from ledger.storage.wallet_rows import wallets_rows

    digests: digest.Digests = {}
    daily: digest.Daily = {}
    wallets = list(all_wallet_ids(ledger))[::-1]
    for chunk in (wallets[i : i + per_call] for i in range(0, len(wallets), per_call)):
        places: dict = {}
        rows = wallets_rows(ledger, chunk, places)
        folded = digest.fold_read_rows([(w.hex, rows[w], places[w]) for w in chunk], until, purges, key)
        if folded is None:
            return None
        digest.merge(digests, folded[0])
        digest.add_daily(daily, digest.daily_rows(folded[1]))
    return digests, daily


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_rows_verification_read_fold_to_the_fresh_folds_digests(ledger, scenario):
    """Verify folds the wallets' rows it read for its own checks instead of reading
    the log again: wallet by wallet, whatever came after the views' position
    left out, an audit purge too, the same digests as the fresh fold's."""
    projector = caught_up(ledger, scenario)
    key = os.urandom(32)
    try:
        position = projector.committed_position()
        for until, purges in [(position, []), (position - 2, [("2026-03-03", position - 4)])]:
            fresh = digest.fold_digests(projector.log, until, purges, "", s.wallet_bounds(1)[-1], key)
            assert fresh[0]
            for per_call in (1, 100):
                assert digests_of_read_rows(ledger, until, purges, key, per_call) == fresh
    finally:
        projector.close()


def test_a_row_under_a_topic_no_fold_reads_is_left_out_of_both(ledger):
    """A wallet's row whose stored topic was changed is not folded by the fresh fold
    (it reads wallet events by their whole topic): nor is it from the rows
    verification read, though its type name is still a wallet event's."""
    from ledger.domain.identifiers import wallet_id
    from tests.conftest import ENTERPRISE
    from tests.tools.helpers import StoredEvents

    projector = caught_up(ledger)
    key = os.urandom(32)
    try:
        top_up, forged = 5, "ledger.forged:SubsidyToppedUp"
        StoredEvents(consistency.ledger_url(ledger)).set_topic(wallet_id(ENTERPRISE), top_up, forged)
        position = projector.committed_position()
        fresh = digest.fold_digests(projector.log, position, [], "", s.wallet_bounds(1)[-1], key)
        assert digests_of_read_rows(ledger, position, [], key) == fresh
    finally:
        projector.close()


def test_sqlite_writes_a_views_row_as_json_exactly_as_the_fold_side_encodes_it():
    """The views' digests on SQLite hash what ``json_array`` writes; the fresh fold's,
    what ``orjson`` writes: byte for byte the same for any text, integer or NULL a
    view holds (else right views would be compared the slow way every time)."""
    import sqlite3
    from contextlib import closing

    texts = ["", "Bakkerij Peeters BV", 'quote " and \\ back', "€ é ß 日本 \U0001f600", "\u2028\u2029\ufeff"]
    texts += ["".join(map(chr, range(0, 32))), "\x7f\x80\xa0", '[{"account":"held_own_share","amount":"1.00"}]']
    rows = [(text, number, None) for text in texts for number in (0, -1, 7000_00, 2**63 - 1, -(2**63))]
    key = os.urandom(32)
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE TABLE view (a TEXT, b BIGINT, c TEXT)")
        db.executemany("INSERT INTO view VALUES (?, ?, ?)", rows)
        written = [row[0].encode() for row in db.execute("SELECT json_array(a, b, c) FROM view ORDER BY rowid")]
    assert written == [orjson.dumps(row) for row in rows]
    by_sqlite: digest.Digests = {}
    by_orjson: digest.Digests = {}
    digest.RowDigest(key).add_encoded(by_sqlite, "view", written)
    digest.RowDigest(key).add(by_orjson, "view", rows)
    assert by_sqlite == by_orjson and by_sqlite["view"][0] == len(rows)


def test_worker_processes_make_the_same_digests_as_this_process(ledger, pool):
    """Each part of the digests made by the tasks a pool runs equals the same part made here."""
    projector = caught_up(ledger, "payout_orders")
    key = os.urandom(32)
    position = projector.committed_position()
    try:
        events_url, views_url = consistency.ledger_url(ledger), projector.views_url
        for after, before in pairwise(s.wallet_bounds(3)):
            here = digest.fold_digests(projector.log, position, [], after, before, key)
            assert pool.submit(digest.fold_task, events_url, position, [], after, before, key).result() == here
        for table in s.FOLDED_TABLES:
            here = digest.view_digests(projector.target, table, "", key)
            assert pool.submit(digest.view_task, views_url, table.name, "", key).result() == here
    finally:
        projector.close()


def test_the_slices_of_a_view_hold_each_row_once(ledger, monkeypatch):
    projector = caught_up(ledger)
    row = list(projector.target.query(f"SELECT {', '.join(s.AUDIT_TRAIL.column_names)} FROM audit_trail")[0])
    with projector.target.transaction():  # a table of many pages
        projector.target.insert_rows(
            s.AUDIT_TRAIL.name, s.AUDIT_TRAIL.column_names, [[*row[:1], 1000 + i, *row[2:]] for i in range(3000)]
        )
    monkeypatch.setattr(digest, "SLICE_ROWS", 500)
    monkeypatch.setattr(digest, "SLICE_PAGES", 10)
    key = os.urandom(32)
    try:
        whole = digest.view_digests(projector.target, s.AUDIT_TRAIL, "", key)
        sliced: digest.Digests = {}
        slices = digest.view_slices(projector.target, s.AUDIT_TRAIL)
        for where in slices:
            digest.merge(sliced, digest.view_digests(projector.target, s.AUDIT_TRAIL, where, key))
        assert len(slices) > 2
        assert sliced == whole
        assert whole[s.AUDIT_TRAIL.name][0] == 3010
    finally:
        projector.close()


def test_a_fold_that_writes_anything_but_inserts_and_daily_sums_cannot_be_digested():
    target = digest.DigestTarget(digest.RowDigest(os.urandom(32)))
    target.executemany(f"UPDATE {s.PAYOUT_ORDERS.name} SET state = ? WHERE order_id = ?", [])  # no rows: nothing
    with pytest.raises(digest.NotDigestible):
        target.executemany(f"UPDATE {s.PAYOUT_ORDERS.name} SET state = ? WHERE order_id = ?", [("executed", "o-1")])
    with pytest.raises(digest.NotDigestible):
        target.insert_rows(s.WALLETS.name, ("enterprise_number", "wallet_id"), [("0403170701", "w")])


def test_a_digest_counts_rows_and_ignores_their_order_but_not_their_values():
    row_digest = digest.RowDigest(os.urandom(32))
    rows = [("a", 1, None), ("b", 2, "x"), ("c", 3, "")]

    def of(some) -> list[int]:
        found: digest.Digests = {}
        row_digest.add(found, "t", some)
        return found["t"]

    assert of(rows) == of(list(reversed(rows)))
    assert of(rows) != of(rows[:2])
    assert of(rows) != of([("a", 1, None), ("b", 2, "x"), ("c", 3, None)])
    assert of([("1",)]) != of([(1,)])
