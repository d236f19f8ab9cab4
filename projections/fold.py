"""One batch of wallet events folded into the read models.

Events are decoded with ``orjson`` and handled as plain dicts (no pydantic
validation: the events were validated when they were recorded). A batch loads
the state it needs (wallets, applications), applies every event in memory,
then writes its changes as a few bulk statements: inserted audit rows, summed
money deltas, changed application rows. The runner writes them in the same
transaction as the new tracking position.

A *fresh* batch (a rebuild, which reads whole wallets at a time) needs no
stored state and writes only inserts.

The semantics mirror the ledger's one fold, :mod:`ledger.domain.fold`; the tests
check each view against it. What the two share (how an application ends, what
its next deadline is, how long a record is kept) is imported from ``ledger``.
Every event type has a handler in :data:`HANDLERS`, named explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import orjson

from ledger.domain import rules
from ledger.domain.events import ENDINGS
from ledger.domain.lifecycle import next_deadline_of
from ledger.domain.rules import retain_until
from ledger.domain.state import account_kind, application_state_of
from projections import schema as s
from projections.log import Notification
from projections.store import Target, chunks

LEG_SLOTS = {account: (i, 2 * s.ACCOUNT_KINDS.index(account_kind(account))) for i, account in enumerate(s.ACCOUNTS)}
"""Account -> (its money column, its kind's money-in slot in a day's totals)."""
PAID_OWN, PAID_SUBSIDY, REFUNDED, RETURNED, REPAID = (s.MONEY_COLUMNS.index(c) for c in s.MONEY_COLUMNS[8:])
N_MONEY = len(s.MONEY_COLUMNS)
APPLICATION_COLUMNS = s.APPLICATIONS.column_names
MUTABLE_COLUMNS = (
    "deposit_by",
    "confirmed_on",
    "completed_on",
    "own_share_received",
    "subsidy_received",
    "paid_out",
    "recovery_issued",
    "final_state",
    "final_on",
)
PARAMETER_CHUNK = 500
APPLICATION_ID_MARK = b'"application_id":"'


def cents(value: Any) -> int:
    """A stored euro string (``"2500.00"``, ``"-12.30"``) as integer cents."""
    if type(value) is str and len(value) > 3 and value[-3] == ".":
        return int(value.replace(".", "", 1))  # the stored form: always two decimals
    if type(value) is int:
        return value
    negative = value.startswith("-")
    whole, _, part = (value[1:] if negative else value).partition(".")
    amount = int(whole) * 100 + (int(part.ljust(2, "0")) if part else 0)
    return -amount if negative else amount


@lru_cache(maxsize=4096)
def kept_until(years: int, day: str) -> str:
    """:func:`ledger.domain.rules.retain_until` of an ISO day, as an ISO day (a ledger's
    events share few days: each is computed once)."""
    return retain_until(years, date.fromisoformat(day)).isoformat()


@lru_cache(maxsize=4096)
def days_after(day: str, days: int) -> str:
    """The ISO day ``days`` calendar days after ``day``."""
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


@lru_cache(maxsize=4096)
def wallet_record_retain_until(recorded_on: str, longest: str | None) -> str:
    """:func:`ledger.domain.rules.wallet_record_retain_until` of ISO days, as an ISO day."""
    return rules.wallet_record_retain_until(
        date.fromisoformat(recorded_on), None if longest is None else date.fromisoformat(longest)
    ).isoformat()


def application_state(app: dict[str, Any]) -> str:
    """:func:`ledger.domain.state.application_state_of` of a folded application."""
    return application_state_of(
        final_state=app["final_state"],
        completed=app["completed_on"] is not None,
        project_amount=app["own_share"] + app["subsidy"],
        paid_out=app["paid_out"],
        recovery_issued=bool(app["recovery_issued"]),
        confirmed=app["confirmed_on"] is not None,
        funded=app["own_share_received"] == app["own_share"] and app["subsidy_received"] == app["subsidy"],
    )


def next_deadline(app: dict[str, Any]) -> tuple[str, str, str] | None:
    """(state, rule, date) of an open application's next deadline (:func:`ledger.domain.rules.next_deadline_of`)."""
    project_amount = app["own_share"] + app["subsidy"]
    found = next_deadline_of(
        ended=app["final_state"] is not None,
        confirmed=app["confirmed_on"] is not None,
        own_share_short=app["own_share_received"] < app["own_share"],
        completed=app["completed_on"] is not None,
        fully_paid_out=project_amount > 0 and app["paid_out"] >= project_amount,
        holds_money=app["own_share_received"] + app["subsidy_received"] - app["paid_out"] > 0,
        answer_by=app["answer_by"],
        deposit_by=app["deposit_by"],
        complete_by=app["complete_by"],
    )
    return None if found is None else (application_state(app), *found)


