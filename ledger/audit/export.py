"""Exports: a sealed archive of every event, one file per calendar year of
business date, that anyone can verify without this software.

The folder receives ``events-YYYY.jsonl`` (one JSON object per event:
enterprise number, wallet id, sequence, type, business date, recorded_at and
the state exactly as stored, hash and previous hash included),
``manifest.json`` (each file's SHA-256, byte and event counts, each wallet's
chain head per year, and the ledger-wide tree's checkpoints with their public
keys), ``tree-leaves.jsonl`` (every stored record's leaf in notification
order), ``merkle.py`` (:mod:`ledger.audit.merkle`, standard library only) and
the standalone verifier the caller names (``scripts/archive_verifier.py``),
which checks all of it.

Exporting removes nothing (RULES.md section 7). Every file it writes is new
and readable by its owner only; it never writes through a link or over a
file (:class:`NewFiles`). The log is read in batches up to the position it had
when the export began, so a million events export in the memory of one batch
plus one line per wallet and year in the manifest.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import orjson

from ledger.audit import merkle
from ledger.audit.checkpoints import leaf_input_and_kind, public_checkpoint
from ledger.audit.progress import Progress, no_progress
from ledger.storage import PRIVATE_FILE
from ledger.storage.log import event_type, notifications
from ledger.storage.topics import WALLET_EVENT_TOPICS
from ledger.storage.tree import tree_tables

FORMAT = "kmo-ledger-archive/2"
"""/2 since 2026-12-07: the checkpoints sign their number and the one before them."""
MANIFEST = "manifest.json"
LEAVES = "tree-leaves.jsonl"
MERKLE_SOURCE = Path(merkle.__file__)
"""Copied into every archive: the verifier recomputes the roots with the ledger's own code."""
CANONICAL_FORM = (
    "hash = SHA-256 of the UTF-8 JSON of the stored state without 'hash', plus 'originator_id' "
    "(the wallet id), 'originator_version' (the sequence) and 'type'; keys sorted, no whitespace, "
    "non-ASCII unescaped (orjson.dumps with OPT_SORT_KEYS)"
)


@dataclass
class YearFile:
    """One year's file being written: its digest, counts and each wallet's chain head."""

    path: Path
    stream: BinaryIO
    digest: Any = field(default_factory=hashlib.sha256)
    events: int = 0
    size: int = 0
    wallets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self, line: bytes, wallet_id: str, enterprise: str | None, sequence: int, digest: str) -> None:
        self.stream.write(line)
        self.digest.update(line)
        self.events += 1
        self.size += len(line)
        head = self.wallets.get(wallet_id)
        if head is None:
            self.wallets[wallet_id] = {
                "enterprise_number": enterprise,
                "events": 1,
                "first_sequence": sequence,
                "last_sequence": sequence,
                "head": digest,
            }
        else:
            head["events"] += 1
            if sequence > head["last_sequence"]:
                head["last_sequence"], head["head"] = sequence, digest


def write_archive(ledger: Any, out: Path, verifier: Path, progress: Progress = no_progress) -> dict[str, Any]:
    """Stream the wallet events into one file per business year beside a copy of
    ``verifier``; returns the manifest written. Every file is new and its owner's
    alone (:class:`NewFiles`): a name taken in ``out``, even by a link, stops the
    export with a ``FileExistsError`` naming it, and the export leaves none of
    its files behind."""
    files = NewFiles(out)
    try:
        return _write_archive(ledger, files, verifier, progress)
    except BaseException:
        files.remove()
        raise


