"""One request in another spelling is the same request: its Idempotency-Key
fingerprint is taken over the canonical request."""

from __future__ import annotations

from datetime import date

from freezegun import freeze_time

from tests.api.conftest import Api
from tests.conftest import ENTERPRISE


def test_the_same_key_on_the_same_wallet_spelled_another_way_replays_the_first_answer(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        deposit = api.deposit_of(application, "2026-03-02")
        path = "/wallets/{}/applications/" + application["application_id"] + "/deposits"
        first = api.post(path.format(ENTERPRISE), deposit, Idempotency_Key="deposit-once")
        again = api.post(path.format("BE%200403.170.701"), deposit, Idempotency_Key="deposit-once")
    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert api.events().count("OwnShareDeposited") == 1
