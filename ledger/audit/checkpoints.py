"""The ledger-wide Merkle tree and its signed checkpoints (RFC 6962 / 9162).

- **Leaves.** Every stored record in notification order, whatever its type,
  is one leaf: its position in that order is its leaf index. The leaf input
  of a wallet event is the 32 bytes of its ``hash``; of a record without one
  (an idempotency answer, a payment-reference claim), the SHA-256 of its
  stored bytes (:func:`leaf_input`).
- **The stored tree.** :func:`catch_up` appends the log's new records to the
  tree's tables (:mod:`ledger.storage.tree`) with every perfect subtree they
  complete, a chunk per transaction; a proof then reads one stored hash per
  level (:func:`inclusion`, :func:`consistency`).
- **Checkpoints.** :func:`take_checkpoint` signs (Ed25519) the tree's size,
  root and time, the checkpoint's number and the size and root of the one
  before it (:func:`linked_message`; checkpoints taken before 2026-12-07
  signed size, root and time only, :func:`checkpoint_message`); ``verify``
  checks the numbers run from 1 without a gap and each checkpoint names the
  one stored before it and is consistent with it, so a checkpoint deleted
  from between two is found. The key pair is made on first
  use (:func:`signing_key`): the private key owner-only, the public key
  beside it (``.pub``) and served at ``GET /v1/checkpoints/public-key``.
- The server takes one every :data:`DEFAULT_EVERY` events and at least daily
  (:class:`Checkpointer`); ``kmo-ledger checkpoint`` on demand.

The signed message is :func:`linked_message`: what ``GET
/v1/checkpoints/latest`` shows is all an auditor needs to check it
(:func:`signed_messages`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import orjson

from ledger.audit import merkle
from ledger.domain.errors import NotFound, ValidationFailed
from ledger.storage import PRIVATE_FILE, private_folder
from ledger.storage.log import LogRows
from ledger.storage.tree import TreeTables, tree_tables

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from ledger.application import KmoLedger

log = logging.getLogger("kmo_ledger.checkpoints")

KEY_FILE_VARIABLE = "KMO_LEDGER_CHECKPOINT_KEY_FILE"
KEYS_FILE_VARIABLE = "KMO_LEDGER_API_KEYS_FILE"
EVERY_VARIABLE = "KMO_LEDGER_CHECKPOINT_EVERY"
DEFAULT_KEY_FILE = Path("var") / "checkpoint-key.pem"
DEFAULT_EVERY = 10_000
"""The server takes a checkpoint once the tree has grown by this many records."""
MAX_AGE = timedelta(days=1)
"""... and at least this often while it runs."""
CHUNK = 2000
"""Records appended to the stored tree per transaction (a writer waits no longer than that)."""
MESSAGE_HEADER = "kmo-ledger checkpoint v1"
LINKED_HEADER = "kmo-ledger checkpoint v2"


class CheckpointError(ValidationFailed):
    """No checkpoint, tree size or proof for what was asked."""


# ------------------------------------------------------------------ leaves


def leaf_input_and_kind(state: bytes) -> tuple[bytes, bool]:
    """A stored record's leaf input (API.md) and whether it is a wallet event's:
    a wallet event's is the 32 bytes of its ``hash``; any other record's the
    SHA-256 of its stored bytes. A row that cannot be read as an event (no
    JSON, no ``previous_hash``, no 64-digit ``hash``) is hashed as stored bytes."""
    try:
        content = orjson.loads(state)
    except orjson.JSONDecodeError:
        content = None
    if isinstance(content, dict) and "previous_hash" in content:
        hashed = content.get("hash")
        if isinstance(hashed, str) and len(hashed) == 64:
            try:
                return bytes.fromhex(hashed), True
            except ValueError:
                pass
    return hashlib.sha256(state).digest(), False


def leaf_input(state: bytes) -> bytes:
    return leaf_input_and_kind(state)[0]


def leaf_hash_and_kind(state: bytes) -> tuple[bytes, bool]:
    """RFC 6962's leaf hash of a stored record, and whether it is a wallet event."""
    data, event = leaf_input_and_kind(state)
    return merkle.leaf_hash(data), event