def _write_archive(ledger: Any, files: NewFiles, verifier: Path, progress: Progress) -> dict[str, Any]:
    through = ledger.recorder.max_notification_id() or 0
    year_files: dict[str, YearFile] = {}
    enterprises: dict[str, str] = {}
    first_date = last_date = None
    leaves = LeafFile(files.folder / f"{LEAVES}.partial", files.create(f"{LEAVES}.partial"))
    wallet_topics = set(WALLET_EVENT_TOPICS)
    try:
        with progress("exporting events", through) as advance:
            position = 0
            for notification in notifications(ledger, (), stop=through):
                leaves.write(notification)
                if notification.topic not in wallet_topics:
                    continue
                state = orjson.loads(notification.state)
                wallet_id = str(notification.originator_id)
                type_name = event_type(notification.topic)
                if type_name == "WalletOpened":
                    enterprises[wallet_id] = state.get("enterprise_number")
                enterprise = enterprises.get(wallet_id) or _enterprise_from(state)
                business_date = str(state.get("business_date", ""))
                year = business_date[:4]
                if year not in year_files:
                    name = f"events-{year}.jsonl.partial"
                    year_files[year] = YearFile(files.folder / name, files.create(name))
                record = {
                    "enterprise_number": enterprise,
                    "wallet_id": wallet_id,
                    "sequence": notification.originator_version,
                    "type": type_name,
                    "business_date": business_date,
                    "recorded_at": state.get("timestamp"),
                    "state": state,
                }
                line = orjson.dumps(record) + b"\n"
                year_files[year].write(line, wallet_id, enterprise, notification.originator_version, state.get("hash"))
                first_date = min(first_date or business_date, business_date)
                last_date = max(last_date or business_date, business_date)
                advance(notification.id - position)
                position = notification.id
    finally:
        leaves.stream.close()
        for year_file in year_files.values():
            year_file.stream.close()
    files.publish(leaves.path, LEAVES)
    years = {}
    for year in sorted(year_files):
        year_file = year_files[year]
        final = files.publish(year_file.path, f"events-{year}.jsonl")
        years[year] = {
            "file": final.name,
            "sha256": year_file.digest.hexdigest(),
            "bytes": year_file.size,
            "events": year_file.events,
            "wallets": year_file.wallets,
        }
    for source_path in (verifier, MERKLE_SOURCE):
        with source_path.open("rb") as source, files.create(source_path.name) as copy:
            shutil.copyfileobj(source, copy)
    manifest = {
        "format": FORMAT,
        "exported_at": datetime.now(UTC).isoformat(),
        "through_position": through,
        "from_date": first_date,
        "to_date": last_date,
        "events": sum(entry["events"] for entry in years.values()),
        "hash_algorithm": "sha256",
        "canonical_form": CANONICAL_FORM,
        "verifier": {"file": verifier.name, "sha256": hashlib.sha256(verifier.read_bytes()).hexdigest()},
        "years": years,
        "tree": tree_section(ledger, leaves),
    }
    partial = f"{MANIFEST}.partial"
    with files.create(partial) as stream:
        stream.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    files.publish(files.folder / partial, MANIFEST)
    return manifest


@dataclass
class LeafFile:
    """The ledger-wide tree's leaves, every stored record in notification order
    (:mod:`ledger.audit.checkpoints`): one JSON line each, its position, the
    record's id and version, whether it is a wallet event and its leaf input."""

    path: Path
    stream: BinaryIO
    digest: Any = field(default_factory=hashlib.sha256)
    count: int = 0

    def write(self, notification: Any) -> None:
        data, event = leaf_input_and_kind(bytes(notification.state))
        line = orjson.dumps(
            {
                "position": self.count,
                "record_id": str(notification.originator_id),
                "version": notification.originator_version,
                "event": event,
                "leaf_input": data.hex(),
            }
        )
        line += b"\n"
        self.stream.write(line)
        self.digest.update(line)
        self.count += 1


