"""The clock: injected, so tests move it with freezegun and never sleep."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

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
