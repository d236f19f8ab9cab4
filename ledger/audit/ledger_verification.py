"""Ledger-wide verification: every wallet's stored rows checked (chain and
invariants, :mod:`ledger.audit.verification`), every snapshot of it against a
fresh fold of its events and the chain heads an export sealed; every stored
record (idempotency answers, payment-reference claims) against its digest, and
every claim against the submission that made it.

Any changed, missing or reordered stored event is named by wallet and
sequence, a changed snapshot by wallet and the version it was taken at, a
changed record by its id. Wallets are read a chunk at a time
(:data:`CHUNK_WALLETS`), so a ledger of a million events is verified in the
memory of a chunk, and 48 bytes an application for the claims (:class:`Submissions`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import orjson

from ledger.audit.progress import Progress, no_progress
from ledger.audit.replay import replay_steps
from ledger.audit.tree_verification import remember_verified, verify_tree
from ledger.audit.verification import check_rows, screened
from ledger.domain import events as ev
from ledger.domain.errors import LedgerError, NotFound
from ledger.domain.identifiers import canonical_enterprise_number, compact_payment_reference, wallet_id
from ledger.storage.log import LogRows, event_type, no_cycle_collection, notifications
from ledger.storage.records import IdempotencyRecorded, PaymentReferenceClaimed, record_problem
from ledger.storage.snapshots import snapshot_digest, snapshotted
from ledger.storage.topics import WALLET_EVENT_TOPICS, stored_topic
from ledger.storage.wallet_rows import Places, reads_by_sql, wallets_rows

_SEQUENCE = re.compile(r"^event (\d+)")


def verify_ledger(
    ledger: Any,
    enterprise: str | None = None,
    anchors: dict[UUID, list[tuple]] | None = None,
    read_models: Callable[[Any], ReadModelsCheck] | None = None,
    progress: Progress = no_progress,
    public_key: Any = None,
    since_checkpoint: bool = False,
    database_url: str | None = None,
    workers: int | None = None,
    kept: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Every wallet (or only ``enterprise``'s) verified, with the chain heads in
    ``anchors`` (see :func:`ledger.audit.export.load_anchors`); ``read_models``
    prepares the comparison of the read models with a fresh fold when every
    wallet is verified: the fold is made from the rows the wallet checks read
    (each row is read and decoded once), and the views are read in the
    wallets' worker processes, when there are any, after the wallets.
    Returns ``{"ok", "wallets", "events", "records", "problems", "projections"}``,
    each problem named by enterprise number, wallet id and sequence (a snapshot's:
    the version it was taken at; a record's: None, the record named in the text).
    Idempotency answers belong to no wallet: they are checked when every wallet is.

    With every wallet, the ledger-wide Merkle tree too (``tree``:
    :func:`ledger.audit.tree_verification.verify_tree`, checkpoints signed by
    ``public_key``); ``since_checkpoint``: the tree from the last checkpoint
    verified, and only the wallets written since; ``kept``: checkpoints the
    auditor kept elsewhere (as ``GET /v1/checkpoints/latest`` served them),
    held against the log as the stored ones are, so deleting the stored
    checkpoints with the records they sign hides nothing.

    Given the ledger's ``database_url``, a ledger of :data:`PARALLEL_FROM`
    wallets or more is checked by ``workers`` processes (default: one per
    CPU), each on its own chunks of wallets with its own connection, while
    this process recomputes the tree, taking their results between its batches."""
    anchors = dict(anchors or {})
    tree: dict[str, Any] = {"checked": False, "reason": "checked only when every wallet is verified"}
    if enterprise:
        only = canonical_enterprise_number(enterprise)
        wallet_ids = [wallet_id(only)]
        anchors = {k: v for k, v in anchors.items() if k == wallet_ids[0]}
    else:
        only = None

    def the_tree(between: Callable[[], None] = lambda: None) -> dict[str, Any]:
        return verify_tree(
            ledger,
            public_key,
            since_checkpoint,
            labels=lambda found: _label_of(ledger, found),
            kept=kept,
            between=between,
        )

    comparison = read_models(ledger) if read_models is not None and not enterprise else None
    try:
        odd: list[dict[str, Any]] = []
        if not enterprise and since_checkpoint:
            tree = the_tree()
            from_position = tree["from_position"]
            wallet_ids = sorted(tree["touched"], key=str) if from_position else list(all_wallet_ids(ledger, odd))
        elif not enterprise:
            wallet_ids = list(all_wallet_ids(ledger, odd))
        # every wallet read anyway: the read models' fresh fold is made of the same rows
        every_wallet = not enterprise and not (since_checkpoint and tree["from_position"])
        folding = comparison.folding() if comparison and every_wallet and reads_by_sql(ledger.recorder) else None
        checks = WalletChecks(ledger, wallet_ids, anchors, database_url, workers, folding)
        with checks:
            if comparison is not None:
                comparison.start(checks.pool)
            report: dict[str, Any] = {"ok": True, "wallets": 0, "events": 0, "problems": odd}
            with progress("verifying wallets", len(wallet_ids)) as advance:
                results = WalletResults(report, checks, anchors, enterprise, comparison, advance)
                # the tree meanwhile, taking each wallet's results as they come (held,
                # a million events' would cost this process 40 MB)
                if not enterprise and not since_checkpoint:
                    tree = the_tree(between=lambda: results.take(wait=False))
                results.take()
            submissions = results.submissions
            tree.pop("touched", None)
            mark = tree.pop("mark", None)
            report["problems"][:0] = tree.pop("problems", [])
            report["tree"] = tree
            if since_checkpoint and tree.get("from_position"):
                report["records"] = {
                    "checked": False,
                    "reason": "checked by a full verify (without --since-checkpoint)",
                }
                findings: list[dict[str, Any]] = []
            else:
                report["records"], findings = check_records(ledger, submissions, only)
            del submissions  # one entry per application: not held while the read models are compared
            report["problems"] += findings
            for aggregate_id, heads in anchors.items():  # sealed in the archive, gone from the ledger
                label = heads[0][2] or str(aggregate_id)
                for problem in check_anchors([], heads):
                    report["problems"].append(_finding(label, aggregate_id, problem))
            if enterprise:
                report["projections"] = {
                    "checked": False,
                    "reason": "checked only when every wallet is verified",
                    "differences": [],
                }
            elif comparison is None:
                report["projections"] = {"checked": False, "reason": "no read models were given", "differences": []}
            else:
                report["projections"] = comparison.report()
    finally:
        if comparison is not None:
            comparison.close()
    report["problems"] += [
        {"enterprise_number": None, "wallet_id": None, "sequence": None, "problem": f"projections: {difference}"}
        for difference in report["projections"]["differences"]
    ]
    report["ok"] = not report["problems"]
    if report["ok"] and not enterprise:
        remember_verified(ledger, mark)
    return report


