"""``kmo-ledger export --out DIR``: a sealed archive of every event, one file per
calendar year of business date, that anyone can verify without this software.

DIR receives ``events-YYYY.jsonl`` (one JSON object per event: enterprise
number, wallet id, sequence, type, business date, recorded_at and the state
exactly as stored, hash and previous hash included), ``manifest.json`` (each
file's SHA-256, byte and event counts, each wallet's chain head per year) and
``archive_verifier.py``, a standard-library program that checks all of it:
``python DIR/archive_verifier.py DIR`` (see :mod:`ledger.audit.export`).

Exporting removes nothing (RULES.md section 7). The files are new and their
owner's alone (0600, and 0700 for a folder the export makes): a file or link
already at one of their names stops the export (exit 2) with that name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts import common as cli

PROG = "kmo-ledger export"
VERIFIER = Path(__file__).with_name("archive_verifier.py")


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _export(argv))


def _export(argv: list[str] | None) -> int:
    parser = cli.parser("export", "Write sealed yearly archives of every event with a standalone verifier.")
    parser.add_argument("--out", metavar="DIR", type=Path, required=True, help="folder to write the archive into")
    args = parser.parse_args(argv)

    from ledger.audit.export import MANIFEST, archive_summary, write_archive
    from ledger.storage import private_folder

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise cli.UsageError(f"{out} exists and is not a folder")
    if (out / MANIFEST).exists():
        raise cli.UsageError(f"{out} holds an archive already ({MANIFEST}): export into a new folder")

    with cli.open_ledger() as ledger:  # no ledger, no folder
        private_folder(out)
        manifest = write_archive(ledger, out, VERIFIER, progress=cli.progress)
        marked = mark_exported(manifest, out)
    summary = archive_summary(manifest, out, marked)
    if args.json:
        cli.print_json(summary)
    else:
        show(summary)
    return cli.EXIT_OK


def mark_exported(manifest: dict[str, Any], out: Path) -> bool:
    """Record the export in the audit-trail read model (so its rows may later be
    purged past retention), when ``projections.audit`` is installed."""
    try:
        from projections.audit import mark_exported as mark
    except ImportError:
        return False
    from ledger.audit.export import exported_period

    period = exported_period(manifest, out)
    if period is None:
        return False
    mark(cli.database_url(), **period)
    return True


def show(summary: dict[str, Any]) -> None:
    out = cli.console()
    out.print(
        cli.table(
            f"Archive {summary['directory']} ({summary['events']} events through position "
            f"{summary['through_position']})",
            ["year", "file", "events", "wallets", "sha256"],
            ([year, e["file"], e["events"], e["wallets"], e["sha256"]] for year, e in summary["years"].items()),
            right=("events", "wallets"),
        )
    )
    out.print(f"manifest.json sha256 {summary['manifest_sha256']}")
    if summary["marked_exported"]:
        out.print("the audit trail records this export")
    out.print(f"verify with: {summary['verify_with']}")
