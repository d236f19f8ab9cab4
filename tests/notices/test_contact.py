"""The enterprise's contact e-mail: given when the wallet opens, changed by a
recorded event, refused (422, nothing recorded) when it is not an address."""

from __future__ import annotations

import pytest

from tests.conftest import ENTERPRISE, sme


def opening(**extra) -> dict:
    return {"enterprise_number": ENTERPRISE, "name": "Bakkerij Peeters", "sme": sme()} | extra


def put_contact(api, address, **headers):
    return api.client.put(
        f"/v1/wallets/{ENTERPRISE}/contact",
        json={"contact_email": address},
        headers=api.headers("back-office", **headers),
    )


def test_a_wallet_opens_with_a_contact_and_a_change_is_an_event(api):
    opened = api.post("/wallets", opening(contact_email="boekhouding@peeters.be"))
    assert opened.status_code == 201, opened.text
    assert opened.json()["contact_email"] == "boekhouding@peeters.be"
    changed = put_contact(api, "info@peeters.be")
    assert changed.status_code == 200, changed.text
    assert changed.json()["contact_email"] == "info@peeters.be"
    assert api.events() == ["WalletOpened", "ContactEmailChanged"]
    same = put_contact(api, "info@peeters.be")
    assert same.status_code == 200 and api.events() == ["WalletOpened", "ContactEmailChanged"]
    events = api.get(f"/wallets/{ENTERPRISE}/events").json()["events"]
    assert events[1]["data"] == {"contact_email": "info@peeters.be"}
    assert api.get(f"/wallets/{ENTERPRISE}/verification", as_="auditor").json()["ok"]


def test_a_wallet_opened_without_contact_keeps_the_hash_it_always_had(api):
    """The field is left out of the event when not given, so old events' hashes hold."""
    assert api.post("/wallets", opening()).status_code == 201
    event = api.get(f"/wallets/{ENTERPRISE}/events").json()["events"][0]
    assert "contact_email" not in event["data"]
    assert api.get(f"/wallets/{ENTERPRISE}").json()["contact_email"] is None


@pytest.mark.parametrize(
    "address",
    [
        "boekhouding@peeters.be\r\nBcc: everyone@example.com",
        "boekhouding@peeters.be\nBcc: x@y.be",
        "two@at@peeters.be",
        "no-at-sign.be",
        "spaces in@peeters.be",
        "name@localhost",
        "<boekhouding@peeters.be>",
        "Peeters <boekhouding@peeters.be>",
        "name@-peeters.be",
        "",
    ],
)
def test_header_injection_and_non_addresses_are_refused_and_record_nothing(api, address):
    refused_open = api.post("/wallets", opening(contact_email=address))
    assert refused_open.status_code == 422, refused_open.text
    assert refused_open.headers["content-type"] == "application/problem+json"
    assert api.post("/wallets", opening()).status_code == 201
    refused = put_contact(api, address)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "validation_error"
    assert api.events() == ["WalletOpened"]


def test_only_back_office_changes_the_contact(api):
    api.post("/wallets", opening())
    for role in ("provider", "auditor", "reconciler"):
        response = api.client.put(
            f"/v1/wallets/{ENTERPRISE}/contact", json={"contact_email": "a@b.be"}, headers=api.headers(role)
        )
        assert response.status_code == 403
    assert api.events() == ["WalletOpened"]
