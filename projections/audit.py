"""The audit trail's retention (RULES.md §7): exports recorded, purges refused
for any row still retained or never exported.

A purge is recorded (cut-off date and the position it covered), so a rebuild
leaves exactly the purged rows out again and still equals the incremental views.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from ledger.domain.clock import SystemClock, brussels_date
from projections import schema as s
from projections.store import Target, connect


class PurgeRefused(Exception):
    """A purge that would remove a row still retained or never exported; nothing was purged."""


@dataclass(frozen=True)
class PurgeResult:
    before: date
    rows_purged: int
    through_position: int


def _target(database_url_or_target: str | Target) -> tuple[Target, bool]:
    if isinstance(database_url_or_target, Target):
        return database_url_or_target, False
    return connect(database_url_or_target), True


def mark_exported(
    database_url: str | Target,
    *,
    from_date: date,
    to_date: date,
    through_position: int,
    location: str = "",
    exported_at: datetime | None = None,
) -> None:
    """Record that every wallet event with a business date from ``from_date`` to
    ``to_date`` (both included) and a notification id up to ``through_position``
    was exported (read ``ledger.recorder.max_notification_id()`` before exporting)."""
    target, owned = _target(database_url)
    try:
        s.ensure_schema(target)
        moment = (exported_at or datetime.now(UTC)).isoformat()
        with target.transaction():
            target.execute(
                f"INSERT INTO {s.AUDIT_EXPORTS.name} (from_date, to_date, through_position, exported_at, location) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (from_date.isoformat(), to_date.isoformat(), through_position, moment, location),
            )
    finally:
        if owned:
            target.close()


def purge_audit_trail(database_url: str | Target, before: date, today: date | None = None) -> PurgeResult:
    """Purge audit-trail rows with a business date before ``before``; refused,
    with nothing purged, if any of them is still inside its retention period
    (``retain_until >= today``) or was never exported."""
    today = today or brussels_date(SystemClock().now())
    target, owned = _target(database_url)
    try:
        s.ensure_schema(target)
        cutoff = before.isoformat()
        trail = s.AUDIT_TRAIL.name
        with target.transaction():
            position, rebuild_until = s.tracking(target, lock=True)
            if rebuild_until is not None:
                raise PurgeRefused("a rebuild of the read models is under way; nothing purged")
            retained = target.query(
                f"SELECT COUNT(*), MAX(retain_until) FROM {trail} WHERE business_date < ? AND retain_until >= ?",
                (cutoff, today.isoformat()),
            )[0]
            if retained[0]:
                raise PurgeRefused(
                    f"{retained[0]} audit-trail row(s) before {cutoff} are retained until {retained[1]} or "
                    f"later (today is {today}); nothing purged"
                )
            unexported = target.query(
                f"SELECT COUNT(*) FROM {trail} t WHERE t.business_date < ? AND NOT EXISTS ("
                f"SELECT 1 FROM {s.AUDIT_EXPORTS.name} x WHERE t.business_date >= x.from_date "
                "AND t.business_date <= x.to_date AND t.notification_id <= x.through_position)",
                (cutoff,),
            )[0][0]
            if unexported:
                raise PurgeRefused(
                    f"{unexported} audit-trail row(s) before {cutoff} were never exported "
                    "(run kmo-ledger export first); nothing purged"
                )
            count = target.query(f"SELECT COUNT(*) FROM {trail} WHERE business_date < ?", (cutoff,))[0][0]
            if count:
                target.execute(f"DELETE FROM {trail} WHERE business_date < ?", (cutoff,))
                target.execute(
                    f"INSERT INTO {s.AUDIT_PURGES.name} (before_date, through_position, purged_at, rows_purged) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (before_date, through_position) DO UPDATE SET "
                    f"rows_purged = {s.AUDIT_PURGES.name}.rows_purged + excluded.rows_purged",
                    (cutoff, position, datetime.now(UTC).isoformat(), count),
                )
        return PurgeResult(before, count, position)
    finally:
        if owned:
            target.close()
