"""``kmo-ledger replay``: a wallet as it stood on a date, under the rules in force then."""

from __future__ import annotations

import json
from datetime import date

import pytest
from freezegun import freeze_time

from ledger.domain import commands as c
from scripts import replay
from tests.conftest import BACK_OFFICE
from tests.scenarios.helpers import Story
from tests.tools.helpers import Tools


@pytest.fixture
def tools(monkeypatch, capsys, database_url):
    return Tools(monkeypatch, capsys, database_url)


@pytest.fixture
def across_regimes(ledger):
    """One application in the simplified regime (2019-11), one in the current (2020-01)."""
    with freeze_time("2019-11-04 09:00:00"):
        story = Story(ledger)
        story.submit(date(2019, 11, 18))
    with freeze_time("2020-01-13 09:00:00"):
        story.submit(date(2020, 1, 27))
    return story


def replayed(tools: Tools, as_of: str) -> dict:
    outcome = tools.run(replay.main, "0403 170 701", "--as-of", as_of, "--json")
    assert outcome.code == 0, outcome.err
    return json.loads(outcome.out)


def ceiling(report: dict, year: int) -> dict:
    (found,) = [c for c in report["state"]["ceilings"] if c["year"] == year]
    return found


def test_before_the_regime_change_the_wallet_shows_the_simplified_rate_and_ceiling(tools, across_regimes):
    report = replayed(tools, "2019-12-15")
    assert [row["type"] for row in report["timeline"]] == ["WalletOpened", "ApplicationSubmitted"]
    (application,) = report["state"]["applications"]
    assert (application["regime"], application["rate"], application["subsidy"]) == ("simplified", "40.00", "4000.00")
    assert (ceiling(report, 2019)["ceiling"], ceiling(report, 2019)["remaining"]) == ("10000.00", "6000.00")


def test_in_the_new_year_before_any_application_the_current_ceiling_is_shown_untouched(tools, across_regimes):
    report = replayed(tools, "2020-01-05")
    assert len(report["state"]["applications"]) == 1
    assert (ceiling(report, 2020)["ceiling"], ceiling(report, 2020)["remaining"]) == ("7500.00", "7500.00")
    assert ceiling(report, 2019)["ceiling"] == "10000.00"


def test_after_the_change_each_application_keeps_the_rules_it_was_decided_under(tools, across_regimes):
    report = replayed(tools, "2020-01-20")
    decided = {a["year"]: (a["regime"], a["rate"], a["subsidy"]) for a in report["state"]["applications"]}
    assert decided == {2019: ("simplified", "40.00", "4000.00"), 2020: ("current", "30.00", "3000.00")}
    assert (ceiling(report, 2020)["ceiling"], ceiling(report, 2020)["remaining"]) == ("7500.00", "4500.00")
    assert (ceiling(report, 2019)["ceiling"], ceiling(report, 2019)["remaining"]) == ("10000.00", "6000.00")
    assert report["state"]["version"] == 3 and report["as_of"] == "2020-01-20"


def test_the_timeline_shows_held_balances_after_each_event(tools, ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 16))
    with freeze_time("2026-03-05 10:00:00"):
        story.fund(application_id, date(2026, 3, 5))
    with freeze_time("2026-04-01 10:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
    report = replayed(tools, "2026-04-01")
    after = {
        row["type"]: (row["amount"], row["held"]["own_share"], row["held"]["subsidy"]) for row in report["timeline"]
    }
    assert after["OwnShareDeposited"] == ("7000.00", "7000.00", "0.00")
    assert after["SubsidyToppedUp"] == ("3000.00", "7000.00", "3000.00")
    assert after["PayoutExecuted"] == ("4000.00", "4200.00", "1800.00")
    assert replayed(tools, "2026-03-04")["state"]["held"] == {"own_share": "0.00", "subsidy": "0.00"}


def test_the_human_table_names_each_event_and_regime(tools, across_regimes):
    outcome = tools.run(replay.main, "0403170701", "--as-of", "2020-01-20")
    assert outcome.code == 0
    assert "ApplicationSubmitted" in outcome.out and "simplified" in outcome.out and "current" in outcome.out
    assert "7500.00" in outcome.out


def test_a_date_before_the_wallet_existed_is_bad_input(tools, across_regimes):
    outcome = tools.run(replay.main, "0403170701", "--as-of", "2019-01-01")
    assert outcome.code == 2
    assert outcome.err.strip().count("\n") == 0 and "did not exist on 2019-01-01" in outcome.err


@pytest.mark.parametrize(
    "args, reason",
    [
        (["0403170702"], "not a valid Belgian enterprise number"),
        (["0403170701", "--as-of", "2020-13-01"], "is not a date"),
        (["0403170701", "--as-of", "9999-12-31"], "outside the dates the ledger knows (2000-01-01 to 2099-12-31)"),
        ([], "required"),
    ],
)
def test_bad_usage_exits_2_with_one_line(monkeypatch, capsys, sqlite_url, args, reason):
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(replay.main, *args)
    assert outcome.code == 2 and reason in outcome.err and outcome.out == ""
    assert len(outcome.err.strip().splitlines()) == 1


def test_a_changed_contact_e_mail_is_said_in_the_timeline(tools, ledger):
    Story(ledger)
    ledger.change_contact_email("0403170701", c.ChangeContactEmail(contact_email="boekhouding@peeters.be"), BACK_OFFICE)
    ledger.change_contact_email("0403170701", c.ChangeContactEmail(contact_email=None), BACK_OFFICE)
    details = [row["detail"] for row in replayed(tools, "2099-01-01")["timeline"]][1:]
    assert details == ["contact e-mail changed to boekhouding@peeters.be", "contact e-mail removed"]
