"""The clock: injected, so tests move it with freezegun and never sleep, and a
sandbox (``KMO_LEDGER_SANDBOX=true``) moves it forward on request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from ledger.domain.errors import ValidationFailed

BRUSSELS = ZoneInfo("Europe/Brussels")
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
"""The dates the ledger accepts anywhere (the API, the command line, SME figures' years)."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware."""


class SystemClock:
    """Reads the machine's clock at every call (never a time captured at start-up)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def brussels_date(moment: datetime) -> date:
    """The Brussels calendar date of a moment: every business date is one."""
    return moment.astimezone(BRUSSELS).date()


class ShiftedClock:
    """A sandbox's clock: ``base`` (the machine's) moved forward by an offset
    that is asked for at every reading, so whoever keeps the offset (the
    store, for every server process) moves every reader at once. It still
    runs: a second later on the machine is a second later here."""

    def __init__(self, offset: Callable[[], timedelta], base: Clock | None = None):
        self.offset = offset
        self.base = base or SystemClock()

    def now(self) -> datetime:
        return self.base.now() + self.offset()


def moved_offset(base_now: datetime, offset: timedelta, requested: datetime) -> timedelta:
    """The offset that makes a sandbox clock, now ``base_now + offset``, show
    ``requested``. The clock moves forward only (what was recorded stays in the
    past), to a moment with its UTC offset, within the dates the ledger knows."""
    if requested.tzinfo is None or requested.utcoffset() is None:
        raise ValidationFailed(f"{requested.isoformat()} has no UTC offset: write it like 2026-03-20T09:00:00+01:00")
    current = base_now + offset
    if requested < current:
        raise ValidationFailed(
            f"the sandbox clock shows {current.astimezone(UTC).isoformat()} already: it moves forward only"
        )
    if brussels_date(requested) > LATEST:
        raise ValidationFailed(f"{requested.isoformat()} lies after the dates the ledger knows (to {LATEST})")
    return requested - base_now
