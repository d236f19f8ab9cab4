"""The ledger-wide Merkle tree recomputed from the stored log and held against
the signed checkpoints: what a wallet's hash chain alone cannot see (its last
event deleted, the log's newest records gone, records swapped between
wallets, a changed idempotency answer).

- Every checkpoint's signature is checked with the public key given (else
  with the one stored beside it: that catches a changed checkpoint, not a
  forger who replaced the key too; give the key you trust), and each
  names the one before it and is consistent with it (a consistency proof
  from the stored tree, checked against both signed roots).
- The tree is recomputed from the log, leaf by leaf, and each checkpoint's
  root compared with the recomputed root at its size; a log shorter than a
  checkpoint is a truncated log.
- The recomputed leaves are compared with the stored tree's: the first
  position where they differ is named (position = leaf index, from 0), with
  the record the tree recorded there and the one the log holds now.

Incremental (``since_checkpoint``): the tree's right edge at the last
checkpoint verified is kept (:mod:`ledger.storage.tree`), and only the log
after it is read; the records before it are counted, so one deleted since
then is still found (a changed one is found by a full run).

The log is read as plain rows (:class:`ledger.storage.log.LogRows`: the id and
the stored bytes; the record's id too for ``touched``), with the stored leaf
hashes beside them, :data:`READ_BATCH` at a time; only a batch where the two
part is read again through the library, to name the records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledger.audit import merkle
from ledger.audit.checkpoints import leaf_hash_and_kind, public_checkpoint, stored_subtrees
from ledger.audit.proofs import checkpoint_problem
from ledger.storage.log import LogRows, no_cycle_collection
from ledger.storage.tree import TreeTables, tree_tables

READ_BATCH = 5_000
"""Records of the log read per query while the tree is recomputed."""

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verify_tree(
    ledger: Any,
    public_key: Ed25519PublicKey | None,
    since_checkpoint: bool = False,
    labels: Callable[[str], str | None] = lambda _id: None,
    kept: Sequence[dict[str, Any]] = (),
    between: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``{"checked", "tree_size", "checkpoints", "from_position", "problems",
    "touched"}``: each problem names its ``position`` (None for a checkpoint's
    own fault), the wallet and sequence there when known; ``touched``: the
    wallets whose events were read (all, or those after the last verified
    checkpoint). ``kept``: signed checkpoints kept outside the store (each
    checked with ``public_key``, which must then be given, and its root
    compared with the log's at its size, like a stored one's). ``between``
    is called after each batch of the log (verification takes the wallet
    checks' results meanwhile)."""
    tables = tree_tables(ledger)
    rows = tables.checkpoints()
    problems: list[dict[str, Any]] = []
    report: dict[str, Any] = {"checked": True, "checkpoints": len(rows), "problems": problems}
    report["key"] = "given" if public_key is not None else "stored"
    start = _resume(tables, rows, ledger) if since_checkpoint else None
    first = start[0] if start else 0
    for before, row in zip([None, *rows], rows, strict=False):
        if start and row["number"] < start[3]:
            continue
        for problem in _checkpoint_problems(tables, before, row, public_key):
            problems.append(_problem(None, None, None, problem))
    if start and start[4]:
        problems.append(_problem(start[0], None, None, start[4]))
    frontier = merkle.Frontier(*(start[:2] if start else (0, ())))
    last = start[2] if start else 0
    held = list(rows)
    for outside in kept:
        refused = checkpoint_problem(outside, public_key) if public_key else "no public key was given to check it"
        if refused:
            size = outside.get("tree_size") if isinstance(outside, dict) else None
            problems.append(_problem(None, None, None, f"the checkpoint kept of size {size}: {refused}"))
        else:
            held.append(outside | {"number": "kept"})
    report["kept"] = len(kept)
    due = sorted((r for r in held if r["tree_size"] > frontier.size), key=lambda r: r["tree_size"])
    differs = None
    keep: tuple[int, int, str] | None = None
    latest = rows[-1] if rows else None
    read = LogRows(ledger.recorder, ("id", "originator_id", "state") if since_checkpoint else ("id", "state")).read
    touched_ids: set[str] = set()
    with no_cycle_collection():
        while records := read(last, READ_BATCH):
            at = frontier.size  # the position of the batch's first record
            hashed = [leaf_hash_and_kind(record[-1]) for record in records]
            leaves = [leaf for leaf, _event in hashed]
            if since_checkpoint:  # which wallets to check: only those written after the checkpoint
                touched_ids.update(record[1] for record, (_leaf, event) in zip(records, hashed, strict=True) if event)
            if differs is None:
                stored = tables.leaf_hashes(at, len(records))
                if stored != leaves[: len(stored)]:  # the same leaf hash is the same record: look closer only here
                    batch = ledger.recorder.select_notifications(records[0][0], len(records), stop=records[-1][0])
                    differs = _first_difference(at, batch, stored, tables, labels)
            stops = {r["tree_size"] for r in due} | ({latest["tree_size"]} if latest else set())
            done = 0
            for size in sorted(s for s in stops if at < s <= at + len(leaves)) + [at + len(leaves)]:
                frontier.extend(leaves[done : size - at])
                done = size - at
                while due and due[0]["tree_size"] == frontier.size:
                    row = due.pop(0)
                    if frontier.root().hex() != row["root_hash"]:  # named with a difference before its size only
                        before = differs if differs is not None and differs["position"] < frontier.size else None
                        problems.append(_mismatch(row, before))
                if latest is not None and frontier.size == latest["tree_size"]:
                    keep = (latest["number"], records[done - 1][0], ",".join(peak.hex() for peak in frontier.peaks))
            last = records[-1][0]
            between()
    touched = {UUID(hexed) for hexed in touched_ids}
    if differs is None:
        tail = tables.leaves(frontier.size, 1)
        if tail:
            differs = _missing(tail[0], labels)
    if differs is not None:
        problems.append(differs)
    for row in due:  # signed, but the log no longer reaches its size
        if differs is None or differs["position"] >= frontier.size:
            text = (
                f"position {frontier.size}: the log ends after {frontier.size} records, but checkpoint "
                f"{row['number']} signed {row['tree_size']} (at {row['timestamp']}): the log was truncated"
            )
            problems.append(_problem(frontier.size, None, None, text))
        else:
            problems.append(_mismatch(row, differs, f"the log holds {frontier.size} records, it signed "))
    report |= {"tree_size": frontier.size, "from_position": first, "touched": touched}
    report["mark"] = (keep, latest["tree_size"]) if keep is not None and latest is not None else None
    return report


