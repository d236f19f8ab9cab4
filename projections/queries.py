"""Reads of the views, one method per read, each returning a JSON-ready dict
(money as two-decimal euro strings, dates in ISO form).

A :class:`Queries` keeps one connection per thread, so the API's worker threads
can read at once.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any, get_args

import orjson

from ledger.domain.errors import InvalidEnterpriseNumber, NotFound, ValidationFailed
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


WALLET_PAGE, MAX_WALLET_PAGE = 20, 100
"""A page of the wallet list: by default, and at most."""
_CURSOR_PREFIX = "wallets-after:"
_FOLD = {"sqlite": "kmo_lower", "postgresql": "lower"}
"""The function lowering a name in SQL: PostgreSQL's own lower() folds every
letter, SQLite's only ASCII, so there it is Python's (registered per connection)."""


def _lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\' (``%`` and ``_`` are no wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _enterprise_number_in(q: str) -> str | None:
    """The canonical enterprise number ``q`` spells, or None when it spells none."""
    try:
        return canonical_enterprise_number(q)
    except InvalidEnterpriseNumber:
        return None


def _wallet_cursor(enterprise_number: str) -> str:
    """The cursor of the page after this wallet: opaque to clients, read back by :func:`_wallet_after`."""
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + enterprise_number).encode()).decode().rstrip("=")


def _wallet_after(cursor: str) -> str:
    """The enterprise number a cursor from :func:`_wallet_cursor` goes on after."""
    refused = ValidationFailed("cursor is not one a page of the wallet list gave: start again without it")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise refused from None
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or _enterprise_number_in(number) != number:
        raise refused
    return number


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

    def wallets(self, q: str | None = None, cursor: str | None = None, limit: int = WALLET_PAGE) -> dict[str, Any]:
        """A page of wallets in order of enterprise number: ``{"wallets":
        [{"enterprise_number", "name"}], "next_cursor"}``.

        ``q`` matches an enterprise number in any spelling (``BE 0403.170.701``,
        ``0403170701``, ``403170701``) or any part of the name, whatever its case.
        ``cursor`` is the ``next_cursor`` of the page before: the page goes on after
        the last wallet that page showed (a keyset), so wallets opened meanwhile
        neither repeat nor push one out; ``next_cursor`` is None on the last page.
        """
        if not 1 <= limit <= MAX_WALLET_PAGE:
            raise ValidationFailed(f"limit must be from 1 to {MAX_WALLET_PAGE}")
        after = _wallet_after(cursor) if cursor else ""
        sql = f"SELECT enterprise_number, name FROM {s.WALLETS.name} WHERE enterprise_number > ?"
        params: list[Any] = [after]
        if q and q.strip():
            sql += f" AND ({_FOLD[self.target.dialect]}(name) LIKE ? ESCAPE '\\'"
            params.append(f"%{_like_escaped(q.strip().lower())}%")
            number = _enterprise_number_in(q)
            if number is not None:
                sql += " OR enterprise_number = ?"
                params.append(number)
            sql += ")"
        if self.target.dialect == "sqlite":
            self.target.connection.create_function(_FOLD["sqlite"], 1, _lower, deterministic=True)
        # ten digits each: every collation orders them alike, so the index on the column serves
        rows = self._rows(sql + " ORDER BY enterprise_number LIMIT ?", (*params, limit + 1))
        page = rows[:limit]
        more = len(rows) > limit
        return {
            "wallets": [{"enterprise_number": row["enterprise_number"], "name": row["name"]} for row in page],
            "next_cursor": _wallet_cursor(page[-1]["enterprise_number"]) if more else None,
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
