"""The catch-up runner: reads the notification log in batches and writes each
batch's view rows together with the new tracking position in ONE transaction.

Exactly once, after a crash too: a batch either commits its rows and its
position together or leaves neither. Two runners (an API process and a worker)
may run at once: each batch re-reads the position under the tracking row's
lock (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL) and gives
way if the other runner got there first.
"""

from __future__ import annotations

import gc
import threading
import time
from contextlib import closing
from typing import Any, Callable

from ledger.application import KmoLedger
from projections import schema
from projections.fold import BatchFold
from projections.log import Notification, NotificationLog
from projections.store import Target, connect, ledger_url

Progress = Callable[[int, int, int], None]
"""Called after each batch with (events applied so far, position, last position to reach)."""

BATCH_SIZE = 1000
REBUILD_BATCH_SIZE = 5000


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
                position, rebuild_until, cursor = schema.tracking(self.target)
                if rebuild_until is not None:
                    applied = self._rebuild_wallets(rebuild_until, cursor or "", applied, progress)
                    continue
                high = self.log.max_id()
                if until is not None:
                    high = min(high, until)
                if position >= high:
                    self.position = position
                    self._caught_up.notify_all()
                    return position
                batch, end = self.log.read(position, high, self.batch_size)
                done = self._apply(batch, end, expected=(position, None, None))
                if done is None:
                    continue  # another runner committed this batch first: read again
                applied += done
                self.position = end
                if progress is not None:
                    progress(applied, end, high)

    def _apply(
        self, batch: list[Notification], end: int, expected: tuple, fresh: bool = False, cursor: str | None = None
    ) -> int | None:
        """Fold a batch and write it with the new tracking state in one transaction;
        None (nothing written) if the tracking row is no longer as ``expected``."""
        target = self.target
        with target.transaction():
            if schema.tracking(target, lock=True) != expected:
                return None
            fold = BatchFold(target, self._purges(), fresh=fresh)
            collecting = gc.isenabled()
            gc.disable()  # a batch makes many short-lived dicts and no cycles
            try:
                fold.fold(batch)
            finally:
                if collecting:
                    gc.enable()
            fold.write()
            if fresh:
                target.execute(
                    f"UPDATE {schema.TRACKING.name} SET rebuild_cursor = ? WHERE name = ?",
                    (cursor, schema.TRACKING_NAME),
                )
            else:
                target.execute(
                    f"UPDATE {schema.TRACKING.name} SET position = ? WHERE name = ?", (end, schema.TRACKING_NAME)
                )
            if self.before_commit is not None:
                self.before_commit(end)
        return fold.applied

    def _rebuild_wallets(self, until: int, cursor: str, applied: int, progress: Progress | None) -> int:
        """Fold whole wallets (events up to ``until``) after wallet ``cursor``, then index
        the tables and hand over to the catch-up from ``until``."""
        rows_done = 0
        with closing(self.log.by_wallet(until, cursor, self.rebuild_batch_size)) as wallets:
            for batch, last_wallet, rows_read in wallets:
                done = self._apply(batch, until, (0, until, cursor), fresh=True, cursor=last_wallet)
                if done is None:
                    return applied  # another runner moved the rebuild on: read where it stands
                applied += done
                cursor = last_wallet
                rows_done += rows_read
                if progress is not None:
                    progress(applied, min(rows_done, until), until)
        with self.target.transaction():
            if schema.tracking(self.target, lock=True) == (0, until, cursor):
                schema.create_indexes(self.target)
                self.target.execute(
                    f"UPDATE {schema.TRACKING.name} SET position = ?, rebuild_until = NULL, rebuild_cursor = NULL "
                    "WHERE name = ?",
                    (until, schema.TRACKING_NAME),
                )
        if progress is not None:
            progress(applied, until, until)
        return applied

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

    def rebuild(self, progress: Progress | None = None) -> int:
        """Drop the views and fold them again from event 1; returns the events applied."""
        applied = 0

        def count(done: int, position: int, high: int) -> None:
            nonlocal applied
            applied = done
            if progress is not None:
                progress(done, position, high)

        with self._lock:
            schema.start_rebuild(self.target, self.log.max_id())
            self.position = 0
            self.catch_up(progress=count)
        return applied

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.5) -> None:
        """The worker loop: catch up, then wait for ``poll_seconds`` or ``stop``."""
        while not stop.is_set():
            self.catch_up()
            stop.wait(poll_seconds)


# ---------------------------------------------------------------------- functions


def _open(ledger_or_url: KmoLedger | str) -> tuple[KmoLedger, bool]:
    if isinstance(ledger_or_url, str):
        return KmoLedger(ledger_or_url), True
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
    database_url: str, progress: Progress | None = None, *, views_url: str | None = None,
    batch_size: int = REBUILD_BATCH_SIZE,
) -> tuple[int, float]:
    """Drop and rebuild every view from event 1: (events applied, seconds)."""
    ledger = KmoLedger(database_url)
    try:
        with Projector(ledger, views_url, rebuild_batch_size=batch_size, check_schema=False) as projector:
            started = time.perf_counter()
            applied = projector.rebuild(progress)
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
