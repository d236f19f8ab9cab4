"""Order-independent digests of the read models' rows, to check the views
against a fresh fold without writing the fold anywhere.

Each row is encoded canonically (``orjson``: ints, text and NULL, each
unlike the others) and hashed with keyed BLAKE2b; a table's digest is its row
count and the sum of its rows' hashes modulo 2**128, so any order of reading
gives it, and parts of a table digested apart add up. The key is drawn anew
for each check: nobody can make two different tables that sum alike ahead of
time.

The fresh side folds the events with :class:`~projections.fold.BatchFold`
exactly as a rebuild does, into a :class:`DigestTarget` instead of a
database; the views' side reads each table (in slices, so several processes
can share a large one). The task functions at the bottom run in worker
processes (or in this one) and open the ledger and the views once per
process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import closing
from hashlib import blake2b
from itertools import pairwise
from typing import Any

import orjson

from ledger.application import KmoLedger
from ledger.storage.log import no_cycle_collection
from projections import schema as s
from projections.fold import BatchFold
from projections.log import TYPE_OF, NotificationLog
from projections.store import Target, connect

MODULUS = 1 << 128
"""Row hashes are 128 bits, summed modulo this."""
SLICE_ROWS = 40_000
"""Rows (SQLite rowids) per slice of a view read by one task."""
SLICE_PAGES = 1_500
"""Pages (PostgreSQL) per slice of a view read by one task."""
FOLD_BATCH = 5000
"""Events per fresh fold batch, as a rebuild's."""

TABLES = {table.name: table for table in s.FOLDED_TABLES}

Digests = dict[str, list[int]]
"""Table name -> [rows, sum of the rows' hashes modulo 2**128]."""
Daily = dict[tuple[str, str], list[int]]
"""(day, account kind) -> [money in, money out] of the daily totals, summed."""

DAILY_UPSERT = (
    f"INSERT INTO {s.DAILY_TOTALS.name} (day, account_kind, money_in, money_out) VALUES (?, ?, ?, ?) ON CONFLICT"
)
"""How a fold adds to a day's totals; recognised only with both sums added (see :meth:`DigestTarget.executemany`)."""


class NotDigestible(Exception):
    """The fold wrote something a digest cannot stand for (an update, another statement)."""


class RowDigest:
    """Keyed hashes of rows, summed per table."""

    def __init__(self, key: bytes):
        self._keyed = blake2b(key=key, digest_size=16)

    def add(self, digests: Digests, table: str, rows: Iterable[Sequence[Any]]) -> None:
        """Add ``rows`` (any sequences of int, str and None) to ``table``'s digest."""
        self.add_encoded(digests, table, map(orjson.dumps, rows))

    def add_encoded(self, digests: Digests, table: str, encoded: Iterable[bytes]) -> None:
        """Add rows encoded already, each exactly as ``orjson`` writes it as a JSON array."""
        keyed, from_bytes = self._keyed, int.from_bytes
        count = total = 0
        for row in encoded:
            one = keyed.copy()
            one.update(row)
            total += from_bytes(one.digest(), "little")
            count += 1
        entry = digests.setdefault(table, [0, 0])
        entry[0] += count
        entry[1] = (entry[1] + total) % MODULUS


def merge(into: Digests, other: Digests) -> None:
    """Add the digests of other parts of the same tables."""
    for table, (count, total) in other.items():
        entry = into.setdefault(table, [0, 0])
        entry[0] += count
        entry[1] = (entry[1] + total) % MODULUS


class DigestTarget:
    """What a fresh :class:`~projections.fold.BatchFold` writes to, standing in
    for a :class:`~projections.store.Target`: inserted rows go into the tables'
    digests, the daily totals are summed (digest them with :func:`digest_daily`
    once every part is in). Any other statement with rows raises
    :class:`NotDigestible`, so a fold that ever writes otherwise is compared
    the exact way instead."""

    def __init__(self, digest: RowDigest):
        self.digest = digest
        self.digests: Digests = {}
        self.daily: Daily = {}

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if table not in TABLES or tuple(columns) != TABLES[table].column_names:
            raise NotDigestible(f"rows of {table} in another order of columns: {', '.join(columns)}")
        self.digest.add(self.digests, table, rows)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if not (
            sql.startswith(DAILY_UPSERT)
            and f"money_in = {s.DAILY_TOTALS.name}.money_in + excluded.money_in" in sql
            and f"money_out = {s.DAILY_TOTALS.name}.money_out + excluded.money_out" in sql
        ):
            raise NotDigestible(sql)
        add_daily(self.daily, rows)


def add_daily(into: Daily, totals: Iterable[tuple[str, str, int, int]]) -> None:
    """Sum (day, account kind, money in, money out) into ``into``."""
    for day, kind, money_in, money_out in totals:
        sums = into.get((day, kind))
        if sums is None:
            into[day, kind] = [money_in, money_out]
        else:
            sums[0] += money_in
            sums[1] += money_out


def digest_daily(digest: RowDigest, digests: Digests, daily: Daily) -> None:
    """The summed daily totals as the rows the views hold."""
    digest.add(digests, s.DAILY_TOTALS.name, daily_rows(daily))


def daily_rows(daily: Daily) -> list[tuple[str, str, int, int]]:
    """The summed daily totals as rows (day, account kind, money in, money out)."""
    return [(day, kind, *sums) for (day, kind), sums in daily.items()]


