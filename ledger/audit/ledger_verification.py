"""Ledger-wide verification: every wallet's stored rows checked (chain and
invariants, :mod:`ledger.audit.verification`), against its latest snapshot and
the chain heads an export sealed, and every payment reference still claimed by
a submission that is no longer stored.

Any changed, missing or reordered stored event is named by wallet and
sequence. Wallets are read one at a time, so a ledger of a million events is
verified in the memory of its largest wallet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import orjson

from ledger.audit.progress import Progress, no_progress
from ledger.audit.verification import verify_rows
from ledger.domain import events as ev
from ledger.domain.errors import NotFound
from ledger.domain.identifiers import canonical_enterprise_number, wallet_id
from ledger.storage.log import notifications
from ledger.storage.records import PaymentReferenceClaimed
from ledger.storage.topics import stored_topic

_SEQUENCE = re.compile(r"^event (\d+)")


def verify_ledger(
    ledger: Any,
    enterprise: str | None = None,
    anchors: dict[UUID, list[tuple]] | None = None,
    read_models: Callable[[Any], dict[str, Any]] | None = None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Every wallet (or only ``enterprise``'s) verified, with the chain heads in
    ``anchors`` (see :func:`ledger.audit.export.load_anchors`); ``read_models``
    compares the read models with a fresh fold when every wallet is verified.
    Returns ``{"ok", "wallets", "events", "problems", "projections"}``, each
    problem named by enterprise number, wallet id and sequence."""
    anchors = dict(anchors or {})
    if enterprise:
        only = canonical_enterprise_number(enterprise)
        wallet_ids = [wallet_id(only)]
        anchors = {k: v for k, v in anchors.items() if k == wallet_ids[0]}
    else:
        only = None
        wallet_ids = list(all_wallet_ids(ledger))
    report: dict[str, Any] = {"ok": True, "wallets": 0, "events": 0, "problems": []}
    applications: set[str] = set()
    with progress("verifying wallets", len(wallet_ids)) as advance:
        for aggregate_id in wallet_ids:
            rows = ledger.stored_rows(aggregate_id)
            if not rows and enterprise and aggregate_id not in anchors:
                raise NotFound(f"no wallet for enterprise {enterprise}")
            label = wallet_label(rows, aggregate_id)
            applications.update(
                str(state.get("application_id")) for _v, t, state in rows if t == "ApplicationSubmitted"
            )
            for problem in wallet_problems(ledger, aggregate_id, rows, anchors.pop(aggregate_id, [])):
                report["problems"].append(_finding(label, aggregate_id, problem))
            report["wallets"] += 1
            report["events"] += len(rows)
            advance(1)
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
    if enterprise:
        report["projections"] = {
            "checked": False,
            "reason": "checked only when every wallet is verified",
            "differences": [],
        }
    elif read_models is None:
        report["projections"] = {"checked": False, "reason": "no read models were given", "differences": []}
    else:
        report["projections"] = read_models(ledger)
    report["problems"] += [
        {"enterprise_number": None, "wallet_id": None, "sequence": None, "problem": f"projections: {difference}"}
        for difference in report["projections"]["differences"]
    ]
    report["ok"] = not report["problems"]
    return report


def all_wallet_ids(ledger: Any):
    """Every wallet in the notification log, in order of opening. Wallets are also
    found by their applications, so a wallet whose opening event was deleted is
    still verified (and its missing first event named)."""
    seen: set[UUID] = set()
    topics = [stored_topic(ev.WalletOpened), stored_topic(ev.ApplicationSubmitted), stored_topic(ev.SmeFiguresFiled)]
    for notification in notifications(ledger, topics):
        if notification.originator_id not in seen:
            seen.add(notification.originator_id)
            yield notification.originator_id


def unbacked_claims(ledger: Any, applications: set[str], enterprise: str | None = None):
    """Payment references claimed (in the same transaction as the submission) by
    an application whose submission is no longer stored: a deleted event."""
    for notification in notifications(ledger, [stored_topic(PaymentReferenceClaimed)]):
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


def wallet_problems(
    ledger: Any, aggregate_id: UUID, rows: list[tuple[int, str, dict[str, Any]]], heads: Sequence[tuple] = ()
) -> list[str]:
    """The problems of one wallet: its chain, its invariants (as ``KmoLedger.verify_wallet``),
    its latest snapshot and any sealed chain heads."""
    extra = check_snapshot(ledger, aggregate_id, rows) + check_anchors(rows, heads)
    return verify_rows(aggregate_id, rows) + extra


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


def check_anchors(rows: list[tuple[int, str, dict[str, Any]]], heads: Sequence[tuple]) -> list[str]:
    """Each head (sequence, hash, enterprise, year) sealed by an export must still be stored."""
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