def leaf_hash_of(state: bytes) -> bytes:
    """RFC 6962's leaf hash of a stored record."""
    return merkle.leaf_hash(leaf_input(state))


# ------------------------------------------------------------------ the stored tree


def catch_up(ledger: KmoLedger, tables: TreeTables | None = None) -> int:
    """Append every record of the log not yet in the stored tree; its size after.

    A chunk is read first, then written in one transaction that is the tree's
    only writer; when another process wrote meanwhile, the chunk is read again."""
    tables = tables or tree_tables(ledger)
    log = LogRows(ledger.recorder, ("id", "originator_id", "originator_version", "state"))
    while True:
        size, last = tables.size()
        rows = log.read(last, CHUNK)
        if not rows:
            return size
        leaves = [
            (size + offset, notification_id, str(UUID(originator_id)), version, leaf_hash_of(state))
            for offset, (notification_id, originator_id, version, state) in enumerate(rows)
        ]
        with tables.write() as writing:
            if tables.size(writing) == (size, last):
                append_leaves(tables, writing, leaves)


def append_leaves(tables: TreeTables, writing: Any, leaves: list[tuple[int, int, str, int, bytes]]) -> None:
    """Store ``leaves`` (index, notification id, record id, version, leaf hash),
    the next after the stored tree's, with every perfect subtree they complete,
    in the transaction ``writing``."""
    size = leaves[0][0]
    peaks = [_stored(tables, level, index, writing) for level, index in peak_positions(size)]
    tables.add_leaves(writing, leaves)
    tables.add_nodes(writing, _completed(size, peaks, [leaf[4] for leaf in leaves]))


def _completed(size: int, peaks: list[bytes], leaf_hashes: list[bytes]) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees of two leaves or more that appending ``leaf_hashes``
    to the tree of ``size`` leaves (right edge ``peaks``) completes."""
    nodes: list[tuple[int, int, bytes]] = []

    def keep(level: int, index: int, hashed: bytes) -> None:
        if level:
            nodes.append((level, index, hashed))

    merkle.Frontier(size, peaks, on_subtree=keep).extend(leaf_hashes)
    return nodes


def peak_positions(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees covering a tree of ``size`` leaves, largest first."""
    positions, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            positions.append((level, start >> level))
            start += 1 << level
    return positions


def _stored(tables: TreeTables, level: int, index: int, writing: Any = None) -> bytes:
    hashed = tables.perfect(level, index, writing)
    if hashed is None:
        raise merkle.MerkleError(f"the stored tree has no subtree {index} at level {level}")
    return hashed


T = TypeVar("T")


def prefetched(tables: TreeTables, compute: Callable[[merkle.PerfectSubtrees], T]) -> T:
    """``compute(perfect)`` with every stored hash it reads fetched in one go:
    which subtrees a proof reads depends on sizes and indexes only, so a first
    run with stand-in hashes names them, one query per table reads them, and
    the second run is answered from those (a proof: two round trips, not one
    per level)."""
    wanted: list[tuple[int, int]] = []

    def note(level: int, index: int) -> bytes:
        wanted.append((level, index))
        return bytes(merkle.HASH_SIZE)

    compute(note)
    found = tables.perfect_many(wanted)

    def read(level: int, index: int) -> bytes:
        hashed = found.get((level, index))
        if hashed is None:
            raise merkle.MerkleError(f"the stored tree has no subtree {index} at level {level}")
        return hashed

    return compute(read)


def stored_subtrees(tables: TreeTables) -> merkle.PerfectSubtrees:
    """``perfect(level, index)`` read from the stored tree: one primary-key read."""
    return lambda level, index: _stored(tables, level, index)


