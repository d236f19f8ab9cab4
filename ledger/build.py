"""The one place a ledger is built: settings from the environment -> ``KmoLedger``.

The API (:func:`api.create_app`), every command of the command line and the
projection workers build their ledger here; nothing else reads
``KMO_LEDGER_DATABASE_URL``. Nothing is built at import time.
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.application import KmoLedger
from ledger.domain.clock import Clock
from ledger.storage import DEFAULT_DATABASE_URL
from ledger.storage.presence import where
from ledger.storage.sandbox import open_mode


class LedgerSettings(BaseSettings):
    """Where the ledger keeps its events: ``KMO_LEDGER_DATABASE_URL``, read when made;
    ``KMO_LEDGER_SANDBOX=true`` for a sandbox, whose clock can be moved forward."""

    model_config = SettingsConfigDict(env_prefix="KMO_LEDGER_", extra="ignore")
    database_url: str = DEFAULT_DATABASE_URL
    sandbox: bool = False


def build_ledger(
    settings: LedgerSettings | None = None, *, clock: Clock | None = None, env: dict[str, Any] | None = None
) -> KmoLedger:
    """The ledger on ``settings`` (default: the environment, read now); ``env``
    adds library settings (e.g. ``{"CREATE_TABLE": "n"}`` for a worker process).

    Its store is marked a sandbox's or production's when first opened, and
    refused in the other mode (:func:`ledger.storage.sandbox.open_mode`); in
    sandbox mode the ledger reads the sandbox clock kept in the store."""
    settings = settings or LedgerSettings()
    ledger = KmoLedger(settings.database_url, clock=clock, env=env)
    try:
        sandbox_clock = open_mode(ledger, settings.sandbox, where(settings.database_url))
    except BaseException:
        ledger.close()
        raise
    if sandbox_clock is not None:
        ledger.clock = sandbox_clock
    return ledger


def ledger_at(database_url: str, **options: Any) -> KmoLedger:
    """:func:`build_ledger` on a given database URL (tests, tools given a URL)."""
    return build_ledger(LedgerSettings(database_url=database_url), **options)
