"""``kmo-ledger verify [ENTERPRISE]``: every wallet's hash chain and money
invariants checked from the stored rows themselves, plus the read models
against a fresh fold when the projections package provides that check.

Any changed, missing or reordered stored event is named by wallet and
sequence. Wallets are read one at a time, so a ledger of a million events is
verified in the memory of its largest wallet. Exit 1 when anything is wrong.

``--against DIR`` also checks the chain heads an earlier ``export`` sealed in
DIR's manifest: an event deleted or rewritten after that export is found even
if whoever did it recomputed the hashes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from scripts import common as cli

PROG = "kmo-ledger verify"
_SEQUENCE = re.compile(r"^event (\d+)")


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _verify(argv))


def _verify(argv: list[str] | None) -> int:
    parser = cli.parser("verify", "Check hash chains, invariants and projections; exit 1 on any problem.")
    parser.add_argument("enterprise", metavar="ENTERPRISE", nargs="?", help="only this wallet")
    parser.add_argument(
        "--against", metavar="DIR", type=Path, help="an exported archive whose sealed chain heads must still hold"
    )
    args = parser.parse_args(argv)
    anchors = load_anchors(args.against) if args.against else {}

    from ledger.domain.errors import NotFound
    from ledger.domain.identifiers import canonical_enterprise_number, wallet_id

    with cli.open_ledger() as ledger:
        if args.enterprise:
            enterprise = canonical_enterprise_number(args.enterprise)
            wallet_ids = [wallet_id(enterprise)]
            anchors = {k: v for k, v in anchors.items() if k == wallet_ids[0]}
        else:
            wallet_ids = list(all_wallet_ids(ledger))
        report = {"ok": True, "wallets": 0, "events": 0, "problems": []}
        applications: set[str] = set()
        with cli.progress("verifying wallets", len(wallet_ids)) as advance:
            for aggregate_id in wallet_ids:
                rows = ledger.stored_rows(aggregate_id)
                if not rows and args.enterprise and aggregate_id not in anchors:
                    raise NotFound(f"no wallet for enterprise {args.enterprise}")
                label = wallet_label(rows, aggregate_id)
                applications.update(
                    str(state.get("application_id")) for _v, t, state in rows if t == "ApplicationSubmitted"
                )
                for problem in verify_rows(ledger, aggregate_id, rows, anchors.pop(aggregate_id, [])):
                    report["problems"].append(_finding(label, aggregate_id, problem))
                report["wallets"] += 1
                report["events"] += len(rows)
                advance(1)
        only = enterprise if args.enterprise else None
        for claim in unbacked_claims(ledger, applications, only):
            report["problems"].append(
                _finding(
                    claim["enterprise_number"],
                    wallet_id(claim["enterprise_number"]),
                    f"application {claim['application_id']} was given payment reference {claim['reference']}, "
                    "but its ApplicationSubmitted event is missing",
                )
            )
        for aggregate_id, heads in anchors.items():  # sealed in the archive, gone from the ledger
            label = heads[0][2] or str(aggregate_id)
            for problem in check_anchors([], heads):
                report["problems"].append(_finding(label, aggregate_id, problem))
        report["projections"] = projection_differences(ledger) if not args.enterprise else {
            "checked": False,
            "reason": "checked only when every wallet is verified",
            "differences": [],
        }
    report["problems"] += [
        {"enterprise_number": None, "wallet_id": None, "sequence": None, "problem": f"projections: {difference}"}
        for difference in report["projections"]["differences"]
    ]
    report["ok"] = not report["problems"]
    if args.json:
        cli.print_json(report)
    else:
        show(report)
    return cli.EXIT_OK if report["ok"] else cli.EXIT_PROBLEM


def all_wallet_ids(ledger: Any):
    """Every wallet in the notification log, in order of opening. Wallets are also
    found by their applications, so a wallet whose opening event was deleted is
    still verified (and its missing first event named)."""
    from ledger.storage.topics import stored_topic

    from ledger.domain import events as ev

    seen: set[UUID] = set()
    topics = [stored_topic(ev.WalletOpened), stored_topic(ev.ApplicationSubmitted), stored_topic(ev.SmeFiguresFiled)]
    for notification in cli.notifications(ledger, topics):
        if notification.originator_id not in seen:
            seen.add(notification.originator_id)
            yield notification.originator_id


def unbacked_claims(ledger: Any, applications: set[str], enterprise: str | None = None):
    """Payment references claimed (in the same transaction as the submission) by
    an application whose submission is no longer stored: a deleted event."""
    from ledger.storage.topics import stored_topic

    from ledger.storage.records import PaymentReferenceClaimed

    for notification in cli.notifications(ledger, [stored_topic(PaymentReferenceClaimed)]):
        claim = orjson.loads(notification.state)
        if enterprise is not None and claim.get("enterprise_number") != enterprise:
            continue
        if claim.get("application_id") not in applications:
            yield claim


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


def verify_rows(
    ledger: Any, aggregate_id: UUID, rows: list[tuple[int, str, dict[str, Any]]], heads: list[tuple] = ()
) -> list[str]:
    """The problems of one wallet: its chain, its invariants (as ``KmoLedger.verify_wallet``),
    its latest snapshot and any sealed chain heads."""
    from ledger.audit.verification import verify_rows as check_wallet

    extra = check_snapshot(ledger, aggregate_id, rows) + check_anchors(rows, heads)
    return check_wallet(aggregate_id, rows) + extra


def check_snapshot(ledger: Any, aggregate_id: UUID, rows: list[tuple[int, str, dict[str, Any]]]) -> list[str]:
    """The latest snapshot names the hash of the event it was taken at: a history
    cut short after it, or rewritten under it, disagrees."""
    if ledger.snapshots is None:
        return []
    stored = ledger.snapshots.recorder.select_events(aggregate_id, desc=True, limit=1)
    if not stored:
        return []
    version = stored[0].originator_version
    expected = (orjson.loads(stored[0].state).get("state") or {}).get("last_hash")
    stored_hash = next((state.get("hash") for v, _type, state in rows if v == version), None)
    if stored_hash is None:
        last = rows[-1][0] if rows else 0
        return [f"event {version} is missing: a snapshot was taken at version {version}, the last stored is {last}"]
    if stored_hash != expected:
        return [f"event {version} differs from the snapshot taken at it: the history was rewritten"]
    return []


def check_anchors(rows: list[tuple[int, str, dict[str, Any]]], heads: list[tuple]) -> list[str]:
    """Each head (sequence, hash, enterprise, year) sealed by an export must still be stored."""
    hashes = {version: state.get("hash") for version, _type, state in rows}
    problems = []
    for sequence, digest, _enterprise, year in heads:
        if sequence not in hashes:
            problems.append(f"event {sequence} is missing: the {year} archive sealed it as a chain head")
        elif hashes[sequence] != digest:
            problems.append(f"event {sequence} differs from the chain head sealed in the {year} archive")
    return problems


def load_anchors(directory: Path) -> dict[UUID, list[tuple]]:
    """Chain heads per wallet from an export's manifest.json."""
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        anchors: dict[UUID, list[tuple]] = {}
        for year, entry in manifest["years"].items():
            for wallet, head in entry["wallets"].items():
                anchors.setdefault(UUID(wallet), []).append(
                    (head["last_sequence"], head["head"], head.get("enterprise_number"), year)
                )
    except FileNotFoundError:
        raise cli.UsageError(f"{path} not found: --against names a folder written by kmo-ledger export") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise cli.UsageError(f"{path} is not an export manifest ({error})") from None
    return anchors


def projection_differences(ledger: Any) -> dict[str, Any]:
    """The read models against a fresh fold, when ``projections.consistency`` exists."""
    try:
        from projections.consistency import find_differences
    except ImportError:
        return {"checked": False, "reason": "projections.consistency is not installed", "differences": []}
    try:
        differences = list(find_differences(ledger, cli.database_url()))
    except Exception as error:  # a read model that cannot even be compared is itself a finding
        differences = [f"the read models could not be compared: {type(error).__name__}: {str(error).splitlines()[0]}"]
    return {"checked": True, "differences": differences}


def _finding(enterprise: str | None, aggregate_id: UUID, problem: str) -> dict[str, Any]:
    match = _SEQUENCE.match(problem)
    return {
        "enterprise_number": enterprise,
        "wallet_id": str(aggregate_id),
        "sequence": int(match.group(1)) if match else None,
        "problem": problem,
    }


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
    out.print(f"Verified {report['wallets']} wallet(s), {report['events']} event(s); projections {checked}: {verdict}")