def fold_digests(
    log: NotificationLog, until: int, purges: Sequence[tuple[str, int]], after: str, before: str, key: bytes
) -> tuple[Digests, Daily]:
    """The digests of a fresh fold of the wallets after ``after`` and before
    ``before``, up to notification ``until``; the daily totals still as sums."""
    target = DigestTarget(RowDigest(key))
    with closing(log.by_wallet(until, after, FOLD_BATCH, before)) as wallets, no_cycle_collection():
        for batch, _last_wallet, _rows_read in wallets:
            fold = BatchFold(target, purges, fresh=True)  # the digest target stands in for a database
            fold.fold(batch)
            fold.write()
    return target.digests, target.daily


def fold_read_rows(
    wallets: Iterable[tuple[str, Sequence[tuple[int, str, Any]], Sequence[tuple[int, str]]]],
    until: int,
    purges: Sequence[tuple[str, int]],
    key: bytes,
) -> tuple[Digests, Daily] | None:
    """:func:`fold_digests` of whole wallets read already (by verification, for
    its own checks): each is (wallet id in hex, its rows as (version, event type,
    decoded state), each row's (notification id, stored topic)); only wallet
    events (by their stored topic) up to notification ``until`` are folded, as
    :meth:`NotificationLog.by_wallet` gives them. Verification's wallets are
    every id a wallet event was stored under, read by the id as the ledger
    writes it: a row stored under another spelling of it (put in by hand, on
    SQLite) is left out here, and named by verification itself. None when
    these rows cannot be folded (the exact comparison then names why)."""
    target = DigestTarget(RowDigest(key))
    type_of = TYPE_OF
    try:
        fold = BatchFold(target, purges, fresh=True)
        apply = fold.apply_decoded
        for wallet, rows, places in wallets:
            for (version, _type, state), (position, topic) in zip(rows, places, strict=True):
                if position <= until and topic in type_of:
                    apply(position, wallet, version, type_of[topic], state)
        fold.write()
    except Exception:  # a history no fold takes: not for a digest to judge
        return None
    return target.digests, target.daily


def view_slices(target: Target, table: s.Table) -> list[str]:
    """``WHERE`` clauses that cut ``table`` into slices of about
    :data:`SLICE_ROWS` rows (SQLite: by rowid) or :data:`SLICE_PAGES` pages
    (PostgreSQL: by ctid); the last one is open-ended, so rows added meanwhile
    are read too."""
    if target.dialect == "sqlite":
        rows = target.query(f"SELECT max(rowid) FROM {table.name}")[0][0] or 0
        column, cuts = "rowid", [str(rowid) for rowid in range(SLICE_ROWS, rows, SLICE_ROWS)]
    else:
        pages, version = target.query(PAGES_OF_TABLE, (table.name,))[0]
        if version < TID_RANGE_SCANS_FROM:
            return [""]  # each slice would scan the whole table
        column, cuts = "ctid", [f"'({page},0)'::tid" for page in range(SLICE_PAGES, pages, SLICE_PAGES)]
    clauses = []
    for low, high in pairwise([None, *cuts, None]):
        bounds = ([f"{column} >= {low}"] if low else []) + ([f"{column} < {high}"] if high else [])
        clauses.append(" WHERE " + " AND ".join(bounds) if bounds else "")
    return clauses


PAGES_OF_TABLE = (
    "SELECT pg_relation_size(?::regclass) / current_setting('block_size')::int, "
    "current_setting('server_version_num')::int"
)
TID_RANGE_SCANS_FROM = 140000
"""PostgreSQL 14 reads a range of ctids without scanning the table."""


def view_digests(target: Target, table: s.Table, where: str, key: bytes) -> Digests:
    """The digest of the rows of one slice of a view. SQLite writes each row as a
    JSON array itself (``json_array``: the bytes ``orjson`` writes for the same
    values, and no tuple made per row); a cell whose JSON differs all the same
    (a number stored where the fold has text, a float) makes the digests
    differ, and the exact comparison names it."""
    digests: Digests = {}
    columns = ", ".join(table.column_names)
    digest = RowDigest(key)
    if target.dialect == "sqlite":
        query = f"SELECT json_array({columns}) FROM {table.name}{where}"
        with closing(target.stream(query, size=5000)) as rows, no_cycle_collection():
            digest.add_encoded(digests, table.name, (row[0].encode() for row in rows))
    else:
        with closing(target.stream(f"SELECT {columns} FROM {table.name}{where}", size=5000)) as rows:
            with no_cycle_collection():
                digest.add(digests, table.name, rows)
    digests.setdefault(table.name, [0, 0])
    return digests


# ---------------------------------------------------------------------- worker processes

_logs: dict[str, tuple[KmoLedger, NotificationLog]] = {}
"""Events URL -> the ledger opened on it in this worker process (kept: closing it would close its pool) and its log."""
_views: dict[str, Target] = {}


def fold_task(
    events_url: str, until: int, purges: Sequence[tuple[str, int]], after: str, before: str, key: bytes
) -> tuple[Digests, Daily]:
    """:func:`fold_digests` in a worker process, on the ledger at ``events_url``
    (opened once per process, kept for the next task)."""
    opened = _logs.get(events_url)
    if opened is None:
        ledger = KmoLedger(events_url, env={"CREATE_TABLE": "n"})
        opened = _logs[events_url] = (ledger, NotificationLog(ledger.recorder))
    return fold_digests(opened[1], until, purges, after, before, key)


def view_task(views_url: str, table_name: str, where: str, key: bytes) -> Digests:
    """:func:`view_digests` in a worker process, on the views at ``views_url``
    (connected once per process, kept for the next task)."""
    target = _views.get(views_url)
    if target is None:
        target = _views[views_url] = connect(views_url)
    return view_digests(target, TABLES[table_name], where, key)
