"""The notifier (#20): tails the notification log like the read models do,
derives each event's notices (:mod:`ledger.notices.derive`) and delivers them.

Its tables live beside the read models (same SQLite file or PostgreSQL
schema) and are never dropped by a rebuild: its position in the log, every
notice with its delivery state, the deadlines a reminder may be due before, the
provider directory and a lease. A batch of notices and the new position commit
in one transaction; a delivery's outcome is written after the send, so a crash
in between sends the notice again under the same id: at least once.

The provider directory is a mutable table here, not an event: a webhook secret
must be replaceable and must not be kept for ever in the event log.

One process delivers at a time (``serve --workers N``, ``kmo-ledger notify``):
it holds the lease row and renews it each pass; a lease whose holder ended
(same host, its process gone) or that was not renewed in time is taken over.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from ledger.application import KmoLedger
from ledger.domain import events as ev
from ledger.domain.clock import SystemClock, brussels_date
from ledger.domain.errors import NotFound
from ledger.domain.identifiers import canonical_enterprise_number, wallet_id
from ledger.domain.state import WalletState
from ledger.notices import derive
from ledger.notices.channels import DeliveryFailed, Smtp, Webhooks
from ledger.notices.derive import Account, Notice, ProviderEntry
from ledger.notices.settings import NoticeSettings
from projections.log import NotificationLog
from projections.schema import INT, TEXT, TEXT_NULL, Table
from projections.store import Target, connect, ledger_url

log = logging.getLogger("kmo_ledger.notices")
T = TypeVar("T")

STATUSES = ("pending", "delivered", "failed", "undeliverable")
NOTICES = Table(
    "notices",
    (
        ("id", TEXT),
        ("type", TEXT),
        ("party", TEXT),
        ("recipient", TEXT),
        ("channel", TEXT),
        ("address", TEXT_NULL),
        ("enterprise_number", TEXT),
        ("application_id", TEXT_NULL),
        ("source", TEXT),
        ("data", TEXT),
        ("created_at", TEXT),
        ("status", TEXT),
        ("attempts", INT),
        ("next_attempt_at", TEXT_NULL),
        ("last_error", TEXT_NULL),
        ("delivered_at", TEXT_NULL),
    ),
    key=("id",),
    indexes=(("status", "next_attempt_at"), ("status", "id")),
)
NOTICE_DEADLINES = Table(
    "notice_deadlines",
    (("wallet_id", TEXT), ("application_id", TEXT), ("kind", TEXT), ("deadline", TEXT), ("done", INT)),
    key=("wallet_id", "application_id", "kind"),
    indexes=(("done", "deadline"),),
)
NOTICE_STATE = Table(
    "notice_state", (("name", TEXT), ("position", INT), ("holder", TEXT_NULL), ("expires", INT)), key=("name",)
)
PROVIDERS = Table(
    "provider_directory",
    (
        ("number", TEXT),
        ("name", TEXT),
        ("email", TEXT_NULL),
        ("webhook_url", TEXT_NULL),
        ("webhook_secret", TEXT_NULL),
        ("updated_at", TEXT),
    ),
    key=("number",),
)
TABLES = (NOTICES, NOTICE_DEADLINES, NOTICE_STATE, PROVIDERS)
STATE_ROW = "notifier"
LEASE_SECONDS = 30
REMINDER_MOOT = "not sent: its deadline was met or has passed since it was made"
BATCH = 500
DELIVERY_BATCH = 400
MAX_SENDERS = 16
"""Threads sending at once in a batch, whatever the number of receivers."""
MAX_BACKOFF = timedelta(days=1)
COLUMNS = NOTICES.column_names
Outcome = tuple[str, str, int, str | None, str | None, str | None, str | None]
"""(id, status, attempts, next attempt, last error, delivered at, address) of one notice."""


def _iso(moment: datetime) -> str:
    """A UTC moment as stored: text of one width, so it sorts as time does."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _shown(stored: str | None) -> str | None:
    """A stored moment as JSON writes a datetime (``...T09:00:00Z``, microseconds only when any)."""
    if stored is None:
        return None
    return datetime.fromisoformat(stored).isoformat().replace("+00:00", "Z")


def backoff(attempts: int, first: float, rng: random.Random) -> timedelta:
    """The wait before attempt ``attempts + 1``: ``first`` doubled per attempt,
    with jitter (half to the whole of it), at most a day."""
    wait = min(first * 2 ** (attempts - 1), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=wait * rng.uniform(0.5, 1.0))


