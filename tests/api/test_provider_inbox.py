"""A provider's inbox: by default everything that waits on the provider, its
answer or the service's completion (a confirmed application it still has to
complete used to be nowhere to find); ``state`` filters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from freezegun import freeze_time

from tests.api.conftest import Api
from tests.conftest import ENTERPRISE, TRAINER


@pytest.fixture
def lives(api_on_every_store: Api) -> Iterator[tuple[Api, dict[str, str]]]:
    """Five applications of one provider, each at another point of its life."""
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        ids = {name: api.submit(date(2026, 3, 16), fee="1000.00") for name in ("waiting", "confirmed", "funded")}
        ids |= {name: api.submit(date(2026, 3, 2), fee="1000.00") for name in ("completed", "refused")}
        for name in ("confirmed", "completed"):
            assert api.act(ids[name], "confirmation", as_="provider").status_code == 200
        api.fund(ids["funded"], date(2026, 3, 2))
        done = api.act(ids["completed"], "completion", {"completed_on": "2026-03-02"}, as_="provider")
        assert done.status_code == 200, done.text
        assert api.act(ids["refused"], "refusal", {"reason": "fully booked"}, as_="provider").status_code == 200
    yield api, {name: application["application_id"] for name, application in ids.items()}


def inbox(api: Api, **params) -> list[tuple[str, str]]:
    with freeze_time("2026-03-03 09:00:00"):
        answer = api.get(f"/providers/{TRAINER}/inbox", as_="provider", **params)
    assert answer.status_code == 200, answer.text
    return [(row["application_id"], row["state"]) for row in answer.json()["applications"]]


def test_the_inbox_shows_what_waits_on_the_provider_its_answer_or_a_completion(lives):
    api, ids = lives
    assert sorted(inbox(api)) == sorted(
        [(ids["waiting"], "submitted"), (ids["confirmed"], "confirmed"), (ids["funded"], "funded")]
    )


def test_the_inbox_filters_by_state(lives):
    api, ids = lives
    assert inbox(api, state="confirmed") == [(ids["confirmed"], "confirmed")]
    assert inbox(api, state="submitted") == [(ids["waiting"], "submitted")]
    assert inbox(api, state="completed") == [(ids["completed"], "completed")]
    assert sorted(inbox(api, state=["refused", "funded"])) == sorted(
        [(ids["refused"], "refused"), (ids["funded"], "funded")]
    )
    assert inbox(api, state="lapsed") == []


def test_an_inbox_row_keeps_its_fields_and_says_state_and_completion_date(lives):
    api, ids = lives
    with freeze_time("2026-03-03 09:00:00"):
        rows = api.get(f"/providers/{TRAINER}/inbox", state="confirmed").json()["applications"]
    assert rows == [
        {
            "enterprise_number": ENTERPRISE,
            "application_id": ids["confirmed"],
            "project_number": rows[0]["project_number"],
            "service": "training",
            "themes": ["digitalisation"],
            "starts_on": "2026-03-16",
            "submitted_on": "2026-03-02",
            "answer_by": "2026-03-16",
            "project_amount": "1000.00",
            "state": "confirmed",
            "complete_by": "2027-12-31",
        }
    ]


def test_an_application_the_provider_can_no_longer_answer_leaves_the_inbox(lives):
    api, ids = lives
    with freeze_time("2026-03-17 09:00:00"):  # the answer was due by 16 March: it lapses at the next run
        rows = api.get(f"/providers/{TRAINER}/inbox").json()["applications"]
    assert sorted(row["application_id"] for row in rows) == sorted([ids["confirmed"], ids["funded"]])


def test_an_unknown_state_is_a_422(api: Api):
    answer = api.get(f"/providers/{TRAINER}/inbox", state="pending")
    assert answer.status_code == 422 and answer.json()["code"] == "validation_error"


def test_the_state_filter_is_documented_with_its_values(api: Api):
    document = api.client.get("/openapi.json").json()
    parameters = document["paths"]["/v1/providers/{provider}/inbox"]["get"]["parameters"]
    state = next(p for p in parameters if p["name"] == "state")
    assert state["in"] == "query" and not state["required"]
    assert state["schema"]["type"] == "array" and "confirmed" in state["schema"]["items"]["enum"]