Folding = tuple[Callable[..., Any], tuple[Any, ...]]
"""A fold the wallet checks make of the rows they read: a function called, in
whichever process read them, with a chunk's wallets as (wallet id in hex,
rows, each row's (notification id, stored topic)) and then these arguments."""


class ReadModelsCheck(Protocol):
    """The read models' comparison with a fresh fold (``read_models`` of
    :func:`verify_ledger`), made with the views caught up; then, in order:
    :meth:`folding` (when the wallet checks read every wallet), :meth:`start`,
    :meth:`add` of each chunk's fold, :meth:`report`; :meth:`close` always."""

    def folding(self) -> Folding | None:
        """The fresh fold, taken on by the wallet checks (None: nothing to fold)."""

    def start(self, executor: Executor | None) -> None:
        """Set the rest of the comparison going (in ``executor``'s spawned processes, when given)."""

    def add(self, folded: Any) -> None:
        """What :meth:`folding`'s function gave for one chunk of wallets."""

    def report(self) -> dict[str, Any]:
        """``{"checked", "differences"}`` (and ``"reason"`` when not checked), once done."""

    def close(self) -> None:
        """Let go of what the comparison holds; after :meth:`report`, or instead of it on an error."""


PARALLEL_FROM = 500
"""Wallets from which the checks are shared between processes (below, starting them costs more)."""
CHUNK_WALLETS = 100