def awaits_provider(app: dict[str, Any]) -> bool:
    """Submitted, and not yet confirmed, refused, lapsed or otherwise ended."""
    return app["final_state"] is None and app["confirmed_on"] is None


class BatchFold:
    """Folds one batch of notifications; :meth:`write` stores what changed."""

    def __init__(self, target: Target, purges: Sequence[tuple[str, int]] = (), fresh: bool = False):
        self.target = target
        self.purges = purges
        self.fresh = fresh
        """Whole wallets from their first event: nothing to load, only inserts to write."""
        self.wallets: dict[str, list[Any]] = {}
        """wallet id -> [wallet id, enterprise number, name, opened_on, longest retain_until, changed,
        the batch's money deltas]"""
        self.wallets_by_number: dict[str, list[Any]] = {}
        self.applications: dict[str, dict[str, Any]] = {}
        self.derived_before: dict[str, tuple[Any, bool]] = {}
        self.changed_applications: set[str] = set()
        self.new_applications: set[str] = set()
        self.new_wallets: set[str] = set()
        self.audit_rows: list[list[Any]] = []
        self.wallet_rows: list[list[Any]] = []
        """The batch's audit rows of records that belong to no application."""
        self.longer_kept: dict[str, str] = {}
        """enterprise number -> the longer retention its wallet-level rows get."""
        self.application_money: dict[str, list[int]] = {}
        self.wallet_money: dict[str, list[int]] = {}
        self.new_ceilings: dict[tuple[str, int, str], tuple[str, int, int]] = {}
        self.ceiling_deltas: dict[tuple[str, int, str], list[int]] = {}
        self.new_orders: dict[str, list[Any]] = {}
        """order id -> the payout-order row of an order placed in this batch."""
        self.order_states: dict[str, str] = {}
        """order id -> the new state of an order placed before this batch."""
        self.daily: dict[str, list[int]] = {}
        """day -> money in and out per account kind (in ``s.ACCOUNT_KINDS`` order)."""
        self.applied = 0

    # ------------------------------------------------------------------ loading

    def fold(self, notifications: Sequence[Notification]) -> None:
        """Apply a batch; each state is decoded just before it is applied and
        dropped after, so a batch never holds more than one decoded event."""
        if not self.fresh:
            self._load(notifications)
        apply = self.apply
        for notification in notifications:
            apply(*notification)
        self.applied += len(notifications)

    def _load(self, notifications: Sequence[Notification]) -> None:
        """Read the wallets and applications the batch touches, in a few queries."""
        wallet_columns = ("wallet_id", "enterprise_number", "name", "opened_on", "longest_retain_until")
        for row in self._rows(s.WALLETS.name, wallet_columns, "wallet_id", {n[1] for n in notifications}):
            wallet = self.wallets[row[0]] = [*row, False, None]
            self.wallets_by_number[row[1]] = wallet
        application_ids = set()
        for n in notifications:
            state = n[4]
            at = state.find(APPLICATION_ID_MARK)
            if at >= 0:
                at += len(APPLICATION_ID_MARK)
                application_ids.add(state[at : state.index(b'"', at)].decode())
        self._load_applications(application_ids)

    def _rows(self, table: str, columns: Sequence[str], key: str, values: Iterable[str]) -> Iterable[Sequence[Any]]:
        """The rows of ``table`` whose ``key`` is one of ``values``, a few queries for all."""
        for chunk in chunks(values, PARAMETER_CHUNK):
            yield from self.target.query(
                f"SELECT {', '.join(columns)} FROM {table} WHERE {key} IN ({', '.join('?' * len(chunk))})", chunk
            )

    def _load_applications(self, application_ids: Iterable[str]) -> None:
        for row in self._rows(s.APPLICATIONS.name, APPLICATION_COLUMNS, "application_id", application_ids):
            app = dict(zip(APPLICATION_COLUMNS, row, strict=True))
            self.applications[app["application_id"]] = app
            self.derived_before[app["application_id"]] = (next_deadline(app), awaits_provider(app))

    # ------------------------------------------------------------------ applying

    def apply(self, notification_id: int, wallet_id: str, version: int, type_name: str, state: bytes) -> None:
        self.apply_decoded(notification_id, wallet_id, version, type_name, orjson.loads(state))

    def apply_decoded(self, notification_id: int, wallet_id: str, version: int, type_name: str, e: dict) -> None:
        """:meth:`apply` to a state decoded already (verification decodes each row
        once for its own checks and this fold); ``e`` is read, never changed."""
        if type_name == "WalletOpened":
            wallet = self._open_wallet(wallet_id, e)
        else:
            wallet = self.wallets.get(wallet_id)
            if wallet is None:
                raise LookupError(f"notification {notification_id}: {type_name} of a wallet never opened")
        day = e["business_date"]
        application_id = e.get("application_id")
        if application_id is None:
            app = None
            retain = wallet_record_retain_until(day, wallet[4])
        else:
            if type_name == "ApplicationSubmitted":
                app = self._submit(wallet, e)
            else:
                app = self.applications.get(application_id) or self._load_missing(application_id, notification_id)
                handler = HANDLERS.get(type_name)
                if handler is None:
                    raise LookupError(
                        f"notification {notification_id}: the read models have no handler for {type_name}"
                    )
                handler(self, app, e)
            retain = app["retain_until"]
        legs = e.get("legs")
        if legs:
            self._post_legs(wallet, app, e.get("value_date") or day, legs)
            legs_json = orjson.dumps(legs).decode()
        else:
            legs_json = "[]"
        if self.purges and self._purged(day, notification_id):
            return
        actor = e["actor"]
        row = [
            wallet[1],
            version,
            notification_id,
            type_name,
            day,
            e["timestamp"],
            actor["key_id"],
            actor["role"],
            application_id,
            legs_json,
            e["hash"],
            retain,
        ]
        self.audit_rows.append(row)
        if app is None:
            self.wallet_rows.append(row)

    def _load_missing(self, application_id: str, notification_id: int) -> dict[str, Any]:
        if not self.fresh:
            self._load_applications([application_id])  # not found by the batch's scan
        app = self.applications.get(application_id)
        if app is None:
            raise LookupError(f"notification {notification_id}: an event of an unknown application {application_id}")
        return app

    def _purged(self, business_date: str, notification_id: int) -> bool:
        for before, through in self.purges:
            if business_date < before and notification_id <= through:
                return True
        return False

    def _open_wallet(self, wallet_id: str, e: dict) -> list[Any]:
        wallet = [wallet_id, e["enterprise_number"], e["name"], e["business_date"], None, True, None]
        self.wallets[wallet_id] = wallet
        self.wallets_by_number[wallet[1]] = wallet
        self.new_wallets.add(wallet[1])
        self._vectors(wallet, None)
        return wallet

    def _submit(self, wallet: list[Any], e: dict) -> dict[str, Any]:
        enterprise_number = wallet[1]
        deadlines = e["deadlines"]
        subsidy = cents(e["subsidy"])
        year = e["year"]
        keep = kept_until(e["retention_years"], e["business_date"])
        app = {
            "application_id": e["application_id"],
            "wallet_id": wallet[0],
            "enterprise_number": enterprise_number,
            "project_number": e["project_number"],
            "provider": e["provider"],
            "service": e["service"],
            "themes": orjson.dumps(e["themes"]).decode(),
            "starts_on": e["starts_on"],
            "year": year,
            "ceiling_keys": ",".join([figure["key"] for figure in e["ceilings"]]),
            "submitted_on": e["business_date"],
            "retain_until": keep,
            "own_share": cents(e["own_share"]),
            "subsidy": subsidy,
            "answer_by": deadlines["answer_by"],
            "deposit_by": deadlines["deposit_by"],
            "complete_by": deadlines["complete_by"],
            "payout_service_days": e["payout_service_days"],
            "confirmed_on": None,
            "completed_on": None,
            "own_share_received": 0,
            "subsidy_received": 0,
            "paid_out": 0,
            "recovery_issued": 0,
            "final_state": None,
            "final_on": None,
        }
        application_id = app["application_id"]
        self.applications[application_id] = app
        self.derived_before.setdefault(application_id, (None, False))
        self.changed_applications.add(application_id)
        self.new_applications.add(application_id)
        self._vectors(wallet, app)
        for figure in e["ceilings"]:
            slot = (enterprise_number, year, figure["key"])
            self.new_ceilings.setdefault(slot, (e["size"], e["rate"], cents(figure["ceiling"])))
            self._ceiling(slot, subsidy, 0, 0, 0)
        if wallet[4] is None or keep > wallet[4]:
            wallet[4] = keep
            wallet[5] = True
            self.longer_kept[enterprise_number] = keep
        return app

    def _ceiling(self, slot: tuple[str, int, str], claimed: int, used: int, freed: int, lost: int) -> None:
        delta = self.ceiling_deltas.get(slot)
        if delta is None:
            self.ceiling_deltas[slot] = [claimed, used, freed, lost]
        else:
            delta[0] += claimed
            delta[1] += used
            delta[2] += freed
            delta[3] += lost

    def _ceilings_of(self, app: dict[str, Any], claimed: int, used: int, freed: int, lost: int = 0) -> None:
        for key in app["ceiling_keys"].split(","):
            if key:
                self._ceiling((app["enterprise_number"], app["year"], key), claimed, used, freed, lost)

    def _vectors(self, wallet: list[Any], app: dict[str, Any] | None) -> tuple[list[int], list[int]]:
        """The batch's money deltas of an application and of its wallet."""
        wallet_vector = wallet[6]
        if wallet_vector is None:
            wallet_vector = wallet[6] = self.wallet_money.setdefault(wallet[1], [0] * N_MONEY)
        if app is None:
            return [0] * N_MONEY, wallet_vector  # money posted outside an application: the wallet only
        app_vector = app.get("_money")
        if app_vector is None:
            app_vector = app["_money"] = self.application_money.setdefault(app["application_id"], [0] * N_MONEY)
        return app_vector, wallet_vector

    def _count(self, app: dict[str, Any], column: int, amount: int) -> None:
        app_vector, wallet_vector = self._vectors(self.wallets_by_number[app["enterprise_number"]], app)
        app_vector[column] += amount
        wallet_vector[column] += amount

    def _post_legs(self, wallet: list[Any], app: dict[str, Any] | None, day: str, legs: list[dict]) -> None:
        """Post the legs to the balances, and to the day's totals (``day``: a
        receipt's value date, any other event's business date)."""
        app_vector, wallet_vector = self._vectors(wallet, app)
        totals = self.daily.get(day)
        if totals is None:
            totals = self.daily[day] = [0] * (2 * len(s.ACCOUNT_KINDS))
        for leg in legs:
            index, kind = LEG_SLOTS[leg["account"]]
            amount = leg["amount"]
            amount = int(amount.replace(".", "", 1)) if amount[-3:-2] == "." else cents(amount)
            app_vector[index] += amount
            wallet_vector[index] += amount
            if amount >= 0:
                totals[kind] += amount
            else:
                totals[kind + 1] -= amount

    # handlers: one per event type that changes an application (legs are posted by apply)

    def _changed(self, app: dict[str, Any]) -> None:
        self.changed_applications.add(app["application_id"])

    def _confirmed(self, app: dict[str, Any], e: dict) -> None:
        app["confirmed_on"] = e["business_date"]
        if e.get("deposit_by") is not None:
            app["deposit_by"] = e["deposit_by"]
        self._changed(app)

    def _own_share_deposited(self, app: dict[str, Any], e: dict, sign: int = 1) -> None:
        app["own_share_received"] += sign * cents(e["amount"])
        self._changed(app)

    def _subsidy_topped_up(self, app: dict[str, Any], e: dict, sign: int = 1) -> None:
        app["subsidy_received"] += sign * cents(e["amount"])
        self._changed(app)

    def _order_state(self, order_id: str, state: str) -> None:
        row = self.new_orders.get(order_id)
        if row is None:
            self.order_states[order_id] = state
        else:
            row[-1] = state

    def _cancel_orders(self, e: dict) -> None:
        for order_id in e.get("cancelled_orders", ()):
            self._order_state(order_id, "cancelled")

    def _payout_ordered(self, app: dict[str, Any], e: dict) -> None:
        ordered_on = e["business_date"]
        due_by = days_after(ordered_on, app["payout_service_days"])
        self.new_orders[e["order_id"]] = [
            e["order_id"],
            app["application_id"],
            app["enterprise_number"],
            app["project_number"],
            app["provider"],
            cents(e["amount"]),
            ordered_on,
            due_by,
            "ordered",
        ]

    def _payout_executed(self, app: dict[str, Any], e: dict, sign: int = 1) -> None:
        self._order_state(e["order_id"], "executed" if sign > 0 else "ordered")
        own_share_part = sign * cents(e["own_share_part"])
        subsidy_part = sign * cents(e["subsidy_part"])
        app_vector, wallet_vector = self._vectors(self.wallets_by_number[app["enterprise_number"]], app)
        app_vector[PAID_OWN] += own_share_part
        wallet_vector[PAID_OWN] += own_share_part
        app_vector[PAID_SUBSIDY] += subsidy_part
        wallet_vector[PAID_SUBSIDY] += subsidy_part
        self._ceilings_of(app, 0, subsidy_part, 0)
        app["paid_out"] += own_share_part + subsidy_part
        self._changed(app)

    def _recovery_issued(self, app: dict[str, Any], e: dict) -> None:
        self._cancel_orders(e)
        app["recovery_issued"] = 1
        self._changed(app)

    def _recovery_repaid(self, app: dict[str, Any], e: dict, sign: int = 1) -> None:
        self._count(app, REPAID, sign * cents(e["amount"]))

    def _refund_executed(self, app: dict[str, Any], e: dict, sign: int = 1) -> None:
        column = REFUNDED if e["kind"] == "own_share_to_enterprise" else RETURNED
        self._count(app, column, sign * cents(e["amount"]))

    def _service_completed(self, app: dict[str, Any], e: dict) -> None:
        app["completed_on"] = e["completed_on"]
        self._changed(app)

    def _event_reversed(self, app: dict[str, Any], e: dict) -> None:
        undo = RECEIPT_HANDLERS[e["reversed_type"]]
        undo(self, app, e["reversed_event"], -1)

    # ------------------------------------------------------------------ writing

    def write(self) -> None:
        """Store the batch's changes (the caller holds the transaction)."""
        t = self.target
        for row in self.wallet_rows:
            longer = self.longer_kept.get(row[0])
            if longer is not None and row[11] < longer:
                row[11] = longer
        if self.fresh:
            t.insert_rows(s.WALLETS.name, s.WALLETS.column_names, [w[:5] for w in self.wallets.values()])
        else:
            t.executemany(
                f"INSERT INTO {s.WALLETS.name} (wallet_id, enterprise_number, name, opened_on, "
                "longest_retain_until) VALUES (?, ?, ?, ?, ?) ON CONFLICT (wallet_id) DO UPDATE SET "
                "longest_retain_until = excluded.longest_retain_until",
                [w[:5] for w in self.wallets.values() if w[5]],
            )
        self._write_applications()
        self._write_money()
        self._write_ceilings()
        t.insert_rows(s.AUDIT_TRAIL.name, s.AUDIT_TRAIL.column_names, self.audit_rows)
        if not self.fresh:
            t.executemany(
                f"UPDATE {s.AUDIT_TRAIL.name} SET retain_until = ? "
                "WHERE enterprise_number = ? AND application_id IS NULL AND retain_until < ?",
                [(keep, number, keep) for number, keep in self.longer_kept.items()],
            )
        t.insert_rows(s.PAYOUT_ORDERS.name, s.PAYOUT_ORDERS.column_names, list(self.new_orders.values()))
        t.executemany(
            f"UPDATE {s.PAYOUT_ORDERS.name} SET state = ? WHERE order_id = ?",
            [(state, order_id) for order_id, state in self.order_states.items()],
        )
        t.executemany(
            f"INSERT INTO {s.DAILY_TOTALS.name} (day, account_kind, money_in, money_out) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (day, account_kind) DO UPDATE SET "
            f"money_in = {s.DAILY_TOTALS.name}.money_in + excluded.money_in, "
            f"money_out = {s.DAILY_TOTALS.name}.money_out + excluded.money_out",
            [
                (day, kind, totals[2 * k], totals[2 * k + 1])
                for day, totals in self.daily.items()
                for k, kind in enumerate(s.ACCOUNT_KINDS)
                if totals[2 * k] or totals[2 * k + 1]
            ],
        )

    def _write_applications(self) -> None:
        t = self.target
        changed = [self.applications[i] for i in self.changed_applications]
        new = self.new_applications
        t.insert_rows(
            s.APPLICATIONS.name,
            APPLICATION_COLUMNS,
            [[app[c] for c in APPLICATION_COLUMNS] for app in changed if app["application_id"] in new],
        )
        t.executemany(
            f"UPDATE {s.APPLICATIONS.name} SET {', '.join(f'{c} = ?' for c in MUTABLE_COLUMNS)} "
            "WHERE application_id = ?",
            [
                (*(app[c] for c in MUTABLE_COLUMNS), app["application_id"])
                for app in changed
                if app["application_id"] not in new
            ],
        )
        deadline_rows, inbox_rows, no_deadline, not_in_inbox = [], [], [], []
        for app in changed:
            application_id = app["application_id"]
            deadline_before, inbox_before = self.derived_before[application_id]
            deadline, inbox = next_deadline(app), awaits_provider(app)
            if deadline != deadline_before:
                if deadline is None:
                    no_deadline.append((application_id,))
                else:
                    deadline_rows.append(
                        (application_id, app["enterprise_number"], app["project_number"], app["provider"], *deadline)
                    )
            if inbox != inbox_before:
                if inbox:
                    inbox_rows.append(
                        (
                            application_id,
                            app["provider"],
                            app["enterprise_number"],
                            app["project_number"],
                            app["service"],
                            app["themes"],
                            app["starts_on"],
                            app["submitted_on"],
                            app["answer_by"],
                            app["own_share"] + app["subsidy"],
                        )
                    )
                else:
                    not_in_inbox.append((application_id,))
        if self.fresh:
            t.insert_rows(s.DEADLINES_DUE.name, s.DEADLINES_DUE.column_names, deadline_rows)
            t.insert_rows(s.PROVIDER_INBOX.name, s.PROVIDER_INBOX.column_names, inbox_rows)
            return
        t.executemany(
            f"INSERT INTO {s.DEADLINES_DUE.name} ({', '.join(s.DEADLINES_DUE.column_names)}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (application_id) DO UPDATE SET "
            "state = excluded.state, rule = excluded.rule, deadline = excluded.deadline",
            deadline_rows,
        )
        t.executemany(f"DELETE FROM {s.DEADLINES_DUE.name} WHERE application_id = ?", no_deadline)
        t.executemany(
            f"INSERT INTO {s.PROVIDER_INBOX.name} ({', '.join(s.PROVIDER_INBOX.column_names)}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (application_id) DO NOTHING",
            inbox_rows,
        )
        t.executemany(f"DELETE FROM {s.PROVIDER_INBOX.name} WHERE application_id = ?", not_in_inbox)

    def _write_money(self) -> None:
        t = self.target
        add = ", ".join(f"{c} = {c} + ?" for c in s.MONEY_COLUMNS)
        wallets, new_wallets = self.wallet_money, self.new_wallets
        t.insert_rows(
            s.WALLET_BALANCES.name,
            s.WALLET_BALANCES.column_names,
            [(number, *wallets[number]) for number in new_wallets],
        )
        t.executemany(
            f"UPDATE {s.WALLET_BALANCES.name} SET {add} WHERE enterprise_number = ?",
            [(*vector, number) for number, vector in wallets.items() if number not in new_wallets and any(vector)],
        )
        money, new = self.application_money, self.new_applications
        t.insert_rows(
            s.APPLICATION_BALANCES.name,
            s.APPLICATION_BALANCES.column_names,
            [(i, self.applications[i]["enterprise_number"], *money[i]) for i in new],
        )
        t.executemany(
            f"UPDATE {s.APPLICATION_BALANCES.name} SET {add} WHERE application_id = ?",
            [
                (*vector, application_id)
                for application_id, vector in money.items()
                if application_id not in new and application_id is not None and any(vector)
            ],
        )

    def _write_ceilings(self) -> None:
        t = self.target
        deltas = self.ceiling_deltas
        if self.fresh:
            t.insert_rows(
                s.CEILINGS.name,
                s.CEILINGS.column_names,
                [(*slot, *figures, *deltas.get(slot, (0, 0, 0, 0))) for slot, figures in self.new_ceilings.items()],
            )
            return
        t.executemany(
            f"INSERT INTO {s.CEILINGS.name} ({', '.join(s.CEILINGS.column_names)}) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, 0) ON CONFLICT (enterprise_number, year, ceiling_key) DO NOTHING",
            [(*slot, *figures) for slot, figures in self.new_ceilings.items()],
        )
        t.executemany(
            f"UPDATE {s.CEILINGS.name} SET claimed = claimed + ?, used = used + ?, freed = freed + ?, lost = lost + ? "
            "WHERE enterprise_number = ? AND year = ? AND ceiling_key = ?",
            [(*delta, *slot) for slot, delta in deltas.items() if any(delta)],
        )


