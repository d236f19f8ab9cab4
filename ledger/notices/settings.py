"""The notices' settings, from the environment (read when made, never at import)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from stdnum import iban

from ledger.domain.commands import email_problem

DEFAULT_REMINDER_DAYS = (7, 2)


class NoticeSettings(BaseSettings):
    """``KMO_LEDGER_SMTP_URL`` (``smtp://host:port``) is where e-mail goes;
    ``KMO_LEDGER_NOTIFY`` runs the notifier inside ``serve`` (default: when an
    SMTP URL is set); ``KMO_LEDGER_NOTICE_REMINDER_DAYS`` the days before a
    deadline a reminder goes out (default ``7,2``); ``KMO_LEDGER_NOTICE_CONNECTIONS``
    the sessions or connections each receiver is sent to over at once (default 4)."""

    model_config = SettingsConfigDict(env_prefix="KMO_LEDGER_", extra="ignore")
    smtp_url: str | None = None
    notify: bool | None = None
    notice_reminder_days: str = ",".join(map(str, DEFAULT_REMINDER_DAYS))
    notice_sender: str = "kmo-portefeuille@notices.kmo-ledger.be"
    financial_manager_iban: str = "BE71 0961 2345 6769"
    financial_manager_name: str = "Financieel beheerder KMO-portefeuille"
    notice_max_attempts: int = 8
    notice_retry_seconds: float = 30.0
    """The first retry's wait; each later one doubles it (with jitter), up to a day."""
    notice_timeout_seconds: float = 10.0
    notice_connections: int = Field(default=4, ge=1, le=16)
    """Sessions (SMTP) or connections (a webhook host) one receiver is sent to over at once."""

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: str | None) -> str | None:
        if value:
            smtp_address(value)
        return value or None

    @field_validator("notice_reminder_days")
    @classmethod
    def _days(cls, value: str) -> str:
        reminder_days(value)
        return value

    @field_validator("notice_sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        problem = email_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("financial_manager_iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        if not iban.is_valid(value):
            raise ValueError(f"{value!r} is not a valid IBAN")
        return iban.format(value)

    @property
    def enabled(self) -> bool:
        return self.notify if self.notify is not None else self.smtp_url is not None

    @property
    def offsets(self) -> tuple[int, ...]:
        return reminder_days(self.notice_reminder_days)


def reminder_days(text: str) -> tuple[int, ...]:
    """``"7,2"`` -> (7, 2): whole days from 0 to 60, each once."""
    try:
        days = tuple(sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True))
    except ValueError:
        raise ValueError(f"{text!r}: days before a deadline are whole numbers separated by commas, e.g. 7,2") from None
    if any(not 0 <= day <= 60 for day in days):
        raise ValueError(f"{text!r}: each reminder falls 0 to 60 days before its deadline")
    return days


def smtp_address(url: str) -> tuple[str, int]:
    """``smtp://host:port`` -> (host, port); port 25 when left out."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{url!r} is not smtp://host:port")
    try:
        port = parts.port or 25
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number from 1 to 65535") from None
    return parts.hostname, port