@dataclass(slots=True)
class CheckedWallet:
    """One wallet's checks, as a worker process sends them back."""

    aggregate_id: UUID
    label: str | None
    events: int
    problems: list[str]
    submissions: list[tuple[str, tuple[str | None, Any]]]


def check_wallet(
    ledger: Any,
    aggregate_id: UUID,
    rows: list[tuple[int, str, Any]],
    heads: Sequence[tuple],
    snapshotted: set[UUID] | None,
) -> CheckedWallet:
    """One wallet's checks on its stored ``rows``; ``snapshotted``: the wallets
    with a snapshot, when known (a wallet without one skips the query for its snapshots)."""
    label = wallet_label(rows, aggregate_id)
    submitted = [
        (str(state.get("application_id")), (label, state.get("payment_reference")))
        for _v, t, state in rows
        if t == "ApplicationSubmitted"
    ]
    has_snapshots = snapshotted is None or aggregate_id in snapshotted
    problems = wallet_problems(ledger, aggregate_id, rows, heads, has_snapshots)
    return CheckedWallet(aggregate_id, label, len(rows), problems, submitted)


class WalletResults:
    """The wallets' checks taken into ``report`` as they come (each chunk's fold
    to ``comparison``), and the submissions seen."""

    def __init__(
        self,
        report: dict[str, Any],
        checks: WalletChecks,
        anchors: dict[UUID, list[tuple]],
        enterprise: str | None,
        comparison: ReadModelsCheck | None,
        advance: Callable[[int], None],
    ):
        self.report, self.checks, self.anchors, self.enterprise = report, checks, anchors, enterprise
        self.folded = comparison.add if comparison is not None else None
        self.advance = advance
        self.submissions = Submissions(checks.ledger)

    def take(self, wait: bool = True) -> None:
        """Every result (``wait``: every one still to come; else those ready now)."""
        report, anchors, submissions = self.report, self.anchors, self.submissions
        for checked in self.checks.each(self.folded, wait):
            if not checked.events and self.enterprise and checked.aggregate_id not in anchors:
                raise NotFound(f"no wallet for enterprise {self.enterprise}")
            anchors.pop(checked.aggregate_id, None)
            for application_id, submitted in checked.submissions:
                submissions.add(application_id, checked.aggregate_id, submitted)
            report["problems"] += [_finding(checked.label, checked.aggregate_id, p) for p in checked.problems]
            report["wallets"] += 1
            report["events"] += checked.events
            self.advance(1)