# ------------------------------------------------------------------ keys and signatures


def key_file(configured: Path | None = None, keys_file: Path | None = None) -> Path:
    """The private key's file: ``configured``, else ``KMO_LEDGER_CHECKPOINT_KEY_FILE``,
    else ``checkpoint-key.pem`` beside the API keys file (``keys_file``, or
    ``KMO_LEDGER_API_KEYS_FILE``), else ``var/checkpoint-key.pem``."""
    if configured is not None:
        return configured
    if os.environ.get(KEY_FILE_VARIABLE):
        return Path(os.environ[KEY_FILE_VARIABLE])
    keys = keys_file or (Path(os.environ[KEYS_FILE_VARIABLE]) if os.environ.get(KEYS_FILE_VARIABLE) else None)
    return keys.parent / DEFAULT_KEY_FILE.name if keys is not None else DEFAULT_KEY_FILE


def checkpoint_every() -> int:
    """``KMO_LEDGER_CHECKPOINT_EVERY``: records between the server's checkpoints (default :data:`DEFAULT_EVERY`)."""
    raw = os.environ.get(EVERY_VARIABLE, "")
    if not raw:
        return DEFAULT_EVERY
    if not raw.isdigit() or int(raw) < 1:
        raise CheckpointError(f"{EVERY_VARIABLE} is a number of records, 1 or more, not {raw!r}")
    return int(raw)