def _first_difference(
    first: int,
    batch: list[Any],
    stored: list[bytes],
    tables: TreeTables,
    labels: Callable[[str], str | None],
) -> dict[str, Any] | None:
    """The finding at the first position of ``batch`` (notifications, from
    ``first``) whose leaf differs from the stored tree's, if its record is not
    the one recorded there."""
    for offset, (notification, recorded) in enumerate(zip(batch, stored, strict=False)):
        leaf, _event = leaf_hash_and_kind(bytes(notification.state))
        if leaf != recorded:
            position = first + offset
            found = _difference(position, notification, leaf, tables.leaves(position, 1)[0], labels)
            if found is not None:
                return found
    return None


def remember_verified(ledger: Any, mark: tuple | None) -> None:
    """Keep the tree's right edge at the latest checkpoint (``verify_tree``'s
    ``mark``) as the point the next ``--since-checkpoint`` run starts from: call
    it only when everything verified held."""
    if mark is not None:
        (number, notification_id, peaks), size = mark
        tree_tables(ledger).set_verified(number, size, notification_id, peaks, datetime.now(UTC).isoformat())


def _resume(tables: TreeTables, rows: list[dict[str, Any]], ledger: Any) -> tuple[int, tuple, int, int, str] | None:
    """(size, peaks, notification id, checkpoint number, problem) to go on from."""
    verified = tables.verified()
    if verified is None:
        return None
    number, size, notification_id, peaks = verified
    row = next((r for r in rows if r["number"] == number), None)
    if row is None or row["tree_size"] != size:
        return None
    hashes = tuple(bytes.fromhex(peak) for peak in peaks.split(",") if peak)
    problem = ""
    if merkle.Frontier(size, hashes).root().hex() != row["root_hash"]:
        return None
    counted = tables.records_up_to(ledger.recorder, notification_id)
    if counted != size:
        problem = (
            f"position {min(counted, size)}: the log holds {counted} records up to notification {notification_id}, "
            f"but {size} when checkpoint {number} was verified: records were deleted or added before it"
        )
    return size, hashes, notification_id, number, problem