class WalletChecks:
    """Each wallet checked, in the order given: here, one by one as they are
    read, or (given the store's ``url``, with enough wallets) in worker
    processes, started on entering, so this process can do other work
    meanwhile; with ``folding``, each chunk's rows folded too."""

    def __init__(
        self,
        ledger: Any,
        wallet_ids: list[UUID],
        anchors: dict[UUID, list[tuple]],
        url: str | None,
        workers: int | None,
        folding: Folding | None = None,
    ):
        self.ledger, self.wallet_ids, self.anchors, self.folding = ledger, wallet_ids, anchors, folding
        self.workers = workers or os.cpu_count() or 1
        self.parallel = url is not None and self.workers > 1 and len(wallet_ids) >= PARALLEL_FROM
        self.url = url or ""
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[Future] = []
        self.done_here = False

    def __enter__(self) -> WalletChecks:
        if self.parallel:
            context = multiprocessing.get_context("spawn")  # a fresh interpreter: no connection or lock of ours
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_open_worker, initargs=(self.url,)
            )
            ids = self.wallet_ids
            for chunk in (ids[i : i + CHUNK_WALLETS] for i in range(0, len(ids), CHUNK_WALLETS)):
                heads = {k: self.anchors[k] for k in chunk if k in self.anchors}
                self.futures.append(self.pool.submit(_check_chunk, chunk, heads, self.folding))
        return self

    def each(self, folded: Callable[[Any], None] | None = None, wait: bool = True) -> Iterator[CheckedWallet]:
        """The wallets' checks not yet taken, in order (``wait`` False: only
        those a worker has finished; here, none); each chunk's fold (with
        ``folding``) given to ``folded``."""
        for checked, fold in self._chunks(wait):
            if folded is not None and self.folding is not None:
                folded(fold)
            yield from checked

    def _chunks(self, wait: bool) -> Iterator[tuple[list[CheckedWallet], Any]]:
        if not self.parallel:
            if not wait or self.done_here:
                return
            self.done_here = True
            with_snapshots = _with_snapshots(self.ledger)
            ids = self.wallet_ids
            for chunk in (ids[i : i + CHUNK_WALLETS] for i in range(0, len(ids), CHUNK_WALLETS)):
                yield check_chunk(self.ledger, chunk, self.anchors, with_snapshots, self.folding)
            return
        while self.futures and (wait or self.futures[0].done()):  # let go of each chunk's results once read
            yield self.futures.pop(0).result()

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _with_snapshots(ledger: Any) -> set[UUID] | None:
    """The wallets with a snapshot; None when the store cannot tell in one query (then every wallet's are read)."""
    return snapshotted(ledger.snapshots.recorder) if ledger.snapshots is not None else set()


_worker_ledger: Any = None
_worker_snapshotted: set[UUID] | None = None


def _open_worker(url: str) -> None:
    global _worker_ledger, _worker_snapshotted
    from ledger.application import KmoLedger

    _worker_ledger = KmoLedger(url, env={"CREATE_TABLE": "n"})
    _worker_snapshotted = _with_snapshots(_worker_ledger)


def _check_chunk(
    wallet_ids: list[UUID], anchors: dict[UUID, list[tuple]], folding: Folding | None
) -> tuple[list[CheckedWallet], Any]:
    return check_chunk(_worker_ledger, wallet_ids, anchors, _worker_snapshotted, folding)


def check_chunk(
    ledger: Any,
    wallet_ids: list[UUID],
    anchors: dict[UUID, list[tuple]],
    snapshotted: set[UUID] | None,
    folding: Folding | None = None,
) -> tuple[list[CheckedWallet], Any]:
    """:func:`check_wallet` of each wallet, their rows read in one query
    (without collecting cycles meanwhile: a decoded row is a tree of dicts,
    freed when its wallet is done, and collecting cost a third of the
    reading); then, with ``folding``, its function on the same rows (after the
    checks: a fold never changes what it reads, and the checks come first
    regardless). Returns the checks and what the fold gave (None without one)."""
    with no_cycle_collection():
        places: dict[UUID, Places] = {}
        rows = wallets_rows(ledger, wallet_ids, places if folding is not None else None)
        checked = [
            check_wallet(ledger, aggregate_id, rows[aggregate_id], anchors.get(aggregate_id, []), snapshotted)
            for aggregate_id in wallet_ids
        ]
        if folding is None:
            return checked, None
        function, arguments = folding
        return checked, function([(w.hex, rows[w], places[w]) for w in wallet_ids], *arguments)


def _label_of(ledger: Any, originator_id: str) -> str | None:
    """The enterprise number of the wallet ``originator_id`` names; None for a record."""
    try:
        rows = ledger.stored_rows(UUID(originator_id))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return wallet_label(rows, UUID(originator_id))


