"""``kmo-ledger run-deadlines``: every passed deadline applied, what lapsed printed."""

from __future__ import annotations

import json
from datetime import date

import pytest
from freezegun import freeze_time

from scripts import run_deadlines
from tests.conftest import ENTERPRISE
from tests.scenarios.helpers import Story
from tests.tools.helpers import TOOL_CLOCK, Tools


@pytest.fixture
def tools(monkeypatch, capsys, database_url):
    return Tools(monkeypatch, capsys, database_url)


def test_an_unanswered_application_lapses_once(tools, ledger):
    with freeze_time("2026-03-02 09:00:00"):
        application_id = Story(ledger).submit(date(2026, 3, 16))
    with freeze_time("2026-03-20 09:00:00", **TOOL_CLOCK):  # the provider had until 16 March
        outcome = tools.run(run_deadlines.main, "--json")
        assert outcome.code == 0
        assert json.loads(outcome.out) == {
            "lapsed": [
                {
                    "enterprise_number": ENTERPRISE,
                    "application_id": application_id,
                    "rule": "provider_answer",
                    "deadline": "2026-03-16",
                }
            ]
        }
        again = tools.run(run_deadlines.main)
        assert again.code == 0 and "0 application(s) lapsed" in again.out
    assert ledger.application_summary(ENTERPRISE, application_id)["state"] == "lapsed"


def test_nothing_due_prints_nothing_lapsed(tools, ledger):
    with freeze_time("2026-03-02 09:00:00", **TOOL_CLOCK):
        Story(ledger).submit(date(2026, 3, 16))
        outcome = tools.run(run_deadlines.main)
    assert outcome.code == 0 and "0 application(s) lapsed or closed" in outcome.out