def _checkpoint_problems(
    tables: TreeTables, before: dict[str, Any] | None, row: dict[str, Any], public_key: Ed25519PublicKey | None
) -> list[str]:
    """A checkpoint's signature (by ``public_key``, or else the key stored with
    it), its number (the one before it plus one), its link to the one before
    and its consistency with it."""
    what = f"checkpoint {row['number']} (tree size {row['tree_size']}, {row['timestamp']})"
    problems = []
    key = public_key or _stored_key(row["public_key"])
    problem = checkpoint_problem(public_checkpoint(row), key) if key else "its stored public key cannot be read"
    if problem:
        problems.append(f"{what}: {problem}")
    expected = before["number"] + 1 if before is not None else 1
    if row["number"] != expected:  # numbered without a gap, and signed since 2026-12-07
        problems.append(f"{what}: checkpoint {expected} is gone (numbers run from 1 without a gap)")
    if before is None:
        if row["previous_size"] is not None:
            problems.append(f"{what} names a checkpoint before it of size {row['previous_size']}, which is gone")
        return problems
    if (row["previous_size"], row["previous_root"]) != (before["tree_size"], before["root_hash"]):
        problems.append(f"{what} does not name checkpoint {before['number']} as the one before it")
    if row["tree_size"] < before["tree_size"]:
        problems.append(f"{what} is smaller than checkpoint {before['number']} before it")
    elif before["tree_size"] > 0:
        try:
            proof = merkle.consistency_proof(before["tree_size"], row["tree_size"], stored_subtrees(tables))
        except merkle.MerkleError:
            proof = []
        roots = bytes.fromhex(before["root_hash"]), bytes.fromhex(row["root_hash"])
        if not merkle.verify_consistency(before["tree_size"], row["tree_size"], proof, *roots):
            problems.append(
                f"{what} is not consistent with checkpoint {before['number']} before it: "
                "the log was rewritten between them, or the stored tree was"
            )
    return problems


def _stored_key(hexed: str) -> Ed25519PublicKey | None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(hexed))
    except ValueError:
        return None


def _named(originator_id: Any, version: int, notification_id: int, labels: Callable[[str], str | None]) -> str:
    label = labels(str(originator_id))
    if label is None:
        return f"record {originator_id} version {version} (notification {notification_id})"
    return f"wallet {label} event {version} (notification {notification_id})"


def _problem(position: int | None, originator_id: Any, sequence: int | None, text: str, label: str | None = None):
    return {
        "enterprise_number": label,
        "wallet_id": str(originator_id) if originator_id is not None and label is not None else None,
        "sequence": sequence if label is not None else None,
        "position": position,
        "problem": text,
    }


def _difference(
    position: int, notification: Any, hashed: bytes, stored: tuple | None, labels: Callable[[str], str | None]
) -> dict[str, Any] | None:
    """The finding at ``position``, if the log's record there is not the one the tree recorded."""
    if stored is None:
        return None
    _index, notification_id, originator_id, version, leaf = stored
    if (originator_id, version) == (str(notification.originator_id), notification.originator_version):
        if leaf == hashed:
            return None
        text = (
            f"position {position}: {_named(originator_id, version, notification_id, labels)} differs from the "
            "record the tree recorded there: it was changed"
        )
    else:
        now = _named(notification.originator_id, notification.originator_version, notification.id, labels)
        text = (
            f"position {position}: the tree recorded {_named(originator_id, version, notification_id, labels)} "
            f"here, the log now holds {now}: a record was deleted, inserted or moved"
        )
    return _problem(position, originator_id, version, text, labels(originator_id))


def _missing(stored: tuple, labels: Callable[[str], str | None]) -> dict[str, Any]:
    position, notification_id, originator_id, version, _leaf = stored
    text = (
        f"position {position}: the log ends here, but the tree recorded "
        f"{_named(originator_id, version, notification_id, labels)} and any after it: they were deleted"
    )
    return _problem(position, originator_id, version, text, labels(originator_id))


def _mismatch(row: dict[str, Any], differs: dict[str, Any] | None, shorter: str = "") -> dict[str, Any]:
    where = (
        f"first difference at position {differs['position']}"
        if differs
        else "the stored tree agrees with the log, so it was rewritten too"
    )
    what = f"{shorter}{row['tree_size']}" if shorter else "its signed root differs from the log's"
    return _problem(
        differs["position"] if differs else None,
        None,
        None,
        f"checkpoint {row['number']} (tree size {row['tree_size']}, {row['timestamp']}) does not match the log: "
        f"{what} ({where})",
    )