@dataclass
class PassReport:
    derived: int = 0
    reminders: int = 0
    delivered: int = 0
    failed: int = 0
    holding_lease: bool = True


class NoticeStore:
    """The notifier's tables, on one connection used by one thread at a time."""

    def __init__(self, url: str, writers: Any = None):
        self.target: Target = connect(url)
        self._lock = threading.RLock()
        self._writers = writers
        with self._lock, self._writing(), self.target.transaction():
            for table in TABLES:
                self.target.execute(table.create_table())
                for statement in table.create_indexes():
                    self.target.execute(statement)
            if not self.target.query(f"SELECT 1 FROM {NOTICE_STATE.name} WHERE name = ?", (STATE_ROW,)):
                self.target.execute(
                    f"INSERT INTO {NOTICE_STATE.name} (name, position, holder, expires) VALUES (?, 0, NULL, 0)",
                    (STATE_ROW,),
                )

    def close(self) -> None:
        with self._lock:
            self.target.close()

    def _writing(self) -> Any:
        return self._writers if self._writers is not None else nullcontext()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together (SQLite: queued with the ledger's writers)."""
        with self._lock, self._writing(), self.target.transaction():
            yield

    # ------------------------------------------------------------------ position and lease

    def state(self, lock: bool = False) -> tuple[int, str | None, int]:
        with self._lock:  # the connection is shared with the API's threads
            rows = self.target.query(
                f"SELECT position, holder, expires FROM {NOTICE_STATE.name} WHERE name = ?"
                + (self.target.for_update if lock else ""),
                (STATE_ROW,),
            )
        return rows[0]

    def take_lease(self, holder: str, now: float, seconds: int = LEASE_SECONDS) -> bool:
        """Hold (or renew) the lease; False while another live process holds it."""
        with self.transaction():
            _position, current, expires = self.state(lock=True)
            if current not in (None, holder) and expires > now and not _holder_gone(current):
                return False
            self.target.execute(
                f"UPDATE {NOTICE_STATE.name} SET holder = ?, expires = ? WHERE name = ?",
                (holder, int(now) + seconds, STATE_ROW),
            )
            return True

    def give_up_lease(self, holder: str) -> None:
        with self.transaction():
            self.target.execute(
                f"UPDATE {NOTICE_STATE.name} SET holder = NULL, expires = 0 WHERE name = ? AND holder = ?",
                (STATE_ROW, holder),
            )

    # ------------------------------------------------------------------ notices

    def insert(self, notices: list[Notice], now: datetime) -> int:
        """Add notices not stored yet (a notice derived again is the same row)."""
        rows = []
        for n in notices:
            status = "pending" if n.address else "undeliverable"
            error = None if n.address else nobody_known(n)
            rows.append(
                (
                    n.id,
                    n.type,
                    n.party,
                    n.recipient,
                    n.channel,
                    n.address,
                    n.enterprise_number,
                    n.application_id,
                    n.source,
                    orjson.dumps(n.data).decode(),
                    _iso(now),
                    status,
                    0,
                    _iso(now) if n.address else None,
                    error,
                    None,
                )
            )
        marks = ", ".join("?" * len(COLUMNS))
        self.target.executemany(
            f"INSERT INTO {NOTICES.name} ({', '.join(COLUMNS)}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING", rows
        )
        return len(rows)

    def due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.target.query(
                f"SELECT {', '.join(COLUMNS)} FROM {NOTICES.name} WHERE status = 'pending' AND next_attempt_at <= ? "
                "ORDER BY next_attempt_at, id LIMIT ?",
                (_iso(now), limit),
            )
        return [_row(row) for row in rows]

    def record(self, outcomes: list[Outcome]) -> None:
        """(id, status, attempts, next attempt, last error, delivered at, address) per notice, in one transaction."""
        with self.transaction():
            self.target.executemany(
                f"UPDATE {NOTICES.name} SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, "
                "delivered_at = ?, address = ? WHERE id = ? AND status = 'pending'",
                [
                    (status, attempts, after, error, at, address, id_)
                    for id_, status, attempts, after, error, at, address in outcomes
                ],
            )

    def get(self, notice_id: str) -> dict[str, Any] | None:
        with self._lock:
            rows = self.target.query(f"SELECT {', '.join(COLUMNS)} FROM {NOTICES.name} WHERE id = ?", (notice_id,))
        return _row(rows[0]) if rows else None

    def page(self, status: str | None, after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Notices in order of id (``status`` only), those after ``after``; with the cursor of the next page."""
        where, params = ["1 = 1"], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if after:
            where.append("id > ?")
            params.append(after)
        with self._lock:
            rows = self.target.query(
                f"SELECT {', '.join(COLUMNS)} FROM {NOTICES.name} WHERE {' AND '.join(where)} "
                f"ORDER BY id{self.target.collate} LIMIT ?",
                (*params, limit + 1),
            )
        found = [_row(row) for row in rows[:limit]]
        return found, (found[-1]["id"] if len(rows) > limit else None)

    def redeliver(self, notice_id: str, address: str | None, now: datetime) -> dict[str, Any]:
        """Make a notice pending now, at its recipient's address today (still none: undeliverable)."""
        with self.transaction():
            if not self.target.query(f"SELECT 1 FROM {NOTICES.name} WHERE id = ?", (notice_id,)):
                raise NotFound(f"no notice {notice_id}")
            if address:  # someone to send it to: pending now, the last error forgotten
                self.target.execute(
                    f"UPDATE {NOTICES.name} SET status = 'pending', attempts = 0, next_attempt_at = ?, address = ?, "
                    "last_error = NULL WHERE id = ?",
                    (_iso(now), address, notice_id),
                )
            else:
                self.target.execute(
                    f"UPDATE {NOTICES.name} SET status = 'undeliverable', next_attempt_at = NULL, address = NULL "
                    "WHERE id = ?",
                    (notice_id,),
                )
        found = self.get(notice_id)
        assert found is not None
        return found

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.target.query(f"SELECT status, COUNT(*) FROM {NOTICES.name} GROUP BY status")
        return {status: 0 for status in STATUSES} | {status: int(n) for status, n in rows}

    # ------------------------------------------------------------------ deadlines

    def track(self, rows: list[tuple[str, str, str, str]]) -> None:
        """(wallet id, application id, kind, deadline): a deadline a reminder may be due before."""
        self.target.executemany(
            f"INSERT INTO {NOTICE_DEADLINES.name} (wallet_id, application_id, kind, deadline, done) "
            "VALUES (?, ?, ?, ?, 0) "
            "ON CONFLICT (wallet_id, application_id, kind) DO UPDATE SET deadline = excluded.deadline, done = 0",
            rows,
        )

    def deadlines_near(self, today: date, horizon: int) -> list[tuple[str, str, str, str]]:
        with self._lock:
            return self.target.query(
                f"SELECT wallet_id, application_id, kind, deadline FROM {NOTICE_DEADLINES.name} "
                "WHERE done = 0 AND deadline <= ?",
                ((today + timedelta(days=horizon)).isoformat(),),
            )

    def done(self, rows: list[tuple[str, str, str]]) -> None:
        self.target.executemany(
            f"UPDATE {NOTICE_DEADLINES.name} SET done = 1 WHERE wallet_id = ? AND application_id = ? AND kind = ?", rows
        )

    # ------------------------------------------------------------------ the provider directory

    def put_provider(self, entry: ProviderEntry, secret: str | None, now: datetime) -> None:
        with self.transaction():
            self.target.execute(
                f"INSERT INTO {PROVIDERS.name} (number, name, email, webhook_url, webhook_secret, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (number) DO UPDATE SET name = excluded.name, "
                "email = excluded.email, webhook_url = excluded.webhook_url, "
                "webhook_secret = excluded.webhook_secret, updated_at = excluded.updated_at",
                (entry.number, entry.name, entry.email, entry.webhook_url, secret, _iso(now)),
            )

    def provider(self, number: str) -> tuple[ProviderEntry, str | None, str] | None:
        """The entry, its webhook secret and when it was last written."""
        with self._lock:
            rows = self.target.query(
                f"SELECT {', '.join(PROVIDERS.column_names)} FROM {PROVIDERS.name} WHERE number = ?",
                (number,),
            )
        if not rows:
            return None
        number, name, email, url, secret, updated = rows[0]
        return ProviderEntry(number, name, email, url), secret, _shown(updated) or updated

    def directory(self, number: str) -> ProviderEntry | None:
        found = self.provider(number)
        return found[0] if found else None


def nobody_known(notice: Notice) -> str:
    channel = "e-mail address" if notice.channel == "email" else "webhook"
    return f"no {channel} known for {notice.party} {notice.recipient}"


def _row(row: tuple) -> dict[str, Any]:
    found = dict(zip(COLUMNS, row, strict=True))
    found["data"] = orjson.loads(found["data"])
    found["attempts"] = int(found["attempts"])
    for moment in ("created_at", "next_attempt_at", "delivered_at"):
        found[moment] = _shown(found[moment])
    return found


def _holder_gone(holder: str) -> bool:
    """A lease held by a process of this host that no longer runs."""
    host, _, rest = holder.partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


SMTP_RECEIVER = "smtp"


@dataclass
class Send:
    """A notice to send in a batch, with all the sender needs read beforehand."""

    notice: Notice
    attempts: int
    address: str | None
    receiver: str = SMTP_RECEIVER
    """The SMTP server, or the webhook's host (``host:port``)."""
    secret: str | None = None


def as_notice(row: dict[str, Any]) -> Notice:
    return Notice(**{name: row[name] for name in Notice.__dataclass_fields__})


class Notifier:
    """Derives and delivers the notices of one ledger (see the module's docstring)."""

    def __init__(
        self,
        ledger: KmoLedger,
        settings: NoticeSettings | None = None,
        views_url: str | None = None,
        *,
        store: NoticeStore | None = None,
        seed: int | None = None,
    ):
        self.ledger = ledger
        self.settings = settings or NoticeSettings()
        url = views_url or ledger_url(ledger)
        same_file = url.startswith("sqlite:///") and url == ledger_url(ledger)
        self.store = store or NoticeStore(url, getattr(ledger, "writer_turn", None) if same_file else None)
        self._owns_store = store is None
        self.log = NotificationLog(ledger.recorder)
        self.account = Account(self.settings.financial_manager_iban, self.settings.financial_manager_name)
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.rng = random.Random(seed)
        self._pass = threading.Lock()
        self._stopping = threading.Event()  # set by run_forever's stop: no further batch is begun

    def close(self) -> None:
        self.log.close()
        try:
            self.store.give_up_lease(self.holder)
        except Exception:  # closing anyway: the lease runs out by itself
            log.warning("the notifier could not give up its lease")
        if self._owns_store:
            self.store.close()

    # ------------------------------------------------------------------ a pass

    def run_pass(self) -> PassReport:
        """Derive every new event's notices, add the reminders due today, deliver what is due."""
        with self._pass:
            report = PassReport()
            if not self.store.take_lease(self.holder, time.time()):
                report.holding_lease = False
                return report
            report.derived = self.derive()
            report.reminders = self.remind()
            report.delivered, report.failed = self.deliver()
            return report

    def run_forever(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Passes until ``stop`` is set; a failing pass is logged in one line and tried again."""
        self._stopping = stop
        while not stop.is_set():
            try:
                report = self.run_pass()
                busy = report.derived or report.delivered or report.failed
            except Exception as error:
                log.error("notifier pass failed: %s: %s", type(error).__name__, str(error).strip().splitlines()[:1])
                busy = False
            if not busy:
                stop.wait(poll_seconds)

    def _read(self, wallet_hex: str, read: Callable[[WalletState], T]) -> T | None:
        """``read`` of the wallet's current state under its lock (None: no such wallet)."""
        try:
            return self.ledger.read_wallet(uuid.UUID(wallet_hex), read)
        except NotFound:
            return None

    def derive(self) -> int:
        """Notices of the events after the stored position, a batch per transaction with the new position."""
        made = 0
        while True:
            if made and not self.store.take_lease(self.holder, time.time()):  # a long catch-up keeps it too
                return made
            position = self.store.state()[0]
            high = self.log.max_id()
            if position >= high:
                return made
            batch, end = self.log.read(position, high, BATCH)
            notices: list[Notice] = []
            tracked: list[tuple[str, str, str, str]] = []
            for _id, wallet_hex, version, type_name, state_bytes in batch:
                if type_name not in DERIVED:
                    continue
                event = ev.EVENT_TYPES[type_name].model_validate(
                    orjson.loads(state_bytes) | {"originator_id": wallet_hex, "originator_version": version}
                )
                notices += (
                    self._read(
                        wallet_hex,
                        partial(derive.notices_for, event, directory=self.store.directory, account=self.account),
                    )
                    or []
                )
                tracked += [
                    (wallet_hex, event.application_id, kind, day.isoformat())  # type: ignore[attr-defined]
                    for kind, day in derive.deadlines_of(event)
                ]
            now = self.ledger.clock.now()
            with self.store.transaction():
                if self.store.state(lock=True)[0] != position:
                    continue  # another notifier moved on: read again
                self.store.insert(notices, now)
                self.store.track(tracked)
                self.store.target.execute(
                    f"UPDATE {NOTICE_STATE.name} SET position = ? WHERE name = ?", (end, STATE_ROW)
                )
            made += len(notices)

    def remind(self) -> int:
        """The reminders due today before each deadline still unmet; a deadline met or passed is done."""
        now = self.ledger.clock.now()
        today = brussels_date(now)
        offsets = self.settings.offsets
        if not offsets:
            return 0
        notices: list[Notice] = []
        finished: list[tuple[str, str, str]] = []
        for wallet_hex, application_id, kind, deadline_text in self.store.deadlines_near(today, max(offsets)):
            due = self._read(
                wallet_hex,
                partial(
                    derive.reminders,
                    application_id=application_id,
                    kind=kind,
                    deadline=date.fromisoformat(deadline_text),
                    today=today,
                    offsets=offsets,
                    directory=self.store.directory,
                    account=self.account,
                ),
            )
            if due is None:
                finished.append((wallet_hex, application_id, kind))
            else:
                notices += due
        if notices or finished:
            with self.store.transaction():
                self.store.insert(notices, now)
                self.store.done(finished)
        return len(notices)

    def deliver(self) -> tuple[int, int]:
        """Send the notices due, a batch at a time, recording each batch's
        outcomes in one transaction after its sends.

        A batch's notices are grouped by receiver (the SMTP server, each
        webhook host); each receiver gets up to ``notice_connections`` senders
        (threads), each on its own kept session or connection, and the
        receivers are sent to side by side, so a slow one does not hold the
        others: a sender stops taking its batch's notices once the batch has
        run for the send timeout, and what it left waits, untried, for the next
        batch. A receiver that failed once in this pass is not tried again in
        it: its other notices wait for their retry, so a dead receiver costs
        one timeout per pass, not one per notice. The sessions close when the
        pass ends."""
        delivered = failed = 0
        down: dict[str, str] = {}
        senders: dict[tuple[str, int], Smtp | Webhooks] = {}
        try:
            while not self._stopping.is_set():  # shut-down waits for one batch at most
                if not self.store.take_lease(self.holder, time.time()):  # renewed per batch: a long pass keeps it
                    return delivered, failed
                now = self.ledger.clock.now()
                due = self.store.due(now, DELIVERY_BATCH)
                if not due:
                    return delivered, failed
                outcomes = self._send_batch(due, now, down, senders)
                delivered += sum(1 for outcome in outcomes if outcome[1] == "delivered")
                failed += sum(1 for outcome in outcomes if outcome[1] != "delivered")
                self.store.record(outcomes)
                if failed and not delivered:
                    return delivered, failed  # every send failed: the receivers are down, wait for the next pass
            return delivered, failed
        finally:
            for sender in senders.values():
                sender.close()

    def _send_batch(
        self, due: list[dict[str, Any]], now: datetime, down: dict[str, str], senders: dict[tuple[str, int], Any]
    ) -> list[Outcome]:
        """The outcomes of one batch's sends (those a slow receiver left are not among them)."""
        outcomes: list[Outcome] = []
        lanes: dict[tuple[str, int], list[Send]] = {}
        per_receiver: Counter[str] = Counter()
        today = brussels_date(now)
        for row in due:  # addresses and secrets are read here, on the store's own thread
            notice = as_notice(row)
            if notice.type in derive.REMINDED and not self._still_to_remind(notice, today):
                outcomes.append((notice.id, "failed", row["attempts"], None, REMINDER_MOOT, None, None))
                continue
            send = Send(notice, row["attempts"] + 1, self._address(notice))
            if send.address is None:
                outcomes.append((notice.id, "undeliverable", send.attempts, None, nobody_known(notice), None, None))
                continue
            if notice.channel == "webhook":
                send.receiver = urlsplit(send.address).netloc
                found = self.store.provider(notice.recipient)
                send.secret = found[1] if found else None
            lane = (send.receiver, per_receiver[send.receiver] % self.settings.notice_connections)  # dealt in turn
            per_receiver[send.receiver] += 1
            lanes.setdefault(lane, []).append(send)
        for lane in lanes:
            if lane not in senders:
                senders[lane] = (
                    Webhooks(self.settings.notice_timeout_seconds)
                    if lane[0] != SMTP_RECEIVER
                    else Smtp(self.settings.smtp_url, self.settings.notice_sender, self.settings.notice_timeout_seconds)
                )
        guard = threading.Lock()
        started = time.monotonic()
        lane_results: list[list[tuple[Send, str | None, datetime | None]]]
        if not lanes:  # nothing to send: nobody known, or reminders no longer due
            lane_results = []
        elif len(lanes) == 1:
            ((lane, sends),) = lanes.items()
            lane_results = [self._lane(senders[lane], sends, down, guard, started)]
        else:
            with ThreadPoolExecutor(max_workers=min(MAX_SENDERS, len(lanes)), thread_name_prefix="notice") as pool:
                lane_results = list(
                    pool.map(lambda item: self._lane(senders[item[0]], item[1], down, guard, started), lanes.items())
                )
        for results in lane_results:
            for send, error, sent_at in results:
                outcomes.append(self._outcome(send, error, sent_at, now))
        return outcomes

    def _lane(
        self,
        sender: Smtp | Webhooks,
        sends: list[Send],
        down: dict[str, str],
        guard: threading.Lock,
        started: float,
    ) -> list[tuple[Send, str | None, datetime | None]]:
        """One sender's notices, in order: (send, why it failed or None, when it was delivered)."""
        results: list[tuple[Send, str | None, datetime | None]] = []
        for send in sends:
            if results and time.monotonic() - started > self.settings.notice_timeout_seconds:
                break  # a slow receiver: the rest waits for the next batch, the other receivers go on
            with guard:
                reason = down.get(send.receiver)
            if reason is None:
                try:
                    if isinstance(sender, Webhooks):
                        signed_at = SystemClock().now()  # the receiver checks it against its own clock
                        sender.post(send.notice, send.address or "", send.secret, signed_at)
                    else:
                        sender.send(send.notice, send.address or "")
                except (DeliveryFailed, ValueError) as error:
                    with guard:
                        reason = down.setdefault(send.receiver, str(error)[:500])
            results.append((send, reason, None if reason else self.ledger.clock.now()))
        return results

    def _still_to_remind(self, notice: Notice, today: date) -> bool:
        still = self._read(
            wallet_id(notice.enterprise_number).hex, partial(derive.still_to_remind, notice=notice, today=today)
        )
        return bool(still)

    def _outcome(self, send: Send, error: str | None, sent_at: datetime | None, now: datetime) -> Outcome:
        notice, attempts = send.notice, send.attempts
        if error is None:
            return notice.id, "delivered", attempts, None, None, _iso(sent_at or now), send.address
        if attempts >= self.settings.notice_max_attempts:
            log.warning("notice %s parked after %d attempts: %s", notice.id, attempts, error)
            return notice.id, "failed", attempts, None, error, None, send.address
        after = now + backoff(attempts, self.settings.notice_retry_seconds, self.rng)
        return notice.id, "pending", attempts, _iso(after), error, None, send.address

    def _address(self, notice: Notice) -> str | None:
        if notice.party == derive.ENTERPRISE:
            wallet = wallet_id(canonical_enterprise_number(notice.enterprise_number)).hex
            return self._read(wallet, lambda state: state.contact_email)
        return derive.address_now(notice.party, notice.recipient, notice.channel, None, self.store.directory)

    def address_now(self, row: dict[str, Any]) -> str | None:
        """Where a stored notice would go today (for a redelivery)."""
        return self._address(as_notice(row))


DERIVED = frozenset(
    name
    for name in ev.EVENT_TYPES
    if name
    not in (
        "WalletOpened",
        "SmeFiguresFiled",
        "ContactEmailChanged",
        "RefundExecuted",
        "RecoveryRepaid",
        "ServiceCompleted",
        "EventReversed",
    )
)
"""Event types that may make a notice (the others are skipped unread)."""