def tree_section(ledger: Any, leaves: LeafFile) -> dict[str, Any]:
    """The manifest's ``tree``: the leaves file, the Merkle code the verifier
    runs (this ledger's own :mod:`ledger.audit.merkle`, copied beside it), every
    checkpoint the exported leaves reach, and the public keys that signed them."""
    rows = [row for row in tree_tables(ledger).checkpoints() if row["tree_size"] <= leaves.count]
    keys = {row["key_id"]: row["public_key"] for row in rows}
    return {
        "leaves": {"file": LEAVES, "sha256": leaves.digest.hexdigest(), "count": leaves.count},
        "merkle": {"file": MERKLE_SOURCE.name, "sha256": hashlib.sha256(MERKLE_SOURCE.read_bytes()).hexdigest()},
        "leaf_hash": "RFC 6962: SHA-256(0x00 || leaf_input); a wallet event's leaf_input is its hash, "
        "any other record's the SHA-256 of its stored bytes",
        "checkpoints": [public_checkpoint(row) | {"number": row["number"]} for row in rows],
        "public_keys": [{"algorithm": "Ed25519", "key_id": k, "public_key": v} for k, v in keys.items()],
    }


class NewFiles:
    """The files an export creates in its folder: each one new, owner-only (0600),
    opened without following a link; a name already taken (by a file, a folder
    or a link, dangling or not) is refused, never written through or over."""

    FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

    def __init__(self, folder: Path):
        self.folder = folder
        self.created: list[Path] = []

    def create(self, name: str) -> BinaryIO:
        """A new, empty file ``name`` open for writing."""
        path = self.folder / name
        try:
            descriptor = os.open(path, self.FLAGS, PRIVATE_FILE)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, "will not write over an existing file or link", str(path)) from None
        self.created.append(path)
        return os.fdopen(descriptor, "wb")

    def publish(self, partial: Path, name: str) -> Path:
        """Rename a finished ``partial`` to ``name``, which must be free: the name is
        first taken by an exclusive create, so the rename replaces only that
        empty file of ours (a plain rename would replace whatever is there)."""
        final = self.folder / name
        self.create(name).close()
        os.replace(partial, final)
        return final

    def remove(self) -> None:
        """Remove every file created here (an export that failed leaves none)."""
        for path in reversed(self.created):
            path.unlink(missing_ok=True)


def _enterprise_from(state: dict[str, Any]) -> str | None:
    """The enterprise number of a wallet whose opening was not seen (from a project number)."""
    parts = str(state.get("project_number", "")).split("-")
    return parts[1] if len(parts) == 3 else None


def archive_summary(manifest: dict[str, Any], out: Path, marked_exported: bool) -> dict[str, Any]:
    """What an export wrote: each year's file, digest and counts, the manifest's
    digest, whether the audit trail records it, and how to verify it."""
    return {
        "directory": str(out),
        "events": manifest["events"],
        "through_position": manifest["through_position"],
        "years": {
            year: {k: entry[k] for k in ("file", "sha256", "events", "bytes")} | {"wallets": len(entry["wallets"])}
            for year, entry in manifest["years"].items()
        },
        "manifest_sha256": hashlib.sha256((out / MANIFEST).read_bytes()).hexdigest(),
        "marked_exported": marked_exported,
        "verify_with": f"python {out / manifest['verifier']['file']} {out}",
    }


def exported_period(manifest: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """What the audit-trail read model records of an export (dates, log position,
    location, time), or None when it exported no event."""
    if not manifest["events"]:
        return None
    return {
        "from_date": date.fromisoformat(manifest["from_date"]),
        "to_date": date.fromisoformat(manifest["to_date"]),
        "through_position": manifest["through_position"],
        "location": str(out.resolve()),
        "exported_at": datetime.fromisoformat(manifest["exported_at"]),
    }


def load_anchors(directory: Path) -> dict[UUID, list[tuple]]:
    """Chain heads per wallet, (sequence, hash, enterprise, year), from an export's
    manifest.json. FileNotFoundError without one; ValueError when it is not a manifest."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        anchors: dict[UUID, list[tuple]] = {}
        for year, entry in manifest["years"].items():
            for wallet, head in entry["wallets"].items():
                anchors.setdefault(UUID(wallet), []).append(
                    (head["last_sequence"], head["head"], head.get("enterprise_number"), year)
                )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not an export manifest ({error})") from None
    return anchors
