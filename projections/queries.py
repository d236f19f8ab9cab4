"""Reads of the views, one method per read, each returning a JSON-ready dict
(money as two-decimal euro strings, dates in ISO form).

A :class:`Queries` keeps one connection per thread, so the API's worker threads
can read at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any, get_args

import orjson

from ledger.domain.errors import NotFound, ValidationFailed
from ledger.domain.identifiers import canonical_enterprise_number, provider_number
from ledger.domain.money import format_euro
from ledger.domain.state import ApplicationStateName
from ledger.summaries import rate_percent
from projections import schema as s
from projections.fold import application_state
from projections.store import Target, connect

APPLICATION_STATES: tuple[str, ...] = get_args(ApplicationStateName)
AWAITING_PROVIDER: tuple[str, ...] = ("submitted", "confirmed", "funded", "paying", "paid_out")
"""The states in which an application waits on its provider: for an answer
(submitted), or for the service's completion (confirmed, and neither completed
nor ended, whatever money came in or went out)."""


def _euro_fields(row: dict[str, int]) -> dict[str, Any]:
    """The balance columns in the read shape."""
    kinds = {kind: 0 for kind in s.ACCOUNT_KINDS}
    for account in s.ACCOUNTS:
        kind = "held" if account.startswith("held_") else "due" if account.startswith("due_") else account
        kinds[kind] += row[account]
    return {
        "held": {"own_share": format_euro(row["held_own_share"]), "subsidy": format_euro(row["held_subsidy"])},
        "paid_out": {
            "own_share": format_euro(row["paid_out_own_share"]),
            "subsidy": format_euro(row["paid_out_subsidy"]),
            "total": format_euro(row["paid_out_own_share"] + row["paid_out_subsidy"]),
        },
        "refunded": {
            "own_share_to_enterprise": format_euro(row["refunded_own_share"]),
            "subsidy_to_government": format_euro(row["returned_subsidy"]),
        },
        "recovered": {"repaid": format_euro(row["recovered_repaid"]), "held": format_euro(row["recovered"])},
        "due": {"enterprise": format_euro(row["due_enterprise"]), "government": format_euro(row["due_government"])},
        "accounts": {account: format_euro(row[account]) for account in s.ACCOUNTS},
        "account_kinds": {kind: format_euro(amount) for kind, amount in kinds.items()},
    }


def _iso(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


class Queries:
    """The read side of the projections."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self._local = threading.local()
        self._targets: list[Target] = []
        self._targets_lock = threading.Lock()

    @property
    def target(self) -> Target:
        target = getattr(self._local, "target", None)
        if target is None:
            target = connect(self.database_url)
            self._local.target = target
            with self._targets_lock:
                self._targets.append(target)
        return target

    def close(self) -> None:
        with self._targets_lock:
            for target in self._targets:
                target.close()
            self._targets.clear()
        self._local = threading.local()

    def _rows(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        target = self.target
        if target.dialect == "postgresql":
            with target.connection.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), params)
                names = [d.name for d in cursor.description]
                return [dict(zip(names, row, strict=False)) for row in cursor.fetchall()]
        cursor = target.connection.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=False)) for row in cursor.fetchall()]

    # ------------------------------------------------------------------ reads

    def position(self) -> int:
        """The last notification folded into the views."""
        rows = self._rows(f"SELECT position FROM {s.TRACKING.name} WHERE name = ?", (s.TRACKING_NAME,))
        return rows[0]["position"] if rows else 0

    def balances(self, enterprise_number: str) -> dict[str, Any]:
        """A wallet's balances, in total and per application."""
        number = canonical_enterprise_number(enterprise_number)
        wallets = self._rows(f"SELECT * FROM {s.WALLET_BALANCES.name} WHERE enterprise_number = ?", (number,))
        if not wallets:
            raise NotFound(f"no wallet for enterprise {number}")
        applications = self._rows(
            f"SELECT b.*, a.project_number FROM {s.APPLICATION_BALANCES.name} b "
            f"JOIN {s.APPLICATIONS.name} a ON a.application_id = b.application_id "
            f"WHERE b.enterprise_number = ? ORDER BY a.project_number{self.target.collate}",
            (number,),
        )
        return {
            "enterprise_number": number,
            **_euro_fields(wallets[0]),
            "applications": [
                {"application_id": row["application_id"], "project_number": row["project_number"], **_euro_fields(row)}
                for row in applications
            ],
        }

    def ceilings(self, enterprise_number: str) -> dict[str, Any]:
        """A wallet's yearly ceilings (steunplafonds): reserved + used + lost = claimed;
        remaining = ceiling - claimed."""
        number = canonical_enterprise_number(enterprise_number)
        rows = self._rows(
            f"SELECT * FROM {s.CEILINGS.name} WHERE enterprise_number = ? "
            f"ORDER BY year, ceiling_key{self.target.collate}",
            (number,),
        )
        return {
            "enterprise_number": number,
            "ceilings": [
                {
                    "year": row["year"],
                    "key": row["ceiling_key"],
                    "size": row["size"],
                    "rate": rate_percent(row["rate"]),
                    "ceiling": format_euro(row["ceiling"]),
                    "reserved": format_euro(row["claimed"] - row["used"] - row["lost"]),
                    "used": format_euro(row["used"]),
                    "freed": format_euro(row["freed"]),
                    "lost": format_euro(row["lost"]),
                    "remaining": format_euro(row["ceiling"] - row["claimed"]),
                }
                for row in rows
            ],
        }

    def audit_trail(self, enterprise_number: str) -> dict[str, Any]:
        """One row per wallet event, in order, each with its ``retain_until``."""
        number = canonical_enterprise_number(enterprise_number)
        rows = self._rows(
            f"SELECT * FROM {s.AUDIT_TRAIL.name} WHERE enterprise_number = ? ORDER BY sequence", (number,)
        )
        return {
            "enterprise_number": number,
            "rows": [
                {
                    "sequence": row["sequence"],
                    "type": row["type"],
                    "business_date": row["business_date"],
                    "recorded_at": row["recorded_at"],
                    "actor": {"key_id": row["actor_key_id"], "role": row["actor_role"]},
                    "application_id": row["application_id"],
                    "legs": orjson.loads(row["legs"]),
                    "hash": row["hash"],
                    "retain_until": row["retain_until"],
                }
                for row in rows
            ],
        }

    def deadlines_within(self, days: int, today: date) -> dict[str, Any]:
        """Open applications whose next deadline falls on or before ``today + days``
        (deadlines already passed but not yet applied by the deadline run included)."""
        if days < 0:
            raise ValidationFailed("within_days cannot be negative")
        until = (today + timedelta(days=days)).isoformat()
        c = self.target.collate
        rows = self._rows(
            f"SELECT * FROM {s.DEADLINES_DUE.name} WHERE deadline <= ? "
            f"ORDER BY deadline{c}, project_number{c}, application_id{c}",
            (until,),
        )
        return {
            "today": today.isoformat(),
            "within_days": days,
            "deadlines": [
                {
                    "enterprise_number": row["enterprise_number"],
                    "application_id": row["application_id"],
                    "project_number": row["project_number"],
                    "provider": row["provider"],
                    "state": row["state"],
                    "rule": row["rule"],
                    "deadline": row["deadline"],
                    "days_left": (date.fromisoformat(row["deadline"]) - today).days,
                }
                for row in rows
            ],
        }

    def provider_inbox(
        self, provider: str, today: date | None = None, states: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Applications naming this provider in ``states``; by default every one that
        waits on the provider (:data:`AWAITING_PROVIDER`): for its answer, or
        confirmed and waiting for the service's completion. With ``today``, a
        submitted one only while the provider may still answer it (its answer date
        has not passed: past it, it lapses at the next deadline run). In order of
        their answer dates."""
        number = provider_number(provider)
        wanted = set(AWAITING_PROVIDER if states is None else states)
        unknown = wanted - set(APPLICATION_STATES)
        if unknown:
            known = ", ".join(APPLICATION_STATES)
            raise ValidationFailed(f"no application state {sorted(unknown)[0]!r}: one of {known}")
        c = self.target.collate
        kinds, params = [], [number]
        if wanted & set(AWAITING_PROVIDER):
            kinds.append("(final_state IS NULL AND completed_on IS NULL)")
        if "completed" in wanted:
            kinds.append("(final_state IS NULL AND completed_on IS NOT NULL)")
        endings = sorted(wanted - set(AWAITING_PROVIDER) - {"completed"})
        if endings:
            kinds.append(f"final_state IN ({', '.join('?' * len(endings))})")
            params += endings
        rows = (
            self._rows(
                f"SELECT * FROM {s.APPLICATIONS.name} WHERE provider = ? AND ({' OR '.join(kinds)}) "
                f"ORDER BY answer_by{c}, project_number{c}, application_id{c}",
                tuple(params),
            )
            if kinds
            else []
        )
        answerable_from = today.isoformat() if today is not None else ""
        found = []
        for row in rows:
            state = application_state(row)
            if state in wanted and not (state == "submitted" and row["answer_by"] < answerable_from):
                found.append((state, row))
        return {
            "provider": number,
            "applications": [
                {
                    "enterprise_number": row["enterprise_number"],
                    "application_id": row["application_id"],
                    "project_number": row["project_number"],
                    "service": row["service"],
                    "themes": orjson.loads(row["themes"]),
                    "starts_on": row["starts_on"],
                    "submitted_on": row["submitted_on"],
                    "answer_by": row["answer_by"],
                    "project_amount": format_euro(row["own_share"] + row["subsidy"]),
                    "state": state,
                    "complete_by": row["complete_by"],
                }
                for state, row in found
            ],
        }

    def open_payout_orders(self, due_before: date | None = None) -> dict[str, Any]:
        """Payout orders not executed (nor cancelled), oldest first; with
        ``due_before``, only those whose service level ended before that day."""
        sql = f"SELECT * FROM {s.PAYOUT_ORDERS.name} WHERE state = 'ordered'"
        params: tuple = ()
        if due_before is not None:
            sql += " AND due_by < ?"
            params = (due_before.isoformat(),)
        c = self.target.collate
        rows = self._rows(sql + f" ORDER BY ordered_on{c}, order_id{c}", params)
        return {
            "orders": [
                {
                    "enterprise_number": row["enterprise_number"],
                    "application_id": row["application_id"],
                    "project_number": row["project_number"],
                    "provider": row["provider"],
                    "order_id": row["order_id"],
                    "amount": format_euro(row["amount"]),
                    "ordered_on": row["ordered_on"],
                    "due_by": row["due_by"],
                }
                for row in rows
            ]
        }

    def daily_totals(self, from_date: date | str, to_date: date | str) -> dict[str, Any]:
        """Money in and out per account kind per day, both days included: a receipt
        counts on the bank's value date, any other money event on its business date."""
        first, last = _iso(from_date), _iso(to_date)
        if first > last:
            raise ValidationFailed(f"from {first} lies after to {last}")
        rows = self._rows(
            f"SELECT * FROM {s.DAILY_TOTALS.name} WHERE day >= ? AND day <= ? "
            f"ORDER BY day{self.target.collate}, account_kind{self.target.collate}",
            (first, last),
        )
        return {
            "from": first,
            "to": last,
            "totals": [
                {
                    "day": row["day"],
                    "account_kind": row["account_kind"],
                    "money_in": format_euro(row["money_in"]),
                    "money_out": format_euro(row["money_out"]),
                    "net": format_euro(row["money_in"] - row["money_out"]),
                }
                for row in rows
            ],
        }