def _ending(final_state: str) -> Callable[[BatchFold, dict, dict], None]:
    """An event that ends an application: the ceiling may be freed or lost (legs are posted by apply)."""

    def ended(fold: BatchFold, app: dict[str, Any], e: dict) -> None:
        freed = cents(e.get("ceiling_freed", 0))
        returned = cents(e.get("ceiling_used_returned", 0))
        lost = cents(e.get("ceiling_lost", 0))
        if freed > 0 or returned > 0 or lost > 0:
            fold._ceilings_of(app, -freed, -returned, freed, lost)
        app["final_state"] = final_state
        app["final_on"] = e["business_date"]
        fold._cancel_orders(e)
        fold._changed(app)

    return ended


def _recorded_by_apply(fold: BatchFold, app: dict[str, Any], e: dict) -> None:
    """Handled in :meth:`BatchFold.apply` itself: it opens the wallet or the application row."""


def _no_read_model(fold: BatchFold, app: dict[str, Any], e: dict) -> None:
    """No read model keeps what this event records beyond its audit-trail row."""


RECEIPT_HANDLERS: dict[str, Callable[..., None]] = {
    "OwnShareDeposited": BatchFold._own_share_deposited,
    "SubsidyToppedUp": BatchFold._subsidy_topped_up,
    "PayoutExecuted": BatchFold._payout_executed,
    "RecoveryRepaid": BatchFold._recovery_repaid,
    "RefundExecuted": BatchFold._refund_executed,
}
HANDLERS: dict[str, Callable[[BatchFold, Any, dict], None]] = {
    "WalletOpened": _recorded_by_apply,
    "SmeFiguresFiled": _no_read_model,
    "ContactEmailChanged": _no_read_model,
    "ApplicationSubmitted": _recorded_by_apply,
    "ApplicationConfirmed": BatchFold._confirmed,
    "ApplicationRefused": _ending(ENDINGS["ApplicationRefused"]),
    "OwnShareDeposited": BatchFold._own_share_deposited,
    "SubsidyToppedUp": BatchFold._subsidy_topped_up,
    "PayoutOrdered": BatchFold._payout_ordered,
    "PayoutExecuted": BatchFold._payout_executed,
    "ProjectStopped": _ending(ENDINGS["ProjectStopped"]),
    "RecoveryIssued": BatchFold._recovery_issued,
    "RecoveryRepaid": BatchFold._recovery_repaid,
    "RefundExecuted": BatchFold._refund_executed,
    "ApplicationLapsed": _ending(ENDINGS["ApplicationLapsed"]),
    "ProjectClosed": _ending(ENDINGS["ProjectClosed"]),
    "ServiceCompleted": BatchFold._service_completed,
    "EventReversed": BatchFold._event_reversed,
}
"""Every event type, named: what it changes in the read models."""
