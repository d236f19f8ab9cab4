"""The catch-up runner: reads the notification log in batches and writes each
batch's view rows together with the new tracking position in ONE transaction.

Exactly once, after a crash too: a batch either commits its rows and its
position together or leaves neither. Two runners (an API process and a worker)
may run at once: each batch re-reads the position under the tracking row's
lock (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL) and gives
way if the other runner got there first.

A rebuild drops the views and folds whole wallets at a time instead (every
view is per wallet, or a sum): the log is read in wallet order, each batch of
wallets needs no stored state and writes only inserts, the tables are indexed
once at the end. Its wallet ranges, each with its own cursor committed with
its rows, may be folded side by side by the rebuilding process and worker
processes, each taking the next range left; one interrupted is finished by
the next catch-up. Then the catch-up goes on from the notification the
rebuild stopped at.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import closing, nullcontext
from typing import Any

from ledger.application import KmoLedger
from ledger.build import build_ledger, ledger_at
from ledger.domain.errors import StoreBusy, StoreUnavailable
from ledger.storage.log import no_cycle_collection
from projections import schema
from projections.fold import BatchFold
from projections.log import Notification, NotificationLog
from projections.store import Target, connect, ledger_url

Progress = Callable[[int, int, int], None]
"""Called after each batch with (events applied so far, position, last position to reach)."""

BATCH_SIZE = 1000
REBUILD_BATCH_SIZE = 5000
PARALLEL_FROM = 50_000
"""Notifications from which a rebuild folds wallet ranges in several processes."""
MAX_WORKERS = 4


class ReadModelsStuck(Exception):
    """The read models cannot apply a notification: which one, and why. The
    views keep every notification before it; a catch-up tries it again."""

    def __init__(self, notification_id: int, event_type: str, high: int, reason: BaseException):
        self.notification_id, self.event_type, self.high = notification_id, event_type, high
        self.reason = f"{type(reason).__name__}: {str(reason).strip().splitlines()[0] if str(reason).strip() else ''}"
        super().__init__(
            f"the read models cannot apply notification {notification_id} ({event_type}) of {high}: {self.reason}"
        )


class Projector:
    """Keeps the read models of one ledger up to date.

    ``views_url`` names where the views live: by default the ledger's own
    database (same SQLite file, or same PostgreSQL schema).
    """

    before_commit: Callable[[int], None] | None = None
    """Called inside each batch's transaction after its rows are written, with the
    position about to be committed (fault injection for crash tests)."""

    def __init__(
        self,
        ledger: KmoLedger,
        views_url: str | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        rebuild_batch_size: int = REBUILD_BATCH_SIZE,
        check_schema: bool = True,
    ):
        self.ledger = ledger
        self.views_url = views_url or ledger_url(ledger)
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size
        self.target: Target = connect(self.views_url)
        self.log = NotificationLog(ledger.recorder)
        self.rebuild_workers = 1
        # The ledger queues its own SQLite writers in-process; views in the same
        # file queue with them rather than meet them in SQLite's busy back-off.
        same_file = self.target.dialect == "sqlite" and self.views_url == ledger_url(ledger)
        self._writers = getattr(ledger, "writer_turn", None) if same_file else None
        self._lock = threading.RLock()
        self._caught_up = threading.Condition(self._lock)
        schema.ensure_schema(self.target, check_version=check_schema)
        self.position = self.committed_position() if check_schema else 0

    def close(self) -> None:
        self.log.close()
        self.target.close()

    def __enter__(self) -> Projector:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ catching up

    def committed_position(self) -> int:
        state = schema.tracking(self.target)
        return state[0] if state else 0

    def catch_up(self, until: int | None = None, progress: Progress | None = None) -> int:
        """Apply every wallet event recorded so far (or up to notification ``until``);
        returns the position reached. Finishes a rebuild under way first."""
        with self._lock:
            applied = 0
            while True:
                position, rebuild_until = schema.tracking(self.target)
                if rebuild_until is not None:
                    applied = self._finish_rebuild(rebuild_until, applied, progress)
                    continue
                high = self.log.max_id()
                if until is not None:
                    high = min(high, until)
                if position >= high:
                    self.position = position
                    self._caught_up.notify_all()
                    return position
                batch, end = self.log.read(position, high, self.batch_size)
                try:
                    done = self._apply(batch, end, expected=position)
                except Exception as error:
                    if self.before_commit is not None:  # an injected crash: the process is gone, nothing more runs
                        raise
                    if isinstance(error, (StoreBusy, StoreUnavailable)):  # the store, not an event: said as such
                        raise
                    raise self._stuck(batch, position, high, error) from error
                if done is None:
                    continue  # another runner committed this batch first: read again
                applied += done
                self.position = end
                if progress is not None:
                    progress(applied, end, high)

    def _stuck(self, batch: list[Notification], position: int, high: int, error: Exception) -> ReadModelsStuck:
        """The notification of a failed batch that cannot be applied: the batch
        again one notification at a time, keeping those that apply."""
        for notification in batch:
            try:
                if self._apply([notification], notification[0], expected=position) is None:
                    break  # another runner moved on meanwhile: it will meet the same notification
                position = self.position = notification[0]
            except Exception as single:
                return ReadModelsStuck(notification[0], notification[3], high, single)
        if batch:  # each applied alone: the batch as a whole failed (e.g. a lost connection)
            return ReadModelsStuck(batch[0][0], batch[0][3], high, error)
        return ReadModelsStuck(position + 1, "unknown", high, error)

    def _apply(self, batch: list[Notification], end: int, expected: int) -> int | None:
        """Fold a batch and write it with the new position in one transaction;
        None (nothing written) if the position is no longer ``expected``."""
        target = self.target
        with self._writing(), target.transaction(), no_cycle_collection():
            if schema.tracking(target, lock=True) != (expected, None):
                return None
            fold = BatchFold(target, self._purges())
            fold.fold(batch)
            fold.write()
            target.execute(
                f"UPDATE {schema.TRACKING.name} SET position = ? WHERE name = ?", (end, schema.TRACKING_NAME)
            )
            if self.before_commit is not None:
                self.before_commit(end)
        return fold.applied

    # ------------------------------------------------------------------ rebuilding

    def rebuild(self, progress: Progress | None = None, workers: int | None = None, until: int | None = None) -> int:
        """Drop the views and fold them again from event 1 (up to notification
        ``until``, by default all); returns the events applied.

        Whole wallets are folded in ranges of wallet ids; ``workers`` processes
        fold ranges side by side (by default, from ``PARALLEL_FROM`` notifications
        on, one per CPU up to ``MAX_WORKERS``; a ledger in memory: this process)."""
        with self._lock:
            bounded, until = until is not None, self.log.max_id() if until is None else until
            workers = self._workers(until) if workers is None else max(1, workers)
            schema.start_rebuild(self.target, until, ranges=workers * RANGES_PER_PROCESS if workers > 1 else 1)
            self.position = 0
            self.rebuild_workers = workers
            applied = 0

            def count(done: int, rows: int, total: int) -> None:
                nonlocal applied
                applied = done
                if progress is not None:
                    progress(done, rows, total)

            try:
                self.catch_up(until if bounded else None, progress=count)
            finally:
                self.rebuild_workers = 1
        return applied

    def _workers(self, until: int) -> int:
        if until < PARALLEL_FROM or not _spawnable(self.ledger, self.views_url):
            return 1
        return max(1, min(os.cpu_count() or 1, MAX_WORKERS))

    def _finish_rebuild(self, until: int, applied: int, progress: Progress | None) -> int:
        """Fold the wallet ranges still to do, then index the tables and hand over
        to the catch-up from ``until``."""
        ranges = schema.wallet_ranges(self.target)
        rows_done = 0

        def report(events: int, rows: int) -> None:
            nonlocal applied, rows_done
            applied += events
            rows_done += rows
            if progress is not None:
                progress(applied, min(rows_done, until), until)

        if len(ranges) > 1 and self.rebuild_workers > 1:
            _fold_in_processes(self, until, ranges, report)
        else:
            for name, cursor, before in ranges:
                self.fold_wallet_range(name, cursor, before, until, report)
        with self.target.transaction():
            if schema.tracking(self.target, lock=True) == (0, until) and not schema.wallet_ranges(self.target):
                schema.create_indexes(self.target)
                self.target.execute(
                    f"UPDATE {schema.TRACKING.name} SET position = ?, rebuild_until = NULL WHERE name = ?",
                    (until, schema.TRACKING_NAME),
                )
        if self.target.dialect == "sqlite":
            self.target.execute("PRAGMA wal_checkpoint(PASSIVE)")  # what the workers left in the log
        if progress is not None:
            progress(applied, until, until)
        return applied

    def fold_wallet_range(
        self, name: str, cursor: str, before: str, until: int, report: Callable[[int, int], None]
    ) -> None:
        """Fold the wallets after ``cursor`` and before ``before``, a batch of whole
        wallets per transaction with the range's new cursor; drop the range's row at
        its end. Stops quietly if another runner moved the range on."""
        target = self.target
        purges = self._purges()
        # no cycle collection while reading either: the rows read are a million
        # tuples, and each full collection walked every object the process had
        # imported (0.8 s of a worker's 1.8 s of reading at 1,000,000 events)
        with (
            closing(self.log.by_wallet(until, cursor, self.rebuild_batch_size, before)) as wallets,
            no_cycle_collection(),
        ):
            for batch, last_wallet, rows_read in wallets:
                fold = BatchFold(target, purges, fresh=True)
                fold.fold(batch)  # a fresh fold reads nothing: outside the transaction
                with self._writing(), target.transaction():
                    if schema.range_cursor(target, name) != cursor:
                        return
                    fold.write()
                    target.execute(
                        f"UPDATE {schema.TRACKING.name} SET rebuild_cursor = ? WHERE name = ?", (last_wallet, name)
                    )
                    if self.before_commit is not None:
                        self.before_commit(until)
                cursor = last_wallet
                report(fold.applied, rows_read)
        with target.transaction():
            if schema.range_cursor(target, name) == cursor:
                target.execute(f"DELETE FROM {schema.TRACKING.name} WHERE name = ?", (name,))

    def _writing(self):  # -> ContextManager
        return self._writers if self._writers is not None else nullcontext()

    def _purges(self) -> list[tuple[str, int]]:
        return self.target.query(f"SELECT before_date, through_position FROM {schema.AUDIT_PURGES.name}")

    def wait_until(self, position: int, timeout: float = 10.0) -> bool:
        """Read your own writes: return once the views include notification
        ``position`` (catching up in this thread if need be); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self.catch_up(until=position) >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._caught_up:
                self._caught_up.wait(min(remaining, 0.05))

    def read_your_writes(self, timeout: float = 10.0) -> bool:
        """Catch up with everything recorded before this call."""
        return self.wait_until(self.ledger.recorder.max_notification_id() or 0, timeout)

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.5) -> None:
        """The worker loop: catch up, then wait for ``poll_seconds`` or ``stop``."""
        while not stop.is_set():
            self.catch_up()
            stop.wait(poll_seconds)


