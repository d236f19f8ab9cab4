"""What the API says, in the project's own words: no pydantic phrases, no
grammar slips, titles that name the refusal, and event data shown as the rest
of the API shows it."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time

from tests.api.conftest import Api
from tests.api.test_problems import assert_problem
from tests.conftest import ENTERPRISE

PYDANTIC_PHRASES = ("Value error", "JSON decode error", "Input should be a valid dictionary", "Extra inputs")


@pytest.fixture
def submitted(api: Api) -> tuple[Api, dict]:
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        return api, api.submit(date(2026, 3, 16))


@pytest.mark.parametrize(("role", "article"), [("auditor", "an"), ("reconciler", "a"), ("provider", "a")])
def test_a_key_of_a_role_that_may_not_is_named_with_its_article(submitted, role, article):
    api, application = submitted
    response = api.act(application, "deposits", Api.deposit_of(application, "2026-03-02"), as_=role)
    body = assert_problem(response, 403, "forbidden")
    assert body["detail"].startswith(f"{article} {role} key may not do this")


@pytest.mark.parametrize(
    ("content", "location", "message"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b'{"amount": "1.00"', "body", "not valid JSON"),
        (b"\xff\xfe", "body", "not valid JSON"),
        (b"[]", "body", "a JSON object is expected"),
        (b'{"amount": "1.00", "note": "x"}', "body.note", "not a field of this request"),
        (b"{}", "body.amount", "required"),
    ],
    ids=["broken", "unclosed", "not-utf8", "array", "unknown-field", "missing-field"],
)
def test_a_malformed_body_is_named_in_the_ledgers_words(submitted, content, location, message):
    api, application = submitted
    url = f"/v1/wallets/{ENTERPRISE}/applications/{application['application_id']}/payout-orders"
    headers = Api.headers("back-office") | {"Content-Type": "application/json"}
    body = assert_problem(api.client.post(url, content=content, headers=headers), 422, "validation_error")
    assert body["errors"] == [{"location": location, "message": message}]
    assert body["detail"] == f"{location}: {message}"


@pytest.mark.parametrize(
    ("path", "params"),
    [(f"/wallets/{ENTERPRISE}/events", {"as_of": "yesterday"}), ("/reconciliation/totals", {"from": "2026-3-1"})],
)
def test_a_validators_reason_comes_without_pydantics_prefix(submitted, path, params):
    api, _application = submitted
    body = assert_problem(api.get(path, **params), 422, "validation_error")
    assert body["errors"][0]["message"] == "a date is written YYYY-MM-DD"
    assert not any(phrase in body["detail"] for phrase in PYDANTIC_PHRASES)


def test_refunding_more_than_is_due_is_titled_so(submitted):
    api, application = submitted
    with freeze_time("2026-03-02 10:00:00"):
        api.fund(application, date(2026, 3, 2))
        assert api.act(application, "stop", {"reason": "on_request"}).status_code == 200
        refund = {"kind": "own_share_to_enterprise", "amount": "7000.01", "value_date": "2026-03-02"}
        body = assert_problem(api.act(application, "refunds", refund), 422, "insufficient_funds")
    assert body["title"] == "The amount is more than is held or due"
    assert body["detail"] == "7000.00 is due (own_share_to_enterprise), not 7000.01"


def test_event_data_shows_the_rate_as_the_application_does(submitted):
    api, application = submitted
    events = api.get(f"/wallets/{ENTERPRISE}/events", as_="auditor").json()["events"]
    submission = next(event for event in events if event["type"] == "ApplicationSubmitted")
    assert application["rate"] == "30.00"
    assert submission["data"]["rate"] == "30.00"
    assert submission["data"]["subsidy"] == application["subsidy"]  # money was already shown as the API does