def all_wallet_ids(ledger: Any, odd: list[dict[str, Any]] | None = None) -> Iterator[UUID]:
    """Every wallet in the notification log, in order of its first stored
    event: every originator of a wallet event is a wallet, so a wallet whose
    opening event (or any other) was deleted is still verified, and its
    missing events named. The log is read as plain rows of four columns
    (:class:`~ledger.storage.log.LogRows`).

    A wallet event whose wallet id is not stored as the ledger stores ids (a
    row put in by hand; SQLite keeps any text) is named in ``odd``: the
    wallet's own rows are read by its id as the ledger writes it."""
    listed: set[str] = set()  # the wallets' ids in hex, as the ledger writes them
    odd_ids: set[str] = set()
    topics = set(WALLET_EVENT_TOPICS)
    read, last = LogRows(ledger.recorder, ("id", "originator_id", "originator_version", "topic")).read, 0
    while rows := read(last, 20_000):
        for _id, originator, version, topic in rows:
            if topic not in topics or originator in listed:
                continue
            try:
                wallet: UUID | None = UUID(originator)
            except (TypeError, ValueError):
                wallet = None
            if wallet is None or wallet.hex != originator:
                if originator in odd_ids:
                    continue
                odd_ids.add(originator)
                if odd is not None:
                    odd.append(_odd_id(wallet, originator, version))
                if wallet is None or wallet.hex in listed:
                    continue
            listed.add(wallet.hex)
            yield wallet
        last = rows[-1][0]


def _odd_id(wallet: UUID | None, originator: Any, version: Any) -> dict[str, Any]:
    problem = (
        f"event {version} is stored under the wallet id {originator!r}, not written as the ledger writes "
        "ids: the row was put in by hand"
    )
    if wallet is None:
        return {"enterprise_number": None, "wallet_id": None, "sequence": None, "problem": problem}
    return _finding(None, wallet, problem)


class Submissions:
    """Every application's submission, as the payment-reference claims are held
    against it, in 48 bytes an application (a million-event ledger has about
    160,000): its id's 16 bytes, the wallet's 16 bytes and a 16-byte digest of
    its enterprise number and compact reference, kept in a bytearray per two
    leading bytes of the id. The number and reference themselves are read
    again from the wallet only to name a claim that disagrees with them. (An
    application id that is not a UUID, only ever a forged one, is kept as text.)"""

    def __init__(self, ledger: Any):
        self.ledger = ledger
        self.buckets: dict[bytes, bytearray] = {}
        self.other: dict[str, bytes] = {}

    def add(self, application_id: str, wallet: UUID, submitted: tuple[str | None, Any]) -> None:
        key, found = _application_key(application_id), wallet.bytes + _fingerprint(*submitted)
        if isinstance(key, str):
            self.other[key] = found
            return
        bucket = self.buckets.setdefault(key[:2], bytearray())
        at = _record_at(bucket, key)
        if at is None:
            bucket += key + found
        else:  # submitted again (a forged copy): the last one stands, as the chain would read it
            bucket[at + 16 : at + 48] = found

    def _found(self, application_id: str) -> bytes | None:
        """The wallet's 16 bytes and the digest, as added."""
        key = _application_key(application_id)
        if isinstance(key, str):
            return self.other.get(key)
        bucket = self.buckets.get(key[:2], bytearray())
        at = _record_at(bucket, key)
        return None if at is None else bytes(bucket[at + 16 : at + 48])

    def get(self, application_id: str) -> tuple[str | None, Any] | None:
        """The enterprise number and reference the application was submitted with (read from its wallet)."""
        found = self._found(application_id)
        if found is None:
            return None
        wallet = UUID(bytes=found[:16])
        rows = self.ledger.stored_rows(wallet)
        submitted = None
        for _v, type_name, state in rows:  # the last submission of the id stands, as :meth:`add` kept it
            if type_name == "ApplicationSubmitted" and str(state.get("application_id")) == application_id:
                submitted = (wallet_label(rows, wallet), state.get("payment_reference"))
        return submitted

    def confirm(self, claim: dict[str, Any]) -> str | None:
        """What is wrong with ``claim`` against its application's submission (:func:`_unconfirmed`), or None."""
        application_id = str(claim.get("application_id"))
        found = self._found(application_id)
        if found is not None and found[16:] == _fingerprint(claim.get("enterprise_number"), claim.get("reference")):
            return None
        return _unconfirmed(claim, None if found is None else self.get(application_id))


