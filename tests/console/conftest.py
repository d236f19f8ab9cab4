"""A ledger for the console's tests: three wallets recorded on known dates, the
app on it (``TestClient``) and signing in as a role.

- ``0403170701`` Bakkerij Peeters: a training by DV.O207084 submitted on
  2 March 2026, funded on 5 March, 4,000.00 paid out on 1 April and a second
  payout of 1,000.00 ordered that day and never executed (overdue since);
  events 1 to 8.
- ``0202239951`` named ``<script>alert(1)</script>``: a training by another
  provider (DV.O999999), confirmed.
- :data:`TAMPERED` a plain wallet whose stored events a test may alter.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from api import create_app
from api.settings import Settings
from ledger.application import KmoLedger
from ledger.domain import commands as c
from tests.api.conftest import KEYS, OTHER_TRAINER, write_keys
from tests.conftest import BACK_OFFICE, OTHER_ENTERPRISE, PROVIDER_ACTOR, sme, training
from tests.scenarios.helpers import Story

SCRIPT_NAME = "<script>alert(1)</script>"
TAMPERED = "0100000565"
ORIGIN = "http://testserver"


@dataclass
class Recorded:
    database_url: str
    keys_file: Path
    peeters_application: str
    other_application: str


def record_story(folder: Path, url: str | None = None) -> Recorded:
    """The three wallets, recorded at ``url`` (default a SQLite file in ``folder``,
    where the keys file is written too)."""
    url = url or f"sqlite:///{folder / 'ledger.db'}"
    ledger = KmoLedger(url)
    try:
        with freeze_time("2026-03-02 09:00:00"):
            story = Story(ledger)
            peeters = story.submit(date(2026, 3, 16))
            opening = c.OpenWallet(enterprise_number=OTHER_ENTERPRISE, name=SCRIPT_NAME, sme=sme())
            ledger.open_wallet(opening, BACK_OFFICE)
            submission = c.SubmitApplication(**training(date(2026, 3, 16), provider=OTHER_TRAINER))
            _wallet, other = ledger.submit_application(OTHER_ENTERPRISE, submission, BACK_OFFICE)
            ledger.handle(OTHER_ENTERPRISE, other, c.ConfirmApplication(), PROVIDER_ACTOR)
            Story(ledger, TAMPERED).submit(date(2026, 3, 16))
        with freeze_time("2026-03-05 10:00:00"):
            story.fund(peeters, date(2026, 3, 5))
        with freeze_time("2026-04-01 10:00:00"):
            story.pay(peeters, "4000.00", date(2026, 4, 1))
            story.order(peeters, "1000.00")
    finally:
        ledger.close()
    return Recorded(url, write_keys(folder / "api-keys.json"), peeters, other)


@pytest.fixture
def recorded(tmp_path: Path, database_url: str) -> Recorded:
    """The story on SQLite and on PostgreSQL."""
    return record_story(tmp_path, database_url)


class Console:
    """A TestClient on the app, signing in as a role."""

    def __init__(self, client: TestClient):
        self.client = client

    def sign_in(self, who: str) -> None:
        answer = self.client.post(
            "/console/sign-in", data={"key": KEYS[who]}, headers={"Origin": ORIGIN}, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text

    def get(self, path: str, **params):
        return self.client.get(path, params=params)


@pytest.fixture
def console(recorded: Recorded) -> Iterator[Console]:
    app = create_app(Settings(database_url=recorded.database_url, api_keys_file=recorded.keys_file))
    with TestClient(app) as client:
        yield Console(client)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
