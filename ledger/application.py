"""The ledger's Application: one method per use case, shaped get -> decide -> save.

Commands on one wallet are serialised in this process and guarded by the
store's version check across processes: a conflict re-runs the decision on
fresh state, so no command ever acts on stale state.

Nothing stored is used unchecked: a wallet starts from a snapshot only when the
snapshot's digest matches its content and the stored event at its version has
the hash it names (otherwise it is folded from its events); an idempotency
answer or a payment-reference claim is used only when its digest matches.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain
from typing import Any, TypeVar, cast
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ledger.audit.replay import replay_steps
from ledger.audit.verification import verify_rows
from ledger.domain import commands as c
from ledger.domain import events as ev
from ledger.domain.clock import Clock, SystemClock, brussels_date
from ledger.domain.errors import (
    AlreadyExists,
    Conflict,
    LedgerError,
    NotFound,
    StoreBusy,
    StoreUnavailable,
    VersionMismatch,
)
from ledger.domain.identifiers import (
    canonical_enterprise_number,
    compact_payment_reference,
    payment_reference,
    wallet_id,
)
from ledger.domain.lifecycle import Lapse
from ledger.domain.state import WalletState
from ledger.domain.wallet import Wallet, project_wallet
from ledger.idempotency import Idempotency, answer_record, check_first_answer
from ledger.storage import DEFAULT_DATABASE_URL, SQLITE_MODULE, persistence_env
from ledger.storage.log import notifications
from ledger.storage.mapper import OrjsonTranscoder, PydanticMapper
from ledger.storage.records import (
    IdempotencyRecorded,
    PaymentReferenceClaimed,
    Record,
    RecordUnverifiable,
    checked_record,
    claim_id,
    reference_id,
)
from ledger.storage.snapshots import WalletSnapshot
from ledger.storage.topics import stored_topic
from ledger.storage.writer import GroupCommit, WriterTurn
from ledger.summaries import application_summary, wallet_summary

T = TypeVar("T")
APPLICATION_COMMANDS: dict[type[c.Command], Callable[[Wallet, str, Any, ev.Actor, datetime], Any]] = {
    c.ConfirmApplication: Wallet.confirm,
    c.RefuseApplication: Wallet.refuse,
    c.DepositOwnShare: Wallet.deposit_own_share,
    c.TopUpSubsidy: Wallet.top_up,
    c.OrderPayout: Wallet.order_payout,
    c.ExecutePayout: Wallet.execute_payout,
    c.CompleteService: Wallet.complete,
    c.StopProject: Wallet.stop,
    c.RepayRecovery: Wallet.repay_recovery,
    c.ExecuteRefund: Wallet.execute_refund,
}
"""Each command on an application and the wallet's use case that decides it
(a reversal, :class:`c.ReverseEvent`, first reads the event it names)."""
MAX_ATTEMPTS = 20
log = logging.getLogger("kmo_ledger.ledger")


@dataclass(frozen=True)
class LapseReport:
    enterprise_number: str
    application_id: str
    rule: str
    deadline: date


class KmoLedger(Application[UUID]):
    """Wallets of the KMO-portefeuille: every euro in or out is an event."""

    name = "kmo_ledger"
    snapshotting_intervals = {Wallet: 100}
    snapshot_class = WalletSnapshot
    env = {
        "AGGREGATE_CACHE_MAXSIZE": "2000",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
        "MAPPER_TOPIC": get_topic(PydanticMapper),
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
    }

    def __init__(self, database_url: str | None = None, clock: Clock | None = None, env: dict | None = None):
        settings = persistence_env(database_url or DEFAULT_DATABASE_URL)
        settings.update(env or {})
        super().__init__(env=settings)
        self.clock = clock or SystemClock()
        self._locks = [threading.RLock() for _ in range(256)]
        # SQLite has one writer at a time: writers of every process take turns
        # (see WriterTurn) instead of meeting in SQLite's sleeping busy handler
        sqlite = settings["PERSISTENCE_MODULE"] == SQLITE_MODULE
        self.writer_turn = WriterTurn(settings.get("SQLITE_DBNAME")) if sqlite else None
        self.commits = GroupCommit(self.recorder.insert_events, self.writer_turn)

    def save(self, *objs: Wallet | Record) -> None:  # type: ignore[override]  # wallets and records only
        """Write the new events of wallets and records in ONE transaction
        (shared with saves of other threads at the same moment: GroupCommit),
        through the library's mapper and recorder.

        This is the library's own save without its generic collection (runtime
        Protocol checks on every object and event) and without the recordings
        and follower notifications nobody here reads: on a command that was a
        third of the Python time. The saved wallet goes into the cache at its
        new version, and a snapshot is taken from it every 100 events."""
        collected = [(obj, obj.collect_events()) for obj in objs]
        stored = [self.mapper.to_stored_event(event) for _obj, events in collected for event in events]
        if not stored:
            return
        self.commits.write(stored)
        cache = self.repository.cache
        for obj, events in collected:
            if isinstance(obj, Wallet):
                if cache is not None:
                    cache.put(obj.id, obj)
                self._snapshot_if_due(obj, len(events))

    def close(self) -> None:
        super().close()
        if self.writer_turn is not None:
            self.writer_turn.close()

    def construct_transcoder(self) -> OrjsonTranscoder:
        return OrjsonTranscoder()

    def _snapshot_if_due(self, wallet: Wallet, saved: int) -> None:
        """Snapshot from the wallet just saved with ``saved`` new events (it is
        at that version already), instead of the library's reload from the store."""
        interval = self.snapshotting_intervals[Wallet]
        if self.snapshots is None:
            return
        if wallet.version // interval > (wallet.version - saved) // interval:
            snapshot = [WalletSnapshot.take(wallet)]
            if self.writer_turn is None:
                self.snapshots.put(snapshot)
            else:
                with self.writer_turn:
                    self.snapshots.put(snapshot)

    # ------------------------------------------------------------------ machinery

    def _lock(self, aggregate_id: UUID) -> threading.RLock:
        return self._locks[aggregate_id.int % len(self._locks)]

    def _forget(self, aggregate_id: UUID) -> None:
        cache = self.repository.cache
        if cache is not None:
            try:
                cache.get(aggregate_id, evict=True)
            except KeyError:
                pass

    def _event_hash(self, aggregate_id: UUID, version: int) -> str | None:
        """The hash of the wallet's stored event at ``version``, read from its row (None: not stored)."""
        rows = self.recorder.select_events(aggregate_id, gt=version - 1, lte=version)
        if not rows:
            return None
        hash_ = orjson.loads(rows[0].state).get("hash")
        return hash_ if isinstance(hash_, str) else None

    def _snapshot_usable(self, snapshot: WalletSnapshot) -> bool:
        """Whether ``snapshot`` may start the wallet: its digest matches its content
        and the stored event at its version has the hash its state names (the
        snapshot's own checks, :func:`ledger.storage.snapshots.snapshot_problem`).
        A snapshot that fails is not used, and that is logged in one line.

        A snapshot taken before snapshots carried a digest is not used either (a
        missing digest cannot be told from a removed one; checking it costs the
        fold that ignoring it costs): its wallet is folded from its events until
        its next snapshot, sealed, is taken. ``kmo-ledger verify`` compares every
        snapshot, old or new, with a fold of the events."""
        problem = snapshot.problem(self._event_hash(snapshot.originator_id, snapshot.originator_version))
        if problem is None:
            return True
        level = logging.INFO if snapshot.digest is None else logging.WARNING
        log.log(
            level,
            "snapshot of wallet %s at version %d not used, %s: folded from the events",
            snapshot.originator_id,
            snapshot.originator_version,
            problem,
        )
        return False

    def _project(self, wallet: Wallet | None, events: Iterable[Any]) -> Wallet | None:
        """The repository's projector: :func:`project_wallet`, from a snapshot only
        when it passes its check (:meth:`_snapshot_usable`), else from every event."""
        if wallet is not None:
            return project_wallet(wallet, events)
        stream = iter(events)
        first = next(stream, None)
        if first is None:
            return None
        if not isinstance(first, WalletSnapshot):
            return project_wallet(None, chain([first], stream))
        if self._snapshot_usable(first):
            return project_wallet(first.mutate(None), stream)
        return project_wallet(None, self.events.get(first.originator_id))

    def _wallet(self, aggregate_id: UUID, fresh: bool = True) -> Wallet:
        """The wallet; ``fresh=False`` takes this process's cached copy as it is
        (a command's save still fails if another process wrote in between)."""
        if not fresh and self.repository.cache is not None:
            try:
                return cast(Wallet, self.repository.cache.get(aggregate_id))
            except KeyError:
                pass
        try:
            return self.repository.get(aggregate_id, projector_func=self._project)
        except AggregateNotFoundError:
            raise NotFound("no wallet for this enterprise number") from None

    def _answered(self, idempotency: Idempotency | None) -> None:
        if idempotency is not None:
            check_first_answer(self.recorder, idempotency)

    @staticmethod
    def _receipt(idempotency: Idempotency | None, result: Any, now: datetime) -> list[Record]:
        return [] if idempotency is None else [answer_record(idempotency, result, now)]

    def answer_once(self, idempotency: Idempotency, produce: Callable[[], Any]) -> tuple[int, Any]:
        """For work across wallets (the deadline run): the first answer is stored
        right after the work, in a transaction of its own; a retry gets it back
        (:class:`AlreadyAnswered`). A retry whose first answer was lost runs the
        work again, which is safe for work that is idempotent by nature."""
        self._answered(idempotency)
        result = produce()
        record = answer_record(idempotency, result, self.clock.now())
        try:
            self.save(record)
        except IntegrityError:
            self._answered(idempotency)  # another process answered first: that answer stands
        answer = cast(IdempotencyRecorded, record.event)
        return answer.status, answer.body

    def _execute(
        self,
        enterprise_number: str,
        decide: Callable[[Wallet, datetime], T],
        *,
        if_match: int | None = None,
        idempotency: Idempotency | None = None,
        extra: Callable[[Wallet, T, datetime], list[Record]] | None = None,
    ) -> T:
        """Get the wallet, decide, save its events (with any receipt) in one transaction.

        The first attempt decides on this process's cached wallet and looks up no
        receipt: the store's (id, version) key refuses a save on stale state or
        under an answered Idempotency-Key. Any refusal or conflict is then decided
        again carefully: first answer looked up, wallet read fresh, so no command
        acts, or is refused, on stale state."""
        aggregate_id = wallet_id(canonical_enterprise_number(enterprise_number))
        for attempt in range(MAX_ATTEMPTS):
            careful = attempt > 0
            if careful:
                self._answered(idempotency)
            with self._lock(aggregate_id):
                wallet = self._wallet(aggregate_id, fresh=careful)
                try:
                    if if_match is not None and if_match != wallet.version:
                        raise VersionMismatch(
                            f"the wallet is at version {wallet.version}, not {if_match}: read it again"
                        )
                    now = self.clock.now()
                    result = decide(wallet, now)
                    records = (extra(wallet, result, now) if extra else []) + self._receipt(idempotency, result, now)
                    if wallet.pending_events or records:
                        self.save(wallet, *records)
                    return result
                except IntegrityError:
                    self._forget(aggregate_id)
                    continue
                except (StoreBusy, StoreUnavailable):
                    self._forget(aggregate_id)
                    raise  # the wait for the store was spent already: no second one
                except LedgerError:
                    self._forget(aggregate_id)
                    if careful:
                        raise
                    continue
                except BaseException:
                    self._forget(aggregate_id)
                    raise
        raise Conflict("the wallet kept changing under this command; nothing was recorded, try again")

    # ------------------------------------------------------------------ enterprise

    def open_wallet(self, command: c.OpenWallet, actor: ev.Actor, idempotency: Idempotency | None = None) -> Wallet:
        """Open a wallet; the same enterprise twice is refused (``already_exists``)."""
        number = canonical_enterprise_number(command.enterprise_number)
        aggregate_id = wallet_id(number)
        self._answered(idempotency)
        with self._lock(aggregate_id):
            now = self.clock.now()
            wallet = Wallet.open(aggregate_id, command, actor, now)
            try:
                self.save(wallet, *self._receipt(idempotency, wallet, now))
            except IntegrityError:
                self._answered(idempotency)
                raise AlreadyExists(f"a wallet for enterprise {number} exists already") from None
            return wallet

    def change_contact_email(self, en: str, command: c.ChangeContactEmail, actor: ev.Actor, **options: Any) -> Wallet:
        def decide(wallet: Wallet, now: datetime) -> Wallet:
            wallet.change_contact_email(command, actor, now)
            return wallet

        return self._execute(en, decide, **options)

    def file_sme_figures(self, en: str, command: c.FileSmeFigures, actor: ev.Actor, **options: Any) -> Wallet:
        def decide(wallet: Wallet, now: datetime) -> Wallet:
            wallet.file_sme_figures(command, actor, now)
            return wallet

        return self._execute(en, decide, **options)

    # ------------------------------------------------------------------ applications

    def submit_application(
        self, en: str, command: c.SubmitApplication, actor: ev.Actor, **options: Any
    ) -> tuple[Wallet, str]:
        """Submit an application with a payment reference no other application has."""

        tries = 0

        def decide(wallet: Wallet, now: datetime) -> tuple[Wallet, str]:
            nonlocal tries
            seed = f"{wallet.id}/{wallet.state.next_sequence}"
            attempt = 0
            reference = payment_reference(seed)
            # A clash is rare: the first try lets the store's key catch it; a retry looks.
            while tries and claim_id(reference) in self.repository:
                attempt += 1
                reference = payment_reference(seed, attempt)
            tries += 1
            application = wallet.submit(command, reference, actor, now)
            return wallet, application.application_id

        def claim(wallet: Wallet, result: tuple[Wallet, str], now: datetime) -> list[Record]:
            application = wallet.state.applications[result[1]]
            return [
                Record.made(
                    PaymentReferenceClaimed(
                        originator_id=claim_id(application.payment_reference),
                        timestamp=now,
                        reference=application.payment_reference,
                        enterprise_number=wallet.state.enterprise_number,
                        application_id=application.application_id,
                    )
                )
            ]

        return self._execute(en, decide, extra=claim, **options)

    def _on_application(self, en: str, application_id: str, act: Callable[[Wallet, datetime], Any], **options: Any):
        def decide(wallet: Wallet, now: datetime) -> tuple[Wallet, Any]:
            wallet.application(application_id)
            return wallet, act(wallet, now)

        return self._execute(en, decide, **options)

    def handle(
        self, en: str, application_id: str, command: c.Command, actor: ev.Actor, **options: Any
    ) -> tuple[Wallet, Any]:
        """Decide ``command`` on one application of the wallet (:data:`APPLICATION_COMMANDS`
        names the wallet's use case for each kind of command); returns the wallet and
        what the use case answers: the new order's id for a payout order, ``stopped``
        or ``recovery_issued`` for a stop, otherwise None."""
        if isinstance(command, c.ReverseEvent):
            reversal = command

            def act(wallet: Wallet, now: datetime) -> Any:
                originals = list(self.events.get(wallet.id, gt=reversal.sequence - 1, lte=reversal.sequence))
                if not originals or not isinstance(originals[0], ev.BankMovement):
                    raise NotFound(f"event {reversal.sequence} is not a money event of this application")
                return wallet.reverse(application_id, originals[0], reversal, actor, now)

        else:
            use_case = APPLICATION_COMMANDS[type(command)]

            def act(wallet: Wallet, now: datetime) -> Any:
                return use_case(wallet, application_id, command, actor, now)

        return self._on_application(en, application_id, act, **options)

    # ------------------------------------------------------------------ deadlines

    def wallet_ids_with_applications(self) -> Iterator[UUID]:
        """Every wallet that ever had an application, from the notification log."""
        seen: set[UUID] = set()
        for notification in notifications(self, [stored_topic(ev.ApplicationSubmitted)]):
            if notification.originator_id not in seen:
                seen.add(notification.originator_id)
                yield notification.originator_id

    def run_deadlines(self, actor: ev.Actor = ev.SYSTEM, wallet_ids: Iterator[UUID] | None = None) -> list[LapseReport]:
        """Apply every deadline passed at the clock's moment; returns what lapsed or closed."""
        reports: list[LapseReport] = []
        for aggregate_id in wallet_ids if wallet_ids is not None else self.wallet_ids_with_applications():
            wallet = self._wallet(aggregate_id)
            if not wallet.due_lapses(brussels_date(self.clock.now())):
                continue
            lapses: list[Lapse] = self._execute(
                wallet.state.enterprise_number, lambda w, now: w.apply_deadlines(actor, now)
            )
            reports += [
                LapseReport(wallet.state.enterprise_number, lapse.application_id, lapse.rule, lapse.deadline)
                for lapse in lapses
            ]
        return reports

    # ------------------------------------------------------------------ reads

    def get_wallet(self, enterprise_number: str) -> Wallet:
        aggregate_id = wallet_id(canonical_enterprise_number(enterprise_number))
        with self._lock(aggregate_id):
            try:
                return self.repository.get(aggregate_id, projector_func=self._project)
            except AggregateNotFoundError:
                raise NotFound(f"no wallet for enterprise {enterprise_number}") from None
            except BaseException:
                self._forget(aggregate_id)
                raise

    def wallet_state(self, aggregate_id: UUID) -> WalletState:
        """The wallet's current state, by its aggregate id."""
        return self._wallet(aggregate_id).state

    def read_wallet(self, aggregate_id: UUID, read: Callable[[WalletState], T]) -> T:
        """``read`` of the wallet's current state, under the wallet's lock: a
        reader in another thread (the notifier) never sees a command's events
        half applied to the cached wallet, nor folds new ones into it meanwhile."""
        with self._lock(aggregate_id):
            try:
                return read(self._wallet(aggregate_id).state)
            except BaseException:
                self._forget(aggregate_id)
                raise

    def wallet_summary(self, enterprise_number: str) -> dict[str, Any]:
        wallet = self.get_wallet(enterprise_number)
        with self._lock(wallet.id):
            return wallet_summary(wallet.state, wallet.version, brussels_date(self.clock.now()))

    def application_summary(self, enterprise_number: str, application_id: str) -> dict[str, Any]:
        wallet = self.get_wallet(enterprise_number)
        with self._lock(wallet.id):
            return application_summary(wallet.application(application_id))

    def wallet_events(self, enterprise_number: str, as_of: date | None = None) -> list[ev.WalletEvent]:
        """The wallet's events in order; ``as_of`` keeps those with a business date up to it."""
        aggregate_id = wallet_id(canonical_enterprise_number(enterprise_number))
        events = self._stored_events(aggregate_id)
        if not events:
            raise NotFound(f"no wallet for enterprise {enterprise_number}")
        if as_of is not None:
            events = [e for e in events if e.business_date <= as_of]
        return events

    def _stored_events(self, aggregate_id: UUID, **bounds: Any) -> list[ev.WalletEvent]:
        return cast(list[ev.WalletEvent], list(self.events.get(aggregate_id, **bounds)))

    def replay(self, enterprise_number: str, as_of: date) -> dict[str, Any]:
        """The wallet as it stood at the end of ``as_of``, under the rules recorded then.

        Starts from the latest snapshot whose events all lie on or before ``as_of``
        (every event it holds would pass the date filter) and that passes its
        check (:meth:`_snapshot_usable`), then folds the later events dated on or
        before ``as_of``."""
        aggregate_id = wallet_id(canonical_enterprise_number(enterprise_number))
        start = None
        for snapshot in self.snapshots.get(aggregate_id, desc=True) if self.snapshots else ():
            snapshot = cast(WalletSnapshot, snapshot)
            latest = snapshot.state.get("latest_business_date")
            if latest is not None and date.fromisoformat(latest) <= as_of and self._snapshot_usable(snapshot):
                start = snapshot.mutate(None)
                break
        later = self._stored_events(aggregate_id, gt=start.version if start else None)
        state, version = (start.state, start.version) if start else (None, 0)
        for event, folded in replay_steps((e for e in later if e.business_date <= as_of), state):
            state, version = folded, event.originator_version
        if state is None:
            if not list(self.events.get(aggregate_id, lte=1)):
                raise NotFound(f"no wallet for enterprise {enterprise_number}")
            raise NotFound(f"the wallet of enterprise {enterprise_number} did not exist on {as_of}")
        return wallet_summary(state, version, as_of) | {"as_of": as_of.isoformat()}

    def payment_reference_owner(self, reference: str) -> PaymentReferenceClaimed | None:
        """The claim on a structured payment reference (None: nobody's), used only
        once it passes its checks: its digest matches its content, and the
        application it names was given this reference by its own submission in
        its wallet (claims stored before claims carried a digest are checked on
        the submission alone: it is in the wallet's hash chain). A claim that
        fails is ``record_unverifiable``."""
        compact = compact_payment_reference(reference)
        if compact is None:
            return None
        claim: PaymentReferenceClaimed | None = checked_record(
            self.recorder, PaymentReferenceClaimed, reference_id(compact), unsealed=True
        )
        if claim is None:
            return None
        try:
            wallet = self._wallet(wallet_id(canonical_enterprise_number(claim.enterprise_number)))
            application = wallet.state.applications.get(claim.application_id)
        except LedgerError:
            application = None
        if application is None or compact_payment_reference(application.payment_reference) != compact:
            log.warning(
                "stored PaymentReferenceClaimed %s not used: its wallet does not confirm it", claim.originator_id
            )
            raise RecordUnverifiable(
                f"the claim on payment reference {reference} names application {claim.application_id} of "
                f"{claim.enterprise_number}, whose submission did not give it that reference: run kmo-ledger verify"
            )
        return claim

    # ------------------------------------------------------------------ verification

    def stored_rows(self, aggregate_id: UUID) -> list[tuple[int, str, dict[str, Any]]]:
        """The wallet's rows exactly as stored (no validation), for verification."""
        rows = []
        for stored in self.recorder.select_events(aggregate_id):
            rows.append((stored.originator_version, stored.topic.rsplit(":", 1)[-1], orjson.loads(stored.state)))
        return rows

    def verify_wallet(self, enterprise_number: str) -> list[str]:
        """Problems found in the wallet's hash chain and invariants (empty: all holds)."""
        aggregate_id = wallet_id(canonical_enterprise_number(enterprise_number))
        rows = self.stored_rows(aggregate_id)
        if not rows:
            raise NotFound(f"no wallet for enterprise {enterprise_number}")
        return verify_rows(aggregate_id, rows)
