"""Who may do what: every resource against every role, keys, and provider isolation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from api import create_app
from api.settings import Settings
from tests.api.conftest import KEYS, Api, write_keys
from tests.conftest import ENTERPRISE, TRAINER

BO, PR, AU, RC = "back-office", "provider", "auditor", "reconciler"
APP = f"/wallets/{ENTERPRISE}/applications/{{id}}"

# (method, path, roles allowed) -- API.md's resource table
RESOURCES = [
    ("POST", "/wallets", {BO}),
    ("POST", f"/wallets/{ENTERPRISE}/sme-figures", {BO}),
    ("GET", f"/wallets/{ENTERPRISE}", {BO, AU, RC}),
    ("POST", f"/wallets/{ENTERPRISE}/applications", {BO}),
    ("GET", APP, {BO, PR, AU, RC}),
    ("POST", APP + "/confirmation", {PR, BO}),
    ("POST", APP + "/refusal", {PR, BO}),
    ("POST", APP + "/deposits", {BO}),
    ("POST", APP + "/top-ups", {BO}),
    ("POST", APP + "/payout-orders", {BO}),
    ("POST", APP + "/payouts", {BO}),
    ("POST", APP + "/stop", {BO}),
    ("POST", APP + "/repayments", {BO}),
    ("POST", APP + "/refunds", {BO}),
    ("POST", APP + "/reversals", {BO}),
    ("POST", APP + "/completion", {BO, PR}),
    ("POST", "/deadlines/run", {BO}),
    ("GET", "/deadlines", {BO, AU}),
    ("GET", f"/providers/{TRAINER}/inbox", {PR, BO}),
    ("GET", "/payout-orders", {BO, AU, RC}),
    ("GET", f"/wallets/{ENTERPRISE}/events", {AU, BO}),
    ("GET", f"/wallets/{ENTERPRISE}/state", {AU, BO}),
    ("GET", f"/wallets/{ENTERPRISE}/audit-trail", {AU, BO}),
    ("GET", f"/wallets/{ENTERPRISE}/verification", {AU, BO}),
    ("GET", "/reconciliation/totals", {RC, AU, BO}),
]
ROLES = (BO, PR, AU, RC)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[tuple[Api, str]]:
    """One app for the whole table: a wallet with an application naming TRAINER."""
    folder = tmp_path_factory.mktemp("authorisation")
    keys_file = write_keys(folder / "keys.json")
    settings = Settings(database_url=f"sqlite:///{folder / 'ledger.db'}", api_keys_file=keys_file)
    with TestClient(create_app(settings)) as client:
        api = Api(client)
        with freeze_time("2026-03-02 09:00:00"):
            api.open_wallet()
            application = api.submit(date(2026, 3, 16))
        yield api, application["application_id"]


def _call(api: Api, method: str, path: str, application_id: str, headers: dict[str, str]):
    url = "/v1" + path.format(id=application_id)
    if method == "GET":
        return api.client.get(url, headers=headers)
    return api.client.post(url, json={}, headers=headers)  # an empty body: a permitted caller gets a 422


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "allowed"), RESOURCES, ids=[f"{m} {p}" for m, p, _ in RESOURCES])
def test_each_role_reaches_exactly_its_resources(shared, method, path, allowed, role):
    api, application_id = shared
    with freeze_time("2026-03-03 09:00:00"):
        response = _call(api, method, path, application_id, Api.headers(role))
    if role in allowed:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-key-of-ours-at-all", f"Basic {KEYS[BO]}", "Bearer", KEYS[BO]],
    ids=["none", "unknown", "basic", "empty", "no-scheme"],
)
@pytest.mark.parametrize(("method", "path", "allowed"), RESOURCES, ids=[f"{m} {p}" for m, p, _ in RESOURCES])
def test_no_or_unknown_key_is_401_everywhere(shared, method, path, allowed, authorization):
    api, application_id = shared
    headers = {"Authorization": authorization} if authorization else {}
    response = _call(api, method, path, application_id, headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_missing_key_is_refused_before_a_malformed_body_is_looked_at(shared):
    api, _ = shared
    response = api.client.post("/v1/wallets", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 401


# --------------------------------------------------------------------------- providers


@pytest.fixture
def story(api) -> tuple[Api, dict]:
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
    return api, application


def _not_found_detail(response, application_id: str) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["code"], body["detail"].replace(application_id, "ID")


@pytest.mark.parametrize(
    ("method", "action", "body"),
    [
        ("GET", "", None),
        ("POST", "/confirmation", None),
        ("POST", "/refusal", {"reason": "related parties"}),
        ("POST", "/completion", {"completed_on": "2026-03-20"}),
    ],
)
def test_another_providers_application_answers_as_if_it_did_not_exist(story, method, action, body):
    api, application = story
    real, missing = application["application_id"], "00000000-0000-0000-0000-000000000000"
    headers = Api.headers("other-provider")
    with freeze_time("2026-03-03 09:00:00"):
        answers = []
        for application_id in (real, missing):
            url = f"/v1/wallets/{ENTERPRISE}/applications/{application_id}{action}"
            response = (
                api.client.get(url, headers=headers)
                if method == "GET"
                else api.client.post(url, json=body, headers=headers)
            )
            answers.append(_not_found_detail(response, application_id))
        no_wallet = api.client.get(f"/v1/wallets/0202239951/applications/{real}", headers=headers)
    assert answers[0] == answers[1] == (404, "not_found", f"no application ID for enterprise {ENTERPRISE}")
    assert no_wallet.status_code == 404 and no_wallet.json()["detail"].startswith("no application")
    assert api.events() == ["WalletOpened", "ApplicationSubmitted"]


def test_a_provider_reads_confirms_and_completes_its_own_application(story):
    api, application = story
    path = f"/wallets/{ENTERPRISE}/applications/{application['application_id']}"
    with freeze_time("2026-03-03 09:00:00"):
        read = api.get(path, as_="provider")
        confirmed = api.act(application, "confirmation", as_="provider")
    with freeze_time("2026-03-20 09:00:00"):
        completed = api.act(application, "completion", {"completed_on": "2026-03-19"}, as_="provider")
    assert read.status_code == 200 and read.json()["provider"] == TRAINER
    assert confirmed.status_code == 200 and confirmed.json()["confirmed_on"] == "2026-03-03"
    assert completed.status_code == 200 and completed.json()["state"] == "completed"
    confirmation = api.get(f"/wallets/{ENTERPRISE}/events").json()["events"][2]
    expected_id = hashlib.sha256(KEYS["provider"].encode()).hexdigest()[:12]
    assert confirmation["type"] == "ApplicationConfirmed"
    assert confirmation["actor"] == {"key_id": expected_id, "role": "provider"}


def test_a_provider_cannot_read_a_wallet(story):
    api, _ = story
    response = api.get(f"/wallets/{ENTERPRISE}", as_="provider")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_a_provider_reads_only_its_own_inbox(story):
    api, application = story
    with freeze_time("2026-03-03 09:00:00"):
        own = api.get(f"/providers/{TRAINER}/inbox", as_="provider")
        lower_case = api.get(f"/providers/{TRAINER.lower()}/inbox", as_="provider")
        other = api.get(f"/providers/{TRAINER}/inbox", as_="other-provider")
    assert [a["application_id"] for a in own.json()["applications"]] == [application["application_id"]]
    assert lower_case.status_code == 200
    assert other.status_code == 404 and other.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "extra", [{"Idempotency-Key": "not a valid key"}, {"If-Match": "not-a-version"}, {"Idempotency-Key": ""}]
)
def test_another_providers_application_is_a_404_before_its_headers_are_judged(story, extra):
    """What a malformed header would say (422, 412) must not tell another
    provider that the application exists: the reach is decided first."""
    api, application = story
    url = f"/v1/wallets/{ENTERPRISE}/applications/{application['application_id']}/confirmation"
    with freeze_time("2026-03-03 09:00:00"):
        response = api.client.post(url, headers={**Api.headers("other-provider"), **extra})
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert api.events() == ["WalletOpened", "ApplicationSubmitted"]
