"""Every view equals what a fresh fold of the events gives, row for row.

The fresh fold goes into a temporary SQLite file (not memory: a large ledger's
audit trail would not fit), up to the same position as the views checked, and
both are streamed in key order and compared without holding either.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import closing
from itertools import chain, islice, zip_longest
from pathlib import Path
from typing import Any

from ledger.application import KmoLedger
from projections import schema as s
from projections.runner import Projector, ReadModelsStuck
from projections.store import Target

MAX_PER_TABLE = 20


def _ordered(target: Target, table: s.Table) -> Iterator[tuple]:
    types = dict(table.columns)
    order = ", ".join(key + (target.collate if types[key].startswith("TEXT") else "") for key in table.key)
    return target.stream(f"SELECT {', '.join(table.column_names)} FROM {table.name} ORDER BY {order}")


def _describe(table: s.Table, row: tuple) -> str:
    key = tuple(row[table.column_names.index(name)] for name in table.key)
    return repr(key[0] if len(key) == 1 else key)


def compare_table(table: s.Table, actual: Iterator[tuple], fresh: Iterator[tuple]) -> list[str]:
    """Differences between two key-ordered row streams of one table."""
    problems: list[str] = []
    key_at = [table.column_names.index(name) for name in table.key]
    actual_row, fresh_row = next(actual, None), next(fresh, None)
    while (actual_row is not None or fresh_row is not None) and len(problems) < MAX_PER_TABLE:
        actual_key = None if actual_row is None else tuple(actual_row[i] for i in key_at)
        fresh_key = None if fresh_row is None else tuple(fresh_row[i] for i in key_at)
        if fresh_key is None or (actual_key is not None and _before(actual_key, fresh_key)):
            problems.append(f"{table.name}: row {_describe(table, actual_row)} is not in a fresh fold")
            actual_row = next(actual, None)
        elif actual_key is None or _before(fresh_key, actual_key):
            problems.append(f"{table.name}: row {_describe(table, fresh_row)} is missing")
            fresh_row = next(fresh, None)
        else:
            if tuple(actual_row) != tuple(fresh_row):
                changed = [
                    f"{name} {a!r} (fresh fold: {f!r})"
                    for name, a, f in zip(table.column_names, actual_row, fresh_row, strict=False)
                    if a != f
                ]
                problems.append(f"{table.name}: row {_describe(table, actual_row)} differs: " + ", ".join(changed))
            actual_row, fresh_row = next(actual, None), next(fresh, None)
    if len(problems) >= MAX_PER_TABLE:
        problems.append(f"{table.name}: more differences not shown")
    return problems


def _before(left: tuple[Any, ...], right: tuple[Any, ...]) -> bool:
    """Key order as the databases sort (byte-wise text, NULL never in a key)."""
    for a, b in zip_longest(left, right):
        if a == b:
            continue
        if isinstance(a, str):
            return a.encode() < b.encode()
        return a < b
    return False


def compare_streams(table: s.Table, actual: Iterator[tuple], fresh: Iterator[tuple], chunk: int = 5000) -> list[str]:
    """As :func:`compare_table`, comparing equal chunks whole first (the usual case)."""
    while True:
        left, right = list(islice(actual, chunk)), list(islice(fresh, chunk))
        if left == right:
            if not left:
                return []
            continue
        return compare_table(table, chain(left, actual), chain(right, fresh))


def compare_targets(actual: Target, fresh: Target) -> list[str]:
    """Every folded table of ``actual`` against ``fresh``, row for row."""
    problems: list[str] = []
    for table in s.FOLDED_TABLES:
        with closing(_ordered(actual, table)) as left, closing(_ordered(fresh, table)) as right:
            problems += compare_streams(table, left, right)
    return problems


def find_differences(ledger: KmoLedger, database_url: str | None = None) -> list[str]:
    """Differences between the views in ``database_url`` (by default beside the
    ledger's events) and a fresh fold of the ledger's events up to the position
    the views have reached; empty when equal.

    The views are first brought up to date, as a server's next read would: a
    notification they cannot apply is the first difference, named with its
    event type and the reason."""
    with Projector(ledger, database_url) as projector:
        actual = projector.target
        position, rebuild_until = s.tracking(actual)
        if rebuild_until is not None:
            return [f"a rebuild of the read models up to notification {rebuild_until} is under way"]
        stuck = []
        try:
            position = projector.catch_up()
        except ReadModelsStuck as error:
            stuck, position = [str(error)], projector.committed_position()
        purges = actual.query(
            f"SELECT before_date, through_position, purged_at, rows_purged FROM {s.AUDIT_PURGES.name}"
        )
        with tempfile.TemporaryDirectory(prefix="kmo-views-") as folder:
            fresh_url = "sqlite:///" + str(Path(folder) / "fresh.db")
            with Projector(ledger, fresh_url) as fresh:
                with fresh.target.transaction():
                    fresh.target.executemany(
                        f"INSERT INTO {s.AUDIT_PURGES.name} (before_date, through_position, purged_at, "
                        "rows_purged) VALUES (?, ?, ?, ?)",
                        purges,
                    )
                fresh.rebuild(until=position)
                problems = compare_targets(actual, fresh.target)
    return stuck + problems