def _record_at(bucket: bytearray, key: bytes) -> int | None:
    """Where the 48-byte record of ``key`` starts in ``bucket``, if there."""
    at = bucket.find(key)
    while at >= 0 and at % 48:  # found inside another record: look on
        at = bucket.find(key, at + 1)
    return None if at < 0 else at


def _application_key(application_id: str) -> bytes | str:
    try:
        parsed = UUID(application_id)
    except ValueError:
        return application_id
    return parsed.bytes if str(parsed) == application_id else application_id


def _fingerprint(enterprise: str | None, reference: Any) -> bytes:
    """What a claim must agree with: the enterprise number and the compact reference."""
    return hashlib.blake2b(orjson.dumps([enterprise, _compact(reference)]), digest_size=16).digest()


def check_records(
    ledger: Any, submissions: Submissions, enterprise: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every payment-reference claim (:func:`claim_problems`) and, when every
    wallet is verified (``enterprise`` None), every idempotency answer
    (:func:`sealed_records`): a summary of what was checked, and the findings.
    An answer stored before answers carried a digest cannot be checked: it is
    counted, not a finding (stored rows never change, so it could never be
    fixed), and it is never replayed (:mod:`ledger.idempotency`)."""
    summary: dict[str, Any] = {"checked": True, "claims": 0, "answers": 0, "answers_without_digest": 0}
    findings = []
    for claim, problem in claim_problems(ledger, submissions, enterprise):
        summary["claims"] += 1
        if problem:
            findings.append(_record_finding(claim, problem))
    if enterprise:
        summary |= {"checked": False, "reason": "idempotency answers are checked only when every wallet is verified"}
        return summary, findings
    for answer, problem in sealed_records(ledger, IdempotencyRecorded):
        summary["answers"] += 1
        if problem == UNSEALED:
            summary["answers_without_digest"] += 1
        elif problem is not None:
            findings.append(_record_finding(answer, problem))
    return summary, findings


def claim_problems(ledger: Any, submissions: Submissions, enterprise: str | None = None):
    """Every payment-reference claim (of ``enterprise`` only, when given) with
    what is wrong with it, or None: it is sealed as :func:`sealed_records`
    says, and the application it names was given that reference by its
    submission, in the wallet the claim names (``submissions``: every
    submission stored, :class:`Submissions`). A claim whose
    submission is no longer stored points at a deleted event."""
    for claim, problem in sealed_records(ledger, PaymentReferenceClaimed):
        if enterprise is not None and claim.get("enterprise_number") != enterprise:
            continue
        if problem is None or problem == UNSEALED:  # an unsealed claim is judged on its submission alone
            problem = submissions.confirm(claim)
        yield claim, problem


def _unconfirmed(claim: dict[str, Any], submitted: tuple[str | None, Any] | None) -> str | None:
    if submitted is None:
        return (
            f"application {claim.get('application_id')} was given payment reference {claim.get('reference')}, "
            "but its ApplicationSubmitted event is missing"
        )
    enterprise, reference = submitted
    if enterprise != claim.get("enterprise_number") or _compact(reference) != _compact(claim.get("reference")):
        return (
            f"the claim on payment reference {claim.get('reference')} names application "
            f"{claim.get('application_id')} of {claim.get('enterprise_number')}, but that application "
            f"was submitted with reference {reference} in the wallet of {enterprise}: the claim was changed"
        )
    return None


UNSEALED = "it was stored before records carried a digest"


def sealed_records(ledger: Any, record_class: type):
    """Every stored record of ``record_class``, in the order stored, decoded (with
    its id as ``_id`` and its type as ``_type``), with why its digest does not
    vouch for it, or None. A record without a digest is :data:`UNSEALED` when
    stored before the first one of its kind with a digest (records stored
    before digests existed), and a finding after it: its digest was removed."""
    sealed_seen = False
    for notification in notifications(ledger, [stored_topic(record_class)]):
        record = _decoded(notification)
        named = {"_id": str(notification.originator_id), "_type": record_class.__name__}
        if record is None:
            yield named, "it cannot be read"
            continue
        problem = record_problem(
            notification.originator_id, notification.originator_version, event_type(notification.topic), record
        )
        if record.get("digest") is None:
            problem = (
                "it carries no digest, though it was stored after records carried one: its digest was removed"
                if sealed_seen
                else UNSEALED
            )
        else:
            sealed_seen = True
        yield record | named, problem


def _decoded(notification: Any) -> dict[str, Any] | None:
    try:
        content = orjson.loads(notification.state)
    except orjson.JSONDecodeError:
        return None
    return content if isinstance(content, dict) else None


def _compact(reference: Any) -> str | None:
    return compact_payment_reference(reference) if isinstance(reference, str) else None


def _record_finding(record: dict[str, Any], problem: str) -> dict[str, Any]:
    """A record's problem: a claim is named by the wallet it names too; an answer by its key and caller."""
    if record["_type"] == "IdempotencyRecorded":
        what = f"idempotency answer {record['_id']} (key {record.get('key')!r} of caller {record.get('scope')!r})"
        return {"enterprise_number": None, "wallet_id": None, "sequence": None, "problem": f"{what}: {problem}"}
    enterprise = record.get("enterprise_number")
    try:
        aggregate_id: str | None = str(wallet_id(canonical_enterprise_number(enterprise)))
    except (LedgerError, TypeError, ValueError):
        enterprise, aggregate_id = None, None
    what = f"payment-reference claim {record['_id']}"
    return {
        "enterprise_number": enterprise,
        "wallet_id": aggregate_id,
        "sequence": None,
        "problem": f"{what}: {problem}",
    }


def wallet_label(rows: list[tuple[int, str, dict[str, Any]]], aggregate_id: UUID) -> str | None:
    """The wallet's enterprise number, from its opening or else an application's project number."""
    for _version, type_name, state in rows:
        if type_name == "WalletOpened" and isinstance(state.get("enterprise_number"), str):
            return state["enterprise_number"]
        if type_name == "ApplicationSubmitted" and isinstance(state.get("project_number"), str):
            parts = state["project_number"].split("-")
            if len(parts) == 3:
                return parts[1]
    return None


def wallet_problems(
    ledger: Any,
    aggregate_id: UUID,
    rows: list[tuple[int, str, dict[str, Any]]],
    heads: Sequence[tuple] = (),
    has_snapshots: bool = True,
) -> list[str]:
    """The problems of one wallet: its chain, its invariants (as ``KmoLedger.verify_wallet``),
    every snapshot of it and any sealed chain heads.

    A wallet without snapshots is first screened on plain data
    (:func:`~ledger.audit.verification.screened`); only one the screen cannot
    vouch for is read through the models and folded (what names its problems)."""
    if not has_snapshots and screened(aggregate_id, rows):
        return check_anchors(rows, heads)
    problems, events = check_rows(aggregate_id, rows)
    return problems + check_snapshots(ledger, aggregate_id, rows, events) + check_anchors(rows, heads)


def check_snapshots(
    ledger: Any,
    aggregate_id: UUID,
    rows: list[tuple[int, str, dict[str, Any]]],
    events: list[ev.WalletEvent] | None,
) -> list[str]:
    """Every snapshot of the wallet, one finding at most each, named by the
    version it was taken at: the event at that version must be stored with the
    hash the snapshot names (a history cut short after it, or rewritten under
    it, disagrees); its state must be a fresh fold of the events up to that
    version (``events``, in stored order; not judged on a history that cannot
    be folded, whose problem is named already); and its digest, when it has
    one (snapshots taken before digests have none), must match its content.
    Snapshots are read one at a time and folded to in one pass, so a long
    wallet is checked in the memory of one snapshot."""
    if ledger.snapshots is None:
        return []
    hashes: dict[int, Any] | None = None
    fold = _FoldTo(events)
    problems = []
    for snapshot in _snapshots(ledger.snapshots.recorder, aggregate_id):
        if hashes is None:  # most wallets have no snapshot
            hashes = {version: state.get("hash") for version, _type, state in rows}
        version = snapshot.originator_version
        try:
            content = orjson.loads(snapshot.state)
        except orjson.JSONDecodeError:
            content = None
        state = content.get("state") if isinstance(content, dict) else None
        if not isinstance(content, dict) or not isinstance(state, dict):
            problems.append(f"event {version}: the snapshot taken at version {version} cannot be read")
            continue
        if hashes.get(version) is None:
            last = rows[-1][0] if rows else 0
            problems.append(
                f"event {version} is missing: a snapshot was taken at version {version}, the last stored is {last}"
            )
            continue
        if hashes[version] != state.get("last_hash"):
            problems.append(f"event {version} differs from the snapshot taken at it: the history was rewritten")
            continue
        folded = fold.to(version)
        if folded is not None and folded != state:
            problems.append(
                f"event {version}: the snapshot taken at version {version} differs from a fold of events 1 to "
                f"{version} ({'; '.join(_differences(state, folded))}): the snapshot was changed"
            )
        elif content.get("digest") is not None and content["digest"] != snapshot_digest(
            aggregate_id, version, str(content.get("topic")), state
        ):
            problems.append(
                f"event {version}: the snapshot taken at version {version} was changed: "
                "its digest does not match its content"
            )
    return problems


def _snapshots(recorder: Any, aggregate_id: UUID):
    """The wallet's stored snapshots, oldest first, one row in memory at a time."""
    after = None
    while batch := recorder.select_events(aggregate_id, gt=after, limit=1):
        yield batch[0]
        after = batch[0].originator_version


class _FoldTo:
    """The wallet's events folded through the one fold in stored order (as the
    wallet is loaded), forward only: :meth:`to` a version gives the state there
    as a snapshot stores it, or None when the events cannot be folded that far
    (a hole, or an event that cannot apply: both named by the chain and
    invariant checks)."""

    def __init__(self, events: list[ev.WalletEvent] | None):
        self.steps = replay_steps(events) if events else None
        self.version = 0
        self.state: Any = None

    def to(self, version: int) -> dict[str, Any] | None:
        try:
            while self.steps is not None and self.version < version:
                event, self.state = next(self.steps)
                self.version = event.originator_version
        except Exception:  # StopIteration, or an event that cannot apply
            self.steps = None
        if self.version != version or self.state is None:
            return None
        return self.state.model_dump(mode="json")


def _differences(stored: Any, folded: Any, path: str = "", limit: int = 3) -> list[str]:
    """Where a snapshot's state and the fold differ: up to ``limit`` paths with both values."""
    if isinstance(stored, dict) and isinstance(folded, dict):
        found: list[str] = []
        for key in sorted(set(stored) | set(folded), key=str):
            if stored.get(key) != folded.get(key):
                found += _differences(stored.get(key), folded.get(key), f"{path}.{key}" if path else str(key))
            if len(found) >= limit:
                break
        return found[:limit]
    return [f"{path or 'state'}: {_short(stored)} in the snapshot, {_short(folded)} folded"]


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."


def check_anchors(rows: list[tuple[int, str, dict[str, Any]]], heads: Sequence[tuple]) -> list[str]:
    """Each head (sequence, hash, enterprise, year) sealed by an export must still be stored."""
    if not heads:
        return []
    hashes = {version: state.get("hash") for version, _type, state in rows}
    problems = []
    for sequence, digest, _enterprise, year in heads:
        if sequence not in hashes:
            problems.append(f"event {sequence} is missing: the {year} archive sealed it as a chain head")
        elif hashes[sequence] != digest:
            problems.append(f"event {sequence} differs from the chain head sealed in the {year} archive")
    return problems


def _finding(enterprise: str | None, aggregate_id: UUID, problem: str) -> dict[str, Any]:
    """A problem as reported: the wallet's enterprise number and id, and the sequence it names."""
    match = _SEQUENCE.match(problem)
    return {
        "enterprise_number": enterprise,
        "wallet_id": str(aggregate_id),
        "sequence": int(match.group(1)) if match else None,
        "problem": problem,
    }
