"""``kmo-ledger verify [ENTERPRISE]``: every wallet's hash chain and money
invariants checked from the stored rows themselves, plus the read models
against a fresh fold when the projections package provides that check.

Any changed, missing or reordered stored event is named by wallet and
sequence (:mod:`ledger.audit.ledger_verification`). Exit 1 when anything is wrong.

``--against DIR`` also checks the chain heads an earlier ``export`` sealed in
DIR's manifest: an event deleted or rewritten after that export is found even
if whoever did it recomputed the hashes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from scripts import common as cli

PROG = "kmo-ledger verify"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _verify(argv))


def _verify(argv: list[str] | None) -> int:
    parser = cli.parser("verify", "Check hash chains, invariants and projections; exit 1 on any problem.")
    parser.add_argument("enterprise", metavar="ENTERPRISE", nargs="?", help="only this wallet")
    parser.add_argument(
        "--against", metavar="DIR", type=Path, help="an exported archive whose sealed chain heads must still hold"
    )
    parser.add_argument(
        "--public-key",
        metavar="FILE",
        type=Path,
        help="the key checkpoints must be signed with (default: the checkpoint key's .pub beside its private key)",
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--since-checkpoint",
        action="store_true",
        help="go on from the last checkpoint verified: only the log after it, and the wallets written since",
    )
    how.add_argument(
        "--checkpoint",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint you kept (GET /v1/checkpoints/latest saved): the log must still hold what it signed",
    )
    args = parser.parse_args(argv)
    anchors = load_anchors(args.against) if args.against else {}
    public_key = checkpoint_public_key(args.public_key)
    kept = [kept_checkpoint(path) for path in args.checkpoint]
    if kept and public_key is None:
        raise cli.UsageError("--checkpoint needs the key it was signed with: give --public-key FILE")

    from ledger.audit.ledger_verification import verify_ledger

    with cli.open_ledger() as ledger:
        report = verify_ledger(
            ledger,
            args.enterprise,
            anchors,
            read_models=projection_differences,
            progress=cli.progress,
            public_key=public_key,
            since_checkpoint=args.since_checkpoint,
            database_url=cli.database_url(),
            kept=kept,
        )
    if args.json:
        cli.print_json(report)
    else:
        show(report)
    return cli.EXIT_OK if report["ok"] else cli.EXIT_PROBLEM


def checkpoint_public_key(given: Path | None) -> Any:
    """The public key checkpoints are checked with: ``given`` (PEM or the JSON of
    ``GET /v1/checkpoints/public-key``), else the configured checkpoint key's;
    None when there is none: each checkpoint is then checked with the key
    stored beside it (a changed checkpoint is found, a replaced key is not)."""
    from ledger.audit.checkpoints import key_file, public_key_file
    from ledger.audit.proofs import NotAKey, load_public_key

    path = given or public_key_file(key_file())
    try:
        return load_public_key(path.read_bytes())
    except FileNotFoundError:
        if given is not None:
            raise cli.UsageError(f"{given}: no such file (the public key)") from None
        return None
    except NotAKey as error:
        raise cli.UsageError(f"{path}: {error}") from None


def kept_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint saved from ``GET /v1/checkpoints/latest``; bad usage when it is none."""
    try:
        found = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise cli.UsageError(f"{path}: no such file (the checkpoint)") from None
    except ValueError:
        raise cli.UsageError(f"{path}: not JSON (save GET /v1/checkpoints/latest)") from None
    if not isinstance(found, dict) or not isinstance(found.get("tree_size"), int):
        raise cli.UsageError(f"{path}: not a checkpoint (save GET /v1/checkpoints/latest)")
    return found


def load_anchors(directory: Path) -> dict[UUID, list[tuple]]:
    """Chain heads per wallet from an export's manifest.json; bad usage without one."""
    from ledger.audit.export import MANIFEST
    from ledger.audit.export import load_anchors as load

    try:
        return load(directory)
    except FileNotFoundError:
        raise cli.UsageError(
            f"{directory / MANIFEST} not found: --against names a folder written by kmo-ledger export"
        ) from None
    except ValueError as error:
        raise cli.UsageError(str(error)) from None


def projection_differences(ledger: Any) -> Any:
    """The read models against a fresh fold, when ``projections.consistency``
    exists, with the views caught up now
    (:class:`ledger.audit.ledger_verification.ReadModelsCheck`)."""
    return ReadModels(ledger)


class ReadModels:
    """:func:`projections.consistency.prepare_comparison`, reported as verify
    reports it: a comparison that cannot be made is itself a finding."""

    def __init__(self, ledger: Any):
        self.comparison: Any = None
        self.answer: dict[str, Any] | None = None
        try:
            from projections.consistency import prepare_comparison
        except ImportError:
            self.answer = {"checked": False, "reason": "projections.consistency is not installed", "differences": []}
            return
        try:
            self.comparison = prepare_comparison(ledger, cli.database_url())
        except Exception as error:
            self.answer = _not_compared(error)

    def folding(self) -> Any:
        return self.comparison.folding() if self.answer is None else None

    def start(self, executor: Any) -> None:
        if self.answer is None:
            try:
                self.comparison.start(executor)
            except Exception as error:
                self.answer = _not_compared(error)

    def add(self, folded: Any) -> None:
        if self.answer is None:
            self.comparison.add(folded)

    def report(self) -> dict[str, Any]:
        if self.answer is None:
            try:
                self.answer = {"checked": True, "differences": list(self.comparison.differences())}
            except Exception as error:
                self.answer = _not_compared(error)
        return self.answer

    def close(self) -> None:
        if self.comparison is not None:
            self.comparison.close()


def _not_compared(error: Exception) -> dict[str, Any]:
    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return {"checked": True, "differences": [f"the read models could not be compared: {reason}"]}


def show(report: dict[str, Any]) -> None:
    out = cli.console()
    if report["problems"]:
        out.print(
            cli.table(
                "Problems",
                ["wallet", "event", "problem"],
                (
                    [p["enterprise_number"] or p["wallet_id"] or "", p["sequence"], p["problem"]]
                    for p in report["problems"]
                ),
                right=("event",),
            )
        )
    projections = report["projections"]
    checked = "checked" if projections["checked"] else f"not checked ({projections['reason']})"
    verdict = "OK" if report["ok"] else f"FAILED: {len(report['problems'])} problem(s)"
    tree = report.get("tree", {})
    if tree.get("checked"):
        since = f" from position {tree['from_position']}" if tree.get("from_position") else ""
        key = "" if tree.get("key") == "given" or not tree["checkpoints"] else " (key stored with them)"
        merkle = (
            f"; Merkle tree of {tree['tree_size']} record(s){since} against {tree['checkpoints']} checkpoint(s){key}"
            + (f" and {tree['kept']} kept" if tree.get("kept") else "")
        )
    else:
        merkle = f"; Merkle tree not checked ({tree.get('reason', 'not asked')})"
    out.print(
        cli.printable(
            f"Verified {report['wallets']} wallet(s), {report['events']} event(s){merkle}; "
            f"projections {checked}: {verdict}"
        )
    )
