"""The read models' tables, as data: created, dropped and compared from here.

Dates are ISO text and money is integer cents (BIGINT) on every dialect, so a
view on PostgreSQL and a fresh fold into SQLite compare row for row.

Each table's key is a unique index rather than a PRIMARY KEY constraint, so a
rebuild can load the rows first and index them once, sorted, at the end
(inserting a million rows into random-keyed b-trees costs several times more).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ledger.domain.state import ACCOUNTS
from projections.log import MAX_WALLET
from projections.store import Target

SCHEMA_VERSION = 7
TRACKING_NAME = "kmo_ledger_views"
CREATION_LOCK = 0x6B6D6F2D76696577  # "kmo-view": PostgreSQL's advisory lock while the views are created

MONEY_COLUMNS = ACCOUNTS + (
    # after the net of the legs posted to each account (positive: money arrived
    # there), counters of what happened to the money
    "paid_out_own_share",
    "paid_out_subsidy",
    "refunded_own_share",
    "returned_subsidy",
    "recovered_repaid",
)
ACCOUNT_KINDS = ("enterprise", "government", "provider", "held", "due", "recovered")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    key_during_rebuild: bool = False
    """Keep the key index while a rebuild loads (a small table written by upserts)."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _type in self.columns)

    def create_table(self) -> str:
        columns = ", ".join(f"{name} {kind}" for name, kind in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({columns})"

    def create_indexes(self, with_key: bool = True, with_others: bool = True) -> list[str]:
        statements = []
        if with_key:
            statements.append(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {self.name}_key ON {self.name} ({', '.join(self.key)})"
            )
        if with_others:
            statements += [
                f"CREATE INDEX IF NOT EXISTS {self.name}_{'_'.join(index)} ON {self.name} ({', '.join(index)})"
                for index in self.indexes
            ]
        return statements


def _money() -> tuple[tuple[str, str], ...]:
    return tuple((name, "BIGINT NOT NULL") for name in MONEY_COLUMNS)


TEXT, TEXT_NULL, INT = "TEXT NOT NULL", "TEXT", "BIGINT NOT NULL"

WALLETS = Table(
    "projection_wallets",
    (
        ("wallet_id", TEXT),
        ("enterprise_number", TEXT),
        ("name", TEXT),
        ("opened_on", TEXT),
        ("longest_retain_until", TEXT_NULL),
    ),
    ("wallet_id",),
    (("enterprise_number",),),  # the wallet list, paged in this order
)
APPLICATIONS = Table(
    "projection_applications",
    (
        ("application_id", TEXT),
        ("wallet_id", TEXT),
        ("enterprise_number", TEXT),
        ("project_number", TEXT),
        ("provider", TEXT),
        ("service", TEXT),
        ("themes", TEXT),
        ("starts_on", TEXT),
        ("year", INT),
        ("ceiling_keys", TEXT),
        ("submitted_on", TEXT),
        ("retain_until", TEXT),
        ("own_share", INT),
        ("subsidy", INT),
        ("answer_by", TEXT),
        ("deposit_by", TEXT_NULL),
        ("complete_by", TEXT),
        ("payout_service_days", INT),
        ("confirmed_on", TEXT_NULL),
        ("completed_on", TEXT_NULL),
        ("own_share_received", INT),
        ("subsidy_received", INT),
        ("paid_out", INT),
        ("recovery_issued", INT),
        ("final_state", TEXT_NULL),
        ("final_on", TEXT_NULL),
    ),
    ("application_id",),
    (("provider",),),  # a provider's inbox
)
WALLET_BALANCES = Table("wallet_balances", (("enterprise_number", TEXT),) + _money(), ("enterprise_number",))
APPLICATION_BALANCES = Table(
    "application_balances",
    (("application_id", TEXT), ("enterprise_number", TEXT)) + _money(),
    ("application_id",),
    (("enterprise_number",),),
)
CEILINGS = Table(
    "ceilings",
    (
        ("enterprise_number", TEXT),
        ("year", INT),
        ("ceiling_key", TEXT),
        ("size", TEXT),
        ("rate", INT),
        ("ceiling", INT),
        ("claimed", INT),
        ("used", INT),
        ("freed", INT),
        ("lost", INT),
    ),
    ("enterprise_number", "year", "ceiling_key"),
)
AUDIT_TRAIL = Table(
    "audit_trail",
    (
        ("enterprise_number", TEXT),
        ("sequence", INT),
        ("notification_id", INT),
        ("type", TEXT),
        ("business_date", TEXT),
        ("recorded_at", TEXT),
        ("actor_key_id", TEXT),
        ("actor_role", TEXT),
        ("application_id", TEXT_NULL),
        ("legs", TEXT),
        ("hash", TEXT),
        ("retain_until", TEXT),
    ),
    ("enterprise_number", "sequence"),
)
DEADLINES_DUE = Table(
    "deadlines_due",
    (
        ("application_id", TEXT),
        ("enterprise_number", TEXT),
        ("project_number", TEXT),
        ("provider", TEXT),
        ("state", TEXT),
        ("rule", TEXT),
        ("deadline", TEXT),
    ),
    ("application_id",),
    (("deadline",),),
)
PROVIDER_INBOX = Table(
    "provider_inbox",
    (
        ("application_id", TEXT),
        ("provider", TEXT),
        ("enterprise_number", TEXT),
        ("project_number", TEXT),
        ("service", TEXT),
        ("themes", TEXT),
        ("starts_on", TEXT),
        ("submitted_on", TEXT),
        ("answer_by", TEXT),
        ("project_amount", INT),
    ),
    ("application_id",),
    (("provider",),),
)
PAYOUT_ORDERS = Table(
    "payout_orders",
    (
        ("order_id", TEXT),
        ("application_id", TEXT),
        ("enterprise_number", TEXT),
        ("project_number", TEXT),
        ("provider", TEXT),
        ("amount", INT),
        ("ordered_on", TEXT),
        ("due_by", TEXT),
        ("state", TEXT),
    ),
    ("order_id",),
    (("state", "ordered_on"),),
)
"""Every payout order, ``state`` as in the API: ``ordered`` (not executed yet),
``executed`` or ``cancelled``; ``due_by`` is the order date plus the payout
service days its application recorded."""
DAILY_TOTALS = Table(
    "daily_totals",
    (("day", TEXT), ("account_kind", TEXT), ("money_in", INT), ("money_out", INT)),
    ("day", "account_kind"),
    key_during_rebuild=True,
)
"""Money in and out per account kind and day: a receipt's bank value date, any
other money event's business date."""

FOLDED_TABLES = (
    WALLETS,
    APPLICATIONS,
    WALLET_BALANCES,
    APPLICATION_BALANCES,
    CEILINGS,
    AUDIT_TRAIL,
    DEADLINES_DUE,
    PROVIDER_INBOX,
    PAYOUT_ORDERS,
    DAILY_TOTALS,
)
"""Every table a fold of the events writes; a rebuild drops and refills exactly these."""

TRACKING = Table(
    "projection_tracking",
    (
        ("name", TEXT),
        ("position", INT),
        ("schema_version", INT),
        ("rebuild_until", "BIGINT"),
        ("rebuild_cursor", TEXT_NULL),
        ("rebuild_before", TEXT_NULL),
    ),
    ("name",),
)
"""Where the views stand: ``position`` (the last notification folded) and, while
a rebuild runs, the notification it rebuilds up to. A rebuild folds whole
wallets in ranges of wallet ids (one row each, named ``<name>/<n>``: the last
wallet finished and the end of the range); a range's row goes when it is done."""
AUDIT_EXPORTS = Table(
    "audit_exports",
    (("from_date", TEXT), ("to_date", TEXT), ("through_position", INT), ("exported_at", TEXT), ("location", TEXT)),
    ("from_date", "to_date", "through_position", "exported_at"),
)
"""Exports of the audit trail (written by the export tool); kept across rebuilds."""
AUDIT_PURGES = Table(
    "audit_purges",
    (("before_date", TEXT), ("through_position", INT), ("purged_at", TEXT), ("rows_purged", INT)),
    ("before_date", "through_position"),
)
"""Purges of the audit trail; a rebuild leaves the purged rows out again."""
KEPT_TABLES = (TRACKING, AUDIT_EXPORTS, AUDIT_PURGES)


class SchemaOutdated(RuntimeError):
    """The read models were built by another version of this code: rebuild them."""


def _create(target: Target, tables: tuple[Table, ...], indexed: bool) -> None:
    for table in tables:
        target.execute(table.create_table())
        for statement in table.create_indexes(with_key=indexed or table.key_during_rebuild, with_others=indexed):
            target.execute(statement)


def create_indexes(target: Target) -> None:
    """Index every folded table (after a rebuild loaded them)."""
    with _sorting_on_every_core(target):
        for table in FOLDED_TABLES:
            for statement in table.create_indexes():
                target.execute(statement)


@contextmanager
def _sorting_on_every_core(target: Target) -> Iterator[None]:
    """SQLite sorts an index's rows in one thread unless told otherwise; a
    rebuild indexes its tables once its folding processes are done, so the
    sort may take every core (a third off indexing 1,000,000 audit rows on
    two cores)."""
    if target.dialect != "sqlite":
        yield
        return
    threads = target.query("PRAGMA threads")[0][0]
    target.execute(f"PRAGMA threads = {os.cpu_count() or 1}")
    try:
        yield
    finally:
        target.execute(f"PRAGMA threads = {int(threads)}")


def tracking(target: Target, lock: bool = False) -> tuple[int, int | None] | None:
    """(position, rebuild_until), locked for the transaction when asked."""
    rows = target.query(
        f"SELECT position, rebuild_until FROM {TRACKING.name} WHERE name = ?" + (target.for_update if lock else ""),
        (TRACKING_NAME,),
    )
    return tuple(rows[0]) if rows else None


def wallet_ranges(target: Target) -> list[tuple[str, str, str]]:
    """The wallet ranges a rebuild has still to fold: (row name, last wallet done, end)."""
    return [
        tuple(row)
        for row in target.query(
            f"SELECT name, rebuild_cursor, rebuild_before FROM {TRACKING.name} WHERE name LIKE ? "
            f"ORDER BY name{target.collate}",
            (TRACKING_NAME + "/%",),
        )
    ]


def range_cursor(target: Target, name: str) -> str | None:
    """The last wallet a range finished, locked for the transaction (None: the range is done)."""
    rows = target.query(f"SELECT rebuild_cursor FROM {TRACKING.name} WHERE name = ?{target.for_update}", (name,))
    return rows[0][0] if rows else None


def ensure_schema(target: Target, check_version: bool = True) -> None:
    """Create what is missing; refuse views built by another schema version."""
    if target.table_exists(TRACKING.name):
        if not check_version:
            return
        rows = target.query(f"SELECT schema_version FROM {TRACKING.name} WHERE name = ?", (TRACKING_NAME,))
        if rows and rows[0][0] != SCHEMA_VERSION:
            raise SchemaOutdated(
                f"the read models have schema version {rows[0][0]}, this code writes {SCHEMA_VERSION}: "
                "run kmo-ledger rebuild-projections"
            )
        if rows:
            return
    with target.transaction():
        if target.dialect == "postgresql":  # processes starting together create them one at a time
            target.execute("SELECT pg_advisory_xact_lock(?)", (CREATION_LOCK,))
        _create(target, KEPT_TABLES, indexed=True)
        _create(target, FOLDED_TABLES, indexed=True)
        target.execute(
            f"INSERT INTO {TRACKING.name} (name, position, schema_version) VALUES (?, 0, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (TRACKING_NAME, SCHEMA_VERSION),
        )


@contextmanager
def _freed_pages_left_as_they_are(target: Target) -> Iterator[None]:
    """SQLite as Debian and Python build it overwrites every freed page with
    zeros (``secure_delete``): dropping the views of a million events wrote
    their whole size again, a quarter of a rebuild. Everything in them is
    derived from the events, which stay: a rebuild's drop leaves the freed
    pages as they are (a purge of the audit trail still zeroes what it
    deletes)."""
    if target.dialect != "sqlite":
        yield
        return
    secure = target.query("PRAGMA secure_delete")[0][0]
    target.execute("PRAGMA secure_delete = 0")
    try:
        yield
    finally:
        target.execute(f"PRAGMA secure_delete = {int(secure)}")


def wallet_bounds(ranges: int) -> list[str]:
    """``ranges + 1`` wallet ids that cut the wallet id space in equal ranges,
    from before the first wallet to after the last."""
    return [""] + [format(16**32 * k // ranges, "032x") for k in range(1, ranges)] + [MAX_WALLET]


def start_rebuild(target: Target, until: int, ranges: int = 1) -> None:
    """Drop every folded table and recreate it without indexes; the tracking rows
    record that a rebuild up to notification ``until`` is under way, in
    ``ranges`` ranges of wallet ids (exports and purges are kept)."""
    with target.transaction(), _freed_pages_left_as_they_are(target):
        for table in (TRACKING,) + FOLDED_TABLES:  # the tracking rows are written anew
            target.execute(f"DROP TABLE IF EXISTS {table.name}")
        _create(target, KEPT_TABLES, indexed=True)
        _create(target, FOLDED_TABLES, indexed=False)
        target.execute(
            f"INSERT INTO {TRACKING.name} (name, position, schema_version, rebuild_until) VALUES (?, 0, ?, ?)",
            (TRACKING_NAME, SCHEMA_VERSION, until),
        )
        bounds = wallet_bounds(ranges)
        target.executemany(
            f"INSERT INTO {TRACKING.name} (name, position, schema_version, rebuild_until, rebuild_cursor, "
            "rebuild_before) VALUES (?, 0, ?, ?, ?, ?)",
            [(f"{TRACKING_NAME}/{k:03d}", SCHEMA_VERSION, until, bounds[k], bounds[k + 1]) for k in range(ranges)],
        )