def public_key_file(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


def signing_key(path: Path) -> Ed25519PrivateKey:
    """The checkpoint key at ``path``, made on first use: the private key (PKCS#8
    PEM) owner-only (0600), the public key (PEM) beside it as ``<path>.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not path.exists():
        key = Ed25519PrivateKey.generate()
        private_folder(path.parent)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        except FileExistsError:  # made meanwhile by another process: use theirs
            pass
        else:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            log.info("made the checkpoint signing key %s", path)
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as error:
        raise CheckpointError(f"{path} is not an Ed25519 private key in PEM: {error}") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key")
    public = public_key_file(path)
    pem_public = public_pem(loaded.public_key())
    if not public.exists() or public.read_bytes() != pem_public:
        public.write_bytes(pem_public)
    return loaded


def public_pem(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def raw_public(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(raw: bytes) -> str:
    """A public key's id: the lowercase hex SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(raw).hexdigest()


def public_key_document(public: Ed25519PublicKey) -> dict[str, str]:
    """The public key as ``GET /v1/checkpoints/public-key`` serves it."""
    raw = raw_public(public)
    return {"algorithm": "Ed25519", "key_id": key_id(raw), "public_key": raw.hex(), "pem": public_pem(public).decode()}


def checkpoint_message(tree_size: int, root_hash: str, timestamp: str, signer: str) -> bytes:
    """The bytes a checkpoint taken before 2026-12-07 signed: the fields of
    ``GET /v1/checkpoints/latest`` but the signature and the checkpoint before, one per line."""
    return (
        f"{MESSAGE_HEADER}\ntree_size {tree_size}\nroot_hash {root_hash}\ntimestamp {timestamp}\nkey_id {signer}\n"
    ).encode()


def linked_message(
    number: int,
    tree_size: int,
    root_hash: str,
    timestamp: str,
    signer: str,
    previous_size: int | None,
    previous_root: str | None,
) -> bytes:
    """The bytes a checkpoint's signature covers: every field of ``GET
    /v1/checkpoints/latest`` but the signature, one per line: its number
    (checkpoints are numbered from 1 without a gap, so the one before it is
    named exactly, though several alike may follow each other), then the
    size and root of the checkpoint before it last (``none`` for the first)."""
    size = "none" if previous_size is None else previous_size
    return (
        f"{LINKED_HEADER}\nnumber {number}\ntree_size {tree_size}\nroot_hash {root_hash}\ntimestamp {timestamp}\n"
        f"key_id {signer}\nprevious_size {size}\nprevious_root {previous_root or 'none'}\n"
    ).encode()


LINKED_FIELDS = ("number", "previous_size", "previous_root")
"""What a checkpoint taken since 2026-12-07 signs besides :data:`~ledger.audit.proofs.CHECKPOINT_FIELDS`."""


def signed_messages(checkpoint: dict[str, Any]) -> list[bytes]:
    """What the signature of ``checkpoint`` (as served, fields checked) may cover:
    :func:`linked_message` when it carries :data:`LINKED_FIELDS`, else (taken
    before 2026-12-07) :func:`checkpoint_message`. A linked checkpoint never
    passes as an older one: its signature is over the linked message only."""
    fields = (checkpoint["tree_size"], checkpoint["root_hash"], str(checkpoint["timestamp"]), checkpoint["key_id"])
    older = checkpoint_message(*fields)
    if any(field not in checkpoint for field in LINKED_FIELDS):
        return [older]
    previous = checkpoint["previous_size"], checkpoint["previous_root"]
    return [linked_message(checkpoint["number"], *fields, *previous), older]


def public_checkpoint(row: dict[str, Any]) -> dict[str, Any]:
    """A stored checkpoint as served: ``{"tree_size", "root_hash", "timestamp",
    "key_id", "signature", "number", "previous_size", "previous_root"}``."""
    fields = ("tree_size", "root_hash", "timestamp", "key_id", "signature", *LINKED_FIELDS)
    return {k: row[k] for k in fields}


# ------------------------------------------------------------------ taking checkpoints


def _moment(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def take_checkpoint(
    ledger: KmoLedger,
    key: Ed25519PrivateKey,
    due: Callable[[dict[str, Any] | None, int, datetime], bool] | None = None,
    tables: TreeTables | None = None,
) -> dict[str, Any] | None:
    """Catch the stored tree up with the log and sign its size and root, unless
    ``due(latest checkpoint, tree size, now)`` says no (judged inside the
    tree's one writer, so of processes racing only one takes it). The row
    stored, or None."""
    tables = tables or tree_tables(ledger)
    catch_up(ledger, tables)
    with tables.write() as writing:
        size, _last = tables.size(writing)
        latest = tables.latest_checkpoint(writing)
        now = ledger.clock.now()
        if due is not None and not due(latest, size, now):
            return None
        root = merkle.root_at(size, lambda level, index: _stored(tables, level, index, writing)).hex()
        raw = raw_public(key.public_key())
        signer, timestamp = key_id(raw), _moment(now)
        previous_size, previous_root = (latest["tree_size"], latest["root_hash"]) if latest else (None, None)
        number = (latest["number"] if latest else 0) + 1
        message = linked_message(number, size, root, timestamp, signer, previous_size, previous_root)
        row = {
            "number": number,
            "tree_size": size,
            "root_hash": root,
            "timestamp": timestamp,
            "key_id": signer,
            "signature": key.sign(message).hex(),
            "previous_size": previous_size,
            "previous_root": previous_root,
            "public_key": raw.hex(),
        }
        tables.add_checkpoint(writing, row)
    log.info("checkpoint %d: %d records, root %s", row["number"], size, root)
    return row


def due_every(every: int, max_age: timedelta = MAX_AGE) -> Callable[[dict[str, Any] | None, int, datetime], bool]:
    """Due when the tree has grown by ``every`` records since the latest
    checkpoint, or that one is ``max_age`` old (or there is none and the log
    holds something)."""

    def due(latest: dict[str, Any] | None, size: int, now: datetime) -> bool:
        if latest is None:
            return size > 0
        if size - int(latest["tree_size"]) >= every:
            return True
        taken = datetime.fromisoformat(str(latest["timestamp"]).replace("Z", "+00:00"))
        return now - taken >= max_age

    return due


class Checkpointer:
    """The server's checkpoints, in a thread of its own: every ``interval``
    seconds the stored tree catches up with the log, and a checkpoint is taken
    when one is due (:func:`due_every`). Every worker process runs one; the
    tree's writer lock lets one of them take each checkpoint."""

    def __init__(self, ledger: KmoLedger, key: Path, every: int = DEFAULT_EVERY, interval: float = 5.0):
        self.ledger, self.key_path, self.every, self.interval = ledger, key, every, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kmo-checkpoints", daemon=True)

    def start(self) -> Checkpointer:
        signing_key(self.key_path)  # made at start, as the API keys are
        self._thread.start()
        return self

    def run_once(self) -> dict[str, Any] | None:
        return take_checkpoint(self.ledger, signing_key(self.key_path), due_every(self.every))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as error:  # a store that is down now may be back at the next turn
                reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
                log.warning(
                    "taking a checkpoint failed (%s: %s); trying again in %s s",
                    type(error).__name__,
                    reason,
                    self.interval,
                )
            self._stop.wait(self.interval)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


# ------------------------------------------------------------------ proofs from the store


def latest(ledger: KmoLedger) -> dict[str, Any]:
    """The latest checkpoint; :class:`NotFound` while none was taken."""
    found = tree_tables(ledger).latest_checkpoint()
    if found is None:
        raise NotFound("no checkpoint has been taken yet")
    return found


def _within_latest(ledger: KmoLedger, tree_size: int, what: str) -> int:
    newest = int(latest(ledger)["tree_size"])
    if tree_size > newest:
        raise CheckpointError(f"{what} {tree_size} is beyond the latest checkpoint's tree size {newest}")
    return newest


def inclusion(ledger: KmoLedger, originator_id: str, version: int, tree_size: int | None = None) -> dict[str, Any]:
    """The inclusion proof of the record ``(originator_id, version)`` in the
    tree of ``tree_size`` leaves (default: the latest checkpoint's):
    ``{"leaf_index", "tree_size", "leaf_hash", "proof", "root_hash"}``, hex."""
    tables = tree_tables(ledger)
    newest = _within_latest(ledger, tree_size or 0, "tree_size")
    size = newest if tree_size is None else tree_size
    leaf = tables.leaf_of(originator_id, version)
    if leaf is None:
        raise CheckpointError(f"event {version} is in no checkpoint yet (the latest holds {newest} records)")
    if leaf >= size:
        raise CheckpointError(f"event {version} is leaf {leaf}: a tree of {size} leaves does not hold it")
    proof, root, leaf_hash = prefetched(
        tables,
        lambda perfect: (
            merkle.inclusion_proof(leaf, size, perfect),
            merkle.root_at(size, perfect),
            perfect(0, leaf),
        ),
    )
    return {
        "leaf_index": leaf,
        "tree_size": size,
        "leaf_hash": leaf_hash.hex(),
        "proof": [hashed.hex() for hashed in proof],
        "root_hash": root.hex(),
    }


def consistency(ledger: KmoLedger, first: int, second: int) -> dict[str, Any]:
    """The consistency proof from the tree of ``first`` leaves to that of
    ``second``: ``{"from", "to", "proof"}``."""
    if first > second:
        raise CheckpointError(f"from ({first}) is after to ({second})")
    if first < 1:
        raise CheckpointError("from is a tree size of 1 or more: the empty tree has no consistency proof")
    _within_latest(ledger, second, "to")
    proof = prefetched(tree_tables(ledger), lambda perfect: merkle.consistency_proof(first, second, perfect))
    return {"from": first, "to": second, "proof": [hashed.hex() for hashed in proof]}


def hexes(values: Sequence[Any]) -> list[bytes] | None:
    """Hex strings as 32-byte hashes; None if one is not."""
    out = []
    for value in values:
        if not isinstance(value, str) or len(value) != 64:
            return None
        try:
            out.append(bytes.fromhex(value))
        except ValueError:
            return None
    return out
