"""Paging a wallet's events: ``GET /v1/wallets/{en}/events?after=SEQUENCE&limit=N``
answers the events whose sequence is above ``after``, at most ``limit`` of them,
so a wallet with thousands of events is read a page at a time. Without these
parameters the answer is every event, exactly as before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from freezegun import freeze_time

from tests.api.conftest import Api
from tests.conftest import ENTERPRISE, OTHER_ENTERPRISE

EVENTS = f"/wallets/{ENTERPRISE}/events"


@pytest.fixture
def funded(api_on_every_store: Api) -> Iterator[Api]:
    """A wallet of five events: opened and submitted on 2 March, funded on 5 March."""
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
    with freeze_time("2026-03-05 10:00:00"):
        api.fund(application, date(2026, 3, 5))
    yield api


def events(api: Api, **params) -> list[dict]:
    response = api.get(EVENTS, as_="auditor", **params)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["events"]
    return response.json()["events"]


def sequences(api: Api, **params) -> list[int]:
    return [event["sequence"] for event in events(api, **params)]


def test_without_after_or_limit_every_event_is_answered(funded: Api):
    assert sequences(funded) == [1, 2, 3, 4, 5]


def test_pages_of_limit_events_after_the_last_sequence_shown_cover_every_event_once(funded: Api):
    every = events(funded)
    pages, after = [], 0
    for _ in range(len(every)):  # a page of two or none: never more pages than events
        page = events(funded, after=after, limit=2)
        pages.append(page)
        if len(page) < 2:
            break
        after = page[-1]["sequence"]
    assert [[event["sequence"] for event in page] for page in pages] == [[1, 2], [3, 4], [5]]
    assert [event for page in pages for event in page] == every


def test_after_alone_answers_every_later_event_and_limit_alone_the_first_ones(funded: Api):
    assert sequences(funded, after=3) == [4, 5]
    assert sequences(funded, limit=2) == [1, 2]
    assert sequences(funded, after=0, limit=1000) == [1, 2, 3, 4, 5]


def test_a_page_after_the_last_event_is_empty(funded: Api):
    assert events(funded, after=5) == []
    assert events(funded, after=5000, limit=10) == []


def test_as_of_cuts_the_pages_too(funded: Api):
    assert sequences(funded, as_of="2026-03-04", limit=1) == [1]
    assert sequences(funded, as_of="2026-03-04", after=1, limit=10) == [2]
    assert sequences(funded, as_of="2026-03-04", after=2) == []
    assert sequences(funded, as_of="2026-03-05", after=2, limit=2) == [3, 4]


def test_a_page_of_a_wallet_that_does_not_exist_is_not_found(funded: Api):
    response = funded.get(f"/wallets/{OTHER_ENTERPRISE}/events", as_="auditor", after=0, limit=10)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "params",
    [{"after": "-1"}, {"after": "one"}, {"after": str(2**31)}, {"limit": "0"}, {"limit": "1001"}, {"limit": "2.5"}],
)
def test_an_after_or_limit_out_of_range_is_a_validation_problem(funded: Api, params: dict):
    response = funded.get(EVENTS, as_="auditor", **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"


def test_a_page_is_for_auditors_and_back_office_only(funded: Api):
    assert funded.get(EVENTS, as_="back-office", after=0, limit=1).status_code == 200
    for role in ("reconciler", "provider"):
        assert funded.get(EVENTS, as_=role, after=0, limit=1).status_code == 403


def test_the_paging_parameters_are_documented(funded: Api):
    document = funded.client.get("/openapi.json").json()
    operation = document["paths"]["/v1/wallets/{en}/events"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert {"after", "limit", "as_of"} <= set(parameters)
    assert parameters["limit"]["schema"]["minimum"] == 1 and parameters["limit"]["schema"]["maximum"] == 1000
    assert parameters["after"]["schema"]["minimum"] == 0
    assert parameters["after"]["description"] and parameters["limit"]["description"]
    assert "after" in operation["description"] and "limit" in operation["description"]
