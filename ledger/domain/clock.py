"""The clock: injected, so tests move it with freezegun and never sleep."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware."""


class SystemClock:
    """Reads the machine's clock at every call (never a time captured at start-up)."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def brussels_date(moment: datetime) -> date:
    """The Brussels calendar date of a moment: every business date is one."""
    return moment.astimezone(BRUSSELS).date()