# ---------------------------------------------------------------------- functions


def _open(ledger_or_url: KmoLedger | str) -> tuple[KmoLedger, bool]:
    if isinstance(ledger_or_url, str):
        return ledger_at(ledger_or_url), True
    return ledger_or_url, False


def catch_up(
    ledger_or_url: KmoLedger | str,
    views_url: str | None = None,
    *,
    until: int | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> int:
    """Bring the views up to date with the ledger's notification log; returns the position."""
    ledger, owned = _open(ledger_or_url)
    try:
        with Projector(ledger, views_url, batch_size=batch_size) as projector:
            return projector.catch_up(until, progress)
    finally:
        if owned:
            ledger.close()


def rebuild(
    database_url: str,
    progress: Progress | None = None,
    *,
    views_url: str | None = None,
    batch_size: int = REBUILD_BATCH_SIZE,
    workers: int | None = None,
) -> tuple[int, float]:
    """Drop and rebuild every view from event 1: (events applied, seconds)."""
    ledger = ledger_at(database_url)
    try:
        with Projector(ledger, views_url, rebuild_batch_size=batch_size, check_schema=False) as projector:
            started = time.perf_counter()
            applied = projector.rebuild(progress, workers)
            return applied, time.perf_counter() - started
    finally:
        ledger.close()


def run_worker(
    ledger_or_url: KmoLedger | str,
    views_url: str | None = None,
    *,
    stop: threading.Event | None = None,
    poll_seconds: float = 0.5,
) -> None:
    """Run the catch-up loop until ``stop`` is set (forever when none is given)."""
    ledger, owned = _open(ledger_or_url)
    try:
        with Projector(ledger, views_url) as projector:
            projector.run_forever(stop or threading.Event(), poll_seconds)
    finally:
        if owned:
            ledger.close()


# ---------------------------------------------------------------------- helpers


def _spawnable(ledger: KmoLedger, views_url: str) -> bool:
    """Whether another process can open the same events and views."""
    events_url = ledger_url(ledger)
    return ":memory:" not in events_url and ":memory:" not in views_url and "mode=memory" not in events_url


def _fold_in_processes(
    projector: Projector, until: int, ranges: list[tuple[str, str, str]], report: Callable[[int, int], None]
) -> None:
    """Fold the wallet ranges side by side: this process and
    ``rebuild_workers - 1`` worker processes (``python -m projections.worker
    --fold-ranges``) each take the next range still to do until none is left.

    This process starts at once; a worker asks for its first range once it
    has imported the ledger, and for the next each time it is done, so every
    process stays busy to the end, whichever is slower. A worker that fails
    leaves the range it had to the next catch-up, takes no more, and makes
    the rebuild fail (naming that range) once the others are done. Database
    URLs go through the environment, never the command line."""
    import subprocess
    import sys
    import tempfile
    from collections import deque
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env[EVENTS_URL_VARIABLE] = ledger_url(projector.ledger)
    env[VIEWS_URL_VARIABLE] = projector.views_url
    lock = threading.Lock()
    pending = deque(ranges)

    def next_range() -> tuple[str, str, str] | None:
        with lock:
            return pending.popleft() if pending else None

    def counted(events: int, rows: int) -> None:
        with lock:
            report(events, rows)

    def relay(worker: _Worker) -> None:
        """Hand the worker a range each time it asks, relay its progress; in
        the end (whatever happens here) close its input, so it ends."""
        process = worker.process
        try:
            for line in process.stdout:
                if line == NEXT_RANGE:
                    worker.holding = next_range()
                    if worker.holding is None:
                        break
                    process.stdin.write("\t".join(worker.holding) + "\n")
                    process.stdin.flush()
                else:
                    events, _, rows = line.partition(" ")
                    if events.isdigit() and rows.strip().isdigit():
                        counted(int(events), int(rows))
        except BaseException as error:  # the worker is gone, or a progress callback raised
            worker.trouble = f"{type(error).__name__}: {error}"
        finally:
            try:
                process.stdin.close()
            except OSError:
                pass
            if worker.trouble:
                process.kill()

    workers = []
    for _ in range(projector.rebuild_workers - 1):
        errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: it never fills up and stalls the worker
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "projections.worker",
                "--fold-ranges",
                "--until",
                str(until),
                "--batch-size",
                str(projector.rebuild_batch_size),
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        worker = _Worker(process, errors)
        worker.reader = threading.Thread(target=relay, args=(worker,), daemon=True)
        worker.reader.start()
        workers.append(worker)
    failures: list[str] = []
    try:
        while (taken := next_range()) is not None:
            projector.fold_wallet_range(*taken, until, counted)
    except BaseException as error:
        with lock:
            pending.clear()  # the workers end after their current range
        _wait_for(workers, failures)
        for failure in failures:
            error.add_note(f"a rebuild worker failed too: {failure}")
        raise
    _wait_for(workers, failures)
    if failures:
        raise RuntimeError("a rebuild worker failed: " + "; ".join(failures))


class _Worker:
    """A rebuild worker process, the thread relaying its output, the range it
    has in hand and what went wrong with it."""

    def __init__(self, process: Any, errors: Any):
        self.process, self.errors = process, errors
        self.reader: threading.Thread | None = None
        self.holding: tuple[str, str, str] | None = None
        self.trouble = ""


def _wait_for(workers: list[_Worker], failures: list[str]) -> None:
    """Wait for every worker to end; one line per failed worker, naming its range."""
    for worker in workers:
        worker.reader.join()
        worker.process.wait()
        worker.errors.seek(0)
        lines = worker.errors.read().strip().splitlines()
        worker.errors.close()
        if worker.process.returncode != 0 or worker.trouble:
            cause = worker.trouble or (lines[-1] if lines else f"exit {worker.process.returncode}")
            failures.append(f"{worker.holding[0] if worker.holding else 'holding no range'}: {cause}")


NEXT_RANGE = "next\n"
"""What a worker process writes when it is ready for a (next) range."""
RANGES_PER_PROCESS = 8
"""Wallet ranges per folding process: small enough that the last ones even out
which process finishes when."""
EVENTS_URL_VARIABLE = "KMO_LEDGER_DATABASE_URL"
VIEWS_URL_VARIABLE = "KMO_LEDGER_REBUILD_VIEWS_URL"


def fold_ranges_in_this_process(until: int, batch_size: int) -> None:
    """The worker process's side: ask for a range (:data:`NEXT_RANGE`), fold
    the one read from standard input (``name<TAB>last wallet done<TAB>end``)
    with a line of progress per batch, and ask again, until standard input ends."""
    import sys

    # the parent made the tables; workers creating them at once race in PostgreSQL's catalog
    ledger = build_ledger(env={"CREATE_TABLE": "n"})
    try:
        with Projector(
            ledger, os.environ[VIEWS_URL_VARIABLE], rebuild_batch_size=batch_size, check_schema=False
        ) as projector:

            def report(events: int, rows: int) -> None:
                sys.stdout.write(f"{events} {rows}\n")
                sys.stdout.flush()

            while True:
                sys.stdout.write(NEXT_RANGE)
                sys.stdout.flush()
                line = sys.stdin.readline()
                if not line:
                    break  # no range left
                name, cursor, before = line.rstrip("\n").split("\t")
                projector.fold_wallet_range(name, cursor, before, until, report)
    finally:
        ledger.close()
