"""ETag and If-Match: a command on a stale version records nothing."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time

from tests.api.conftest import Api
from tests.conftest import ENTERPRISE, training


@pytest.fixture
def submitted(api: Api) -> tuple[Api, dict]:
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        return api, api.submit(date(2026, 3, 16))


def test_reads_of_a_wallet_carry_its_version_as_etag(submitted):
    api, application = submitted
    wallet = api.get(f"/wallets/{ENTERPRISE}")
    read = api.get(f"/wallets/{ENTERPRISE}/applications/{application['application_id']}", as_="provider")
    assert wallet.headers["etag"] == read.headers["etag"] == '"2"' and wallet.json()["version"] == 2


def test_a_command_with_the_current_version_is_done(submitted):
    api, application = submitted
    with freeze_time("2026-03-03 09:00:00"):
        etag = api.get(f"/wallets/{ENTERPRISE}").headers["etag"]
        response = api.act(application, "confirmation", If_Match=etag)
        after = api.get(f"/wallets/{ENTERPRISE}").headers["etag"]
    assert response.status_code == 200 and after == '"3"'


@pytest.mark.parametrize("if_match", ['"1"', "1", '"99"', 'W/"2"', "not-a-version"])
def test_a_stale_or_foreign_if_match_is_a_412_and_records_nothing(submitted, if_match):
    api, application = submitted
    with freeze_time("2026-03-03 09:00:00"):
        response = api.act(application, "confirmation", If_Match=if_match)
    assert response.status_code == 412
    assert response.json()["code"] == "version_mismatch"
    assert response.headers["content-type"] == "application/problem+json"
    assert api.events() == ["WalletOpened", "ApplicationSubmitted"]


def test_if_match_star_matches_any_version(submitted):
    api, application = submitted
    with freeze_time("2026-03-03 09:00:00"):
        assert api.act(application, "confirmation", If_Match="*").status_code == 200


def test_a_stale_if_match_on_submission_submits_nothing(submitted):
    api, _application = submitted
    with freeze_time("2026-03-03 09:00:00"):
        response = api.post(f"/wallets/{ENTERPRISE}/applications", training(date(2026, 3, 16)), If_Match='"1"')
    assert response.status_code == 412
    assert api.events() == ["WalletOpened", "ApplicationSubmitted"]
