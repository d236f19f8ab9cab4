"""Every view equals what a fresh fold of the events gives, row for row.

First by digests (:mod:`projections.digest`): every table of the views and of
a fresh fold that writes nothing, summed row by row under a key drawn for the
check, in worker processes for a large ledger. Equal digests: the views are
right. Otherwise the fresh fold goes into a temporary SQLite file (not memory:
a large ledger's audit trail would not fit), up to the same position as the
views checked, and both are streamed in key order and compared without
holding either, which names each difference.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import closing
from itertools import chain, islice, pairwise, zip_longest
from pathlib import Path
from typing import Any

from ledger.application import KmoLedger
from projections import digest
from projections import schema as s
from projections.runner import MAX_WORKERS, PARALLEL_FROM, Projector, ReadModelsStuck, _spawnable
from projections.store import Target, ledger_url

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


def find_differences(ledger: KmoLedger, database_url: str | None = None, executor: Executor | None = None) -> list[str]:
    """Differences between the views in ``database_url`` (by default beside the
    ledger's events) and a fresh fold of the ledger's events up to the position
    the views have reached; empty when equal.

    The views are first brought up to date, as a server's next read would: a
    notification they cannot apply is the first difference, named with its
    event type and the reason. ``executor``: a running pool of spawned
    processes to fold and read in (see :func:`start_comparison`)."""
    return start_comparison(ledger, database_url, executor).differences()


def start_comparison(
    ledger: KmoLedger, database_url: str | None = None, executor: Executor | None = None
) -> Comparison:
    """:func:`find_differences` in two steps: catch the views up and set the
    digests going now; :meth:`Comparison.differences` collects them (always
    call it: it closes what this opened).

    A ledger of :data:`~projections.runner.PARALLEL_FROM` notifications or
    more, in a store other processes can open, is folded and read in worker
    processes: those of ``executor`` (any ``concurrent.futures`` executor
    whose processes are *spawned*: its tasks open the ledger and the views once
    per process), or else a pool started here and ended by ``differences``.
    Smaller ledgers are compared in this process, when ``differences`` is
    called."""
    comparison = prepare_comparison(ledger, database_url)
    try:
        comparison.start(executor)
    except BaseException:
        comparison.close()
        raise
    return comparison


def prepare_comparison(ledger: KmoLedger, database_url: str | None = None) -> Comparison:
    """A comparison with the views caught up, not yet started: between the two,
    a caller that reads every wallet anyway may take the fresh fold on itself
    (:meth:`Comparison.folding`)."""
    comparison = Comparison(Projector(ledger, database_url))
    try:
        comparison.prepare()
    except BaseException:
        comparison.close()
        raise
    return comparison


class Comparison:
    """The views against a fresh fold, under way (:func:`start_comparison`).

    First the quick way: digests of every table (:mod:`projections.digest`),
    of the views and of a fold of the events that writes nothing, made in
    parts (wallet ranges of the fold, slices of the views). If every table
    agrees, the views are as a fresh fold would make them. Otherwise (or when
    the quick way cannot tell) the fresh fold is written to a temporary
    database and compared row for row (:func:`exact_differences`), which
    names each difference.

    The fold's digests may instead come from a caller that reads every
    wallet's rows anyway (verification): it takes :meth:`folding` before
    :meth:`start` and hands each part's result to :meth:`add`."""

    digests_agreed = False
    """Whether :meth:`differences` found the views equal by their digests alone."""

    def __init__(self, projector: Projector):
        self.projector = projector
        self.found: list[str] = []
        """What is known to differ before any comparison (the views stuck at a notification)."""
        self.compare = True
        """False: ``found`` says all there is (a rebuild under way)."""
        self.position = 0
        self.purges: list[tuple] = []
        self.key = os.urandom(32)
        self.parts: list[tuple[Part, Future | None]] = []
        self.pool: Executor | None = None
        self.folded_elsewhere = False
        self.fresh: digest.Digests = {}
        self.daily: digest.Daily = {}
        self.foldable = True
        """False once a part folded elsewhere could not be folded."""

    def prepare(self) -> None:
        """Catch the views up; what they reached is the position compared."""
        projector = self.projector
        position, rebuild_until = s.tracking(projector.target)
        if rebuild_until is not None:
            self.found = [f"a rebuild of the read models up to notification {rebuild_until} is under way"]
            self.compare = False
            return
        try:
            position = projector.catch_up()
        except ReadModelsStuck as error:
            self.found, position = [str(error)], projector.committed_position()
        self.position = position
        self.purges = projector.target.query(
            f"SELECT before_date, through_position, purged_at, rows_purged FROM {s.AUDIT_PURGES.name}"
        )

    def folding(self) -> tuple[Callable[..., Any], tuple[Any, ...]] | None:
        """The fresh fold, taken on by the caller: a function to call on each
        part of the wallets as read (see :func:`digest.fold_read_rows`) with
        these arguments after it, whose result goes to :meth:`add`. The parts
        must together be every wallet, each whole. None: nothing to fold (no comparison)."""
        if not self.compare:
            return None
        self.folded_elsewhere = True
        return digest.fold_read_rows, (self.position, self._purges(), self.key)

    def add(self, folded: tuple[digest.Digests, digest.Daily] | None) -> None:
        """The digests of one part folded by the caller (None: it could not be folded)."""
        if folded is None:
            self.foldable = False
            return
        digest.merge(self.fresh, folded[0])
        digest.add_daily(self.daily, digest.daily_rows(folded[1]))

    def start(self, executor: Executor | None) -> None:
        """Plan the digests up to the position the views reached, and set them going."""
        if not self.compare:
            return
        parallel = self.position >= PARALLEL_FROM and _spawnable(self.projector.ledger, self.projector.views_url)
        self.plan(min(os.cpu_count() or 1, MAX_WORKERS) if parallel else 1, executor if parallel else None)

    def plan(self, processes: int, executor: Executor | None) -> None:
        """Cut the digests into parts; with ``processes`` over 1, set them going
        in ``executor`` (or a pool of ``processes - 1`` started here: this
        process takes parts too, in :meth:`differences`)."""
        bounds = s.wallet_bounds(RANGES_PER_PROCESS * processes if processes > 1 else 1)
        parts: list[Part] = [] if self.folded_elsewhere else [("fold", a, b) for a, b in pairwise(bounds)]
        for table in s.FOLDED_TABLES:
            parts += [("views", table.name, where) for where in digest.view_slices(self.projector.target, table)]
        if processes > 1 and executor is None:
            context = multiprocessing.get_context("spawn")  # a fresh interpreter: no connection or lock of ours
            executor = self.pool = ProcessPoolExecutor(processes - 1, mp_context=context)
        for part in parts:  # one by one: close() cancels those submitted if a later one fails
            self.parts.append((part, None if executor is None else self._submit(executor, part)))

    def _submit(self, executor: Executor, part: Part) -> Future:
        kind, first, second = part
        if kind == "fold":
            events_url = ledger_url(self.projector.ledger)
            return executor.submit(digest.fold_task, events_url, self.position, self._purges(), first, second, self.key)
        return executor.submit(digest.view_task, self.projector.views_url, first, second, self.key)

    def _here(self, part: Part) -> Any:
        """What the part's task gives (:func:`digest.fold_task`, :func:`digest.view_task`), made in this process."""
        kind, first, second = part
        if kind == "fold":
            return digest.fold_digests(self.projector.log, self.position, self._purges(), first, second, self.key)
        return digest.view_digests(self.projector.target, digest.TABLES[first], second, self.key)

    def _purges(self) -> list[tuple[str, int]]:
        return [(before_date, through_position) for before_date, through_position, *_ in self.purges]

    def differences(self) -> list[str]:
        """What differs (empty when nothing does); closes what the comparison opened."""
        try:
            if not self.compare:
                return self.found
            self.digests_agreed = self._digests_agree()
            if self.digests_agreed:
                return self.found
            return self.found + exact_differences(self.projector, self.position, self.purges)
        finally:
            self.close()

    def _digests_agree(self) -> bool:
        """Whether every table's digest of the views equals the fresh fold's;
        False too when the digests could not be made."""
        try:
            return self._compare_digests()
        except Exception:  # whatever went wrong, the exact comparison tells (or raises it again)
            return False

    def _compare_digests(self) -> bool:
        """Take the parts no worker has started, from the last (the workers
        take them from the first), then collect the workers' parts."""
        if not self.foldable:
            return False
        done: dict[int, Any] = {}
        for index in range(len(self.parts) - 1, -1, -1):
            part, future = self.parts[index]
            if future is None or future.cancel():
                done[index] = self._here(part)
        fresh, daily = self.fresh, self.daily
        actual: digest.Digests = {}
        for index, (part, future) in enumerate(self.parts):
            result = done[index] if index in done else future.result()
            if part[0] == "fold":
                digest.merge(fresh, result[0])
                digest.add_daily(daily, digest.daily_rows(result[1]))
            else:
                digest.merge(actual, result)
        digest.digest_daily(digest.RowDigest(self.key), fresh, daily)
        return all(fresh.get(table.name, [0, 0]) == actual.get(table.name, [0, 0]) for table in s.FOLDED_TABLES)

    def close(self) -> None:
        """Cancel the parts not started, end a pool started here, close the views."""
        for _part, future in self.parts:
            if future is not None:
                future.cancel()
        self.parts = []
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        self.projector.close()


Part = tuple[str, str, str]
"""A part of the digests: ("fold", after wallet, before wallet) or ("views", table name, WHERE clause)."""
RANGES_PER_PROCESS = 8
"""Wallet ranges of the fresh fold per process: small enough that the last ones
even out which process finishes when."""


def exact_differences(projector: Projector, position: int, purges: Sequence[tuple]) -> list[str]:
    """The views of ``projector`` row for row against a fresh fold up to
    ``position`` in a temporary SQLite file, with the same audit purges."""
    with tempfile.TemporaryDirectory(prefix="kmo-views-") as folder:
        fresh_url = "sqlite:///" + str(Path(folder) / "fresh.db")
        with Projector(projector.ledger, fresh_url) as fresh:
            with fresh.target.transaction():
                fresh.target.executemany(
                    f"INSERT INTO {s.AUDIT_PURGES.name} (before_date, through_position, purged_at, "
                    "rows_purged) VALUES (?, ?, ?, ?)",
                    purges,
                )
            fresh.rebuild(until=position)
            return compare_targets(projector.target, fresh.target)
