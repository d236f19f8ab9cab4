"""``kmo-ledger export --out DIR``: a sealed archive of every event, one file per
calendar year of business date, that anyone can verify without this software.

DIR receives ``events-YYYY.jsonl`` (one JSON object per event: enterprise
number, wallet id, sequence, type, business date, recorded_at and the state
exactly as stored, hash and previous hash included), ``manifest.json`` (each
file's SHA-256, byte and event counts, each wallet's chain head per year) and
``archive_verifier.py``, a standard-library program that checks all of it:
``python DIR/archive_verifier.py DIR``.

Exporting removes nothing (RULES.md section 7). The log is read in batches up
to the position it had when the export began, so a million events export in
the memory of one batch plus one line per wallet and year in the manifest.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from scripts import common as cli

PROG = "kmo-ledger export"
FORMAT = "kmo-ledger-archive/1"
VERIFIER = Path(__file__).with_name("archive_verifier.py")
CANONICAL_FORM = (
    "hash = SHA-256 of the UTF-8 JSON of the stored state without 'hash', plus 'originator_id' "
    "(the wallet id), 'originator_version' (the sequence) and 'type'; keys sorted, no whitespace, "
    "non-ASCII unescaped (orjson.dumps with OPT_SORT_KEYS)"
)


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _export(argv))


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


def _export(argv: list[str] | None) -> int:
    parser = cli.parser("export", "Write sealed yearly archives of every event with a standalone verifier.")
    parser.add_argument("--out", metavar="DIR", type=Path, required=True, help="folder to write the archive into")
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise cli.UsageError(f"{out} exists and is not a folder")
    if (out / "manifest.json").exists():
        raise cli.UsageError(f"{out} holds an archive already (manifest.json): export into a new folder")
    out.mkdir(parents=True, exist_ok=True)

    with cli.open_ledger() as ledger:
        manifest = write_archive(ledger, out)
        marked = mark_exported(manifest, out)
    summary = {
        "directory": str(out),
        "events": manifest["events"],
        "through_position": manifest["through_position"],
        "years": {
            year: {k: entry[k] for k in ("file", "sha256", "events", "bytes")} | {"wallets": len(entry["wallets"])}
            for year, entry in manifest["years"].items()
        },
        "manifest_sha256": hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest(),
        "marked_exported": marked,
        "verify_with": f"python {out / VERIFIER.name} {out}",
    }
    if args.json:
        cli.print_json(summary)
    else:
        show(summary)
    return cli.EXIT_OK


def write_archive(ledger: Any, out: Path) -> dict[str, Any]:
    """Stream the wallet events into one file per business year; returns the manifest written."""
    from ledger.storage.topics import WALLET_EVENT_TOPICS

    through = ledger.recorder.max_notification_id() or 0
    files: dict[str, YearFile] = {}
    enterprises: dict[str, str] = {}
    first_date = last_date = None
    try:
        with cli.progress("exporting events", through) as advance:
            position = 0
            for notification in cli.notifications(ledger, WALLET_EVENT_TOPICS, stop=through):
                state = orjson.loads(notification.state)
                wallet_id = str(notification.originator_id)
                type_name = cli.event_type(notification.topic)
                if type_name == "WalletOpened":
                    enterprises[wallet_id] = state.get("enterprise_number")
                enterprise = enterprises.get(wallet_id) or _enterprise_from(state)
                business_date = str(state.get("business_date", ""))
                year = business_date[:4]
                if year not in files:
                    path = out / f"events-{year}.jsonl.partial"
                    files[year] = YearFile(path, path.open("wb"))
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
                files[year].write(line, wallet_id, enterprise, notification.originator_version, state.get("hash"))
                first_date = min(first_date or business_date, business_date)
                last_date = max(last_date or business_date, business_date)
                advance(notification.id - position)
                position = notification.id
    finally:
        for year_file in files.values():
            year_file.stream.close()
    years = {}
    for year in sorted(files):
        year_file = files[year]
        final = out / f"events-{year}.jsonl"
        year_file.path.replace(final)
        years[year] = {
            "file": final.name,
            "sha256": year_file.digest.hexdigest(),
            "bytes": year_file.size,
            "events": year_file.events,
            "wallets": year_file.wallets,
        }
    shutil.copyfile(VERIFIER, out / VERIFIER.name)
    manifest = {
        "format": FORMAT,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "through_position": through,
        "from_date": first_date,
        "to_date": last_date,
        "events": sum(entry["events"] for entry in years.values()),
        "hash_algorithm": "sha256",
        "canonical_form": CANONICAL_FORM,
        "verifier": {"file": VERIFIER.name, "sha256": hashlib.sha256(VERIFIER.read_bytes()).hexdigest()},
        "years": years,
    }
    partial = out / "manifest.json.partial"
    partial.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    partial.replace(out / "manifest.json")
    return manifest


def _enterprise_from(state: dict[str, Any]) -> str | None:
    """The enterprise number of a wallet whose opening was not seen (from a project number)."""
    parts = str(state.get("project_number", "")).split("-")
    return parts[1] if len(parts) == 3 else None


def mark_exported(manifest: dict[str, Any], out: Path) -> bool:
    """Record the export in the audit-trail read model (so its rows may later be
    purged past retention), when ``projections.audit`` is installed."""
    try:
        from projections.audit import mark_exported as mark
    except ImportError:
        return False
    if not manifest["events"]:
        return False
    mark(
        cli.database_url(),
        from_date=date.fromisoformat(manifest["from_date"]),
        to_date=date.fromisoformat(manifest["to_date"]),
        through_position=manifest["through_position"],
        location=str(out.resolve()),
        exported_at=datetime.fromisoformat(manifest["exported_at"]),
    )
    return True


def show(summary: dict[str, Any]) -> None:
    out = cli.console()
    out.print(
        cli.table(
            f"Archive {summary['directory']} ({summary['events']} events through position "
            f"{summary['through_position']})",
            ["year", "file", "events", "wallets", "sha256"],
            (
                [year, e["file"], e["events"], e["wallets"], e["sha256"]]
                for year, e in summary["years"].items()
            ),
            right=("events", "wallets"),
        )
    )
    out.print(f"manifest.json sha256 {summary['manifest_sha256']}")
    if summary["marked_exported"]:
        out.print("the audit trail records this export")
    out.print(f"verify with: {summary['verify_with']}")
