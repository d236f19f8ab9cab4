"""Every refusal is a problem+json with a stable code; bad input is never a 500."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from api import create_app
from api.settings import Settings
from tests.api.conftest import Api
from tests.conftest import ENTERPRISE

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}
WALLET = {"enterprise_number": ENTERPRISE, "name": "x", "sme": {"fte": 1, "turnover": "1", "balance_total": "1"}}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_FIELDS <= set(body) and body["status"] == status and body["code"] == code
    assert body["type"] == f"urn:kmo-ledger:problem:{code}"
    return body


@pytest.fixture
def funded(api: Api) -> tuple[Api, dict]:
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.fund(application, date(2026, 3, 2))
    return api, application


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[]", b'"a string"', b"null", b'{"amount": "1.00"', b"\xff\xfe"],
    ids=["broken", "empty", "array", "string", "null", "unclosed", "not-utf8"],
)
def test_a_body_that_is_not_a_json_object_is_a_422(funded, content):
    api, application = funded
    url = f"/v1/wallets/{ENTERPRISE}/applications/{application['application_id']}/payout-orders"
    headers = Api.headers("back-office") | {"Content-Type": "application/json"}
    assert_problem(api.client.post(url, content=content, headers=headers), 422, "validation_error")


def test_a_body_sent_as_text_is_a_422(api: Api):
    headers = Api.headers("back-office") | {"Content-Type": "text/plain"}
    response = api.client.post("/v1/wallets", content=b'{"enterprise_number": "0403170701"}', headers=headers)
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "amount",
    ["10.001", 10.001, "-5.00", -5, "NaN", "Infinity", "1e400", 1e300, "ten", " 100.50 "]
    + [True, None, [], {"euro": 1}, "1" * 50],
)
def test_money_with_more_than_two_decimals_negative_or_not_finite_is_a_422(funded, amount):
    api, application = funded
    body = assert_problem(api.act(application, "payout-orders", {"amount": amount}), 422, "validation_error")
    assert body["errors"][0]["location"] == "body.amount"
    assert api.events().count("PayoutOrdered") == 0


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_json_number_tokens_are_a_422(funded, token):
    api, application = funded
    url = f"/v1/wallets/{ENTERPRISE}/applications/{application['application_id']}/payout-orders"
    headers = Api.headers("back-office") | {"Content-Type": "application/json"}
    response = api.client.post(url, content=b'{"amount": ' + token + b"}", headers=headers)
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("amount", ["100", "100.5", "100.50", 100, 100.5])
def test_money_as_a_string_or_number_with_up_to_two_decimals_is_accepted(funded, amount):
    api, application = funded
    response = api.act(application, "payout-orders", {"amount": amount})
    assert response.status_code == 201, response.text
    assert response.json()["application"]["payout_orders"][0]["amount"] in ("100.00", "100.50")


@pytest.mark.parametrize("value_date", ["2026-3-2", 20260302, "2026-02-30", "1999-03-02", "2026-03-02T00:00:00", ""])
def test_a_date_not_written_yyyy_mm_dd_is_a_422(funded, value_date):
    api, application = funded
    refund = {"kind": "own_share_to_enterprise", "amount": "1.00", "value_date": value_date}
    response = api.act(application, "refunds", refund)
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "body",
    [
        WALLET | {"name": 123},
        WALLET | {"sme": {"fte": "many", "turnover": "1", "balance_total": "1"}},
        WALLET | {"extra": 1},
        WALLET | {"sme": {"fte": "NaN", "turnover": "1", "balance_total": "1"}},
        WALLET | {"sme": {"fte": "1e400", "turnover": "1", "balance_total": "1"}},
        WALLET | {"enterprise_number": ["0403170701"]},
        {"enterprise_number": ENTERPRISE, "name": "x"},
    ],
    ids=["name-number", "fte-text", "unknown-field", "fte-nan", "fte-huge", "number-list", "no-sme"],
)
def test_wrong_types_and_unknown_fields_are_a_422(api: Api, body):
    assert_problem(api.post("/wallets", body), 422, "validation_error")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/deadlines", {"within_days": -1}),
        ("/deadlines", {"within_days": "soon"}),
        (f"/wallets/{ENTERPRISE}/events", {"as_of": "yesterday"}),
        ("/payout-orders", {"overdue": "perhaps"}),
        (f"/wallets/{'9' * 40}", {}),
        ("/wallets/not-a-number", {}),
        ("/providers/DV.X123/inbox", {}),
    ],
)
def test_bad_query_and_path_values_are_a_422(api: Api, path, params):
    api.open_wallet()
    response = api.get(path, **params)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


def test_a_body_over_one_mebibyte_is_a_413(api: Api):
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    headers = Api.headers("back-office") | {"Content-Type": "application/json"}
    assert_problem(api.client.post("/v1/wallets", content=big, headers=headers), 413, "payload_too_large")


def test_a_chunked_body_over_the_cap_is_a_413(api: Api):
    def chunks():
        for _ in range(20):
            yield b"x" * (64 * 1024)

    headers = Api.headers("back-office") | {"Content-Type": "application/json"}
    assert_problem(api.client.post("/v1/wallets", content=chunks(), headers=headers), 413, "payload_too_large")


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/wallets/0403170701/applications/x/nothing", "/nothing"])
def test_an_unknown_route_is_a_404_problem(api: Api, path):
    assert_problem(api.client.get(path, headers=Api.headers("back-office")), 404, "not_found")


def test_a_wrong_method_is_a_405_problem(api: Api):
    response = api.client.get("/v1/deadlines/run", headers=Api.headers("back-office"))
    body = assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]
    assert body["detail"] == "this path does not take GET (it takes POST)"


class BrokenLedger:
    """A ledger whose reads fail in a way nobody foresaw."""

    def wallet_summary(self, enterprise_number: str):
        raise RuntimeError("disk on fire at /srv/secret/path")


def test_an_unexpected_failure_is_a_500_without_a_trace(keys_file: Path, tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", api_keys_file=keys_file)
    app = create_app(settings, ledger=BrokenLedger())
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(f"/v1/wallets/{ENTERPRISE}", headers=Api.headers("back-office"))
    body = assert_problem(response, 500, "internal_error")
    assert "fire" not in response.text and "Traceback" not in response.text and "secret" not in body["detail"]
