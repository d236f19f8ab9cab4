"""The notices' routes: the provider directory (the secret never shown again,
https only but to loopback), the list of notices by status, a redelivery."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import ENTERPRISE, TRAINER, sme

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


def put(api, number: str, body: dict, as_: str = "back-office"):
    return api.client.put(f"/v1/providers/{number}", json=body, headers=api.headers(as_))


def test_the_directory_keeps_an_entry_and_never_shows_its_secret(api):
    body = {
        "name": "Opleidingen Janssens",
        "email": "aanvragen@janssens.be",
        "webhook_url": "https://janssens.be/hooks",
        "webhook_secret": SECRET,
    }
    answer = put(api, "dv.o207084", body)
    assert answer.status_code == 200, answer.text
    read = api.get(f"/providers/{TRAINER}")
    for shown in (answer, read):
        assert shown.json() | {"updated_at": None} == {
            "number": TRAINER,
            "name": "Opleidingen Janssens",
            "email": "aanvragen@janssens.be",
            "webhook_url": "https://janssens.be/hooks",
            "webhook_secret_set": True,
            "updated_at": None,
        }
        assert SECRET not in shown.text and SECRET[6:] not in shown.text
    assert api.get("/providers/DV.O999999").status_code == 404
    typo = put(api, "DV.0207084", body)  # a zero for the letter O
    assert typo.status_code == 422 and typo.json()["code"] == "invalid_provider_number"
    assert put(api, TRAINER, body, as_="provider").status_code == 403
    assert api.get(f"/providers/{TRAINER}", as_="auditor").status_code == 403


@pytest.mark.parametrize(
    "change, says",
    [
        ({"webhook_url": "http://janssens.be/hooks"}, "only to a loopback"),
        ({"webhook_url": "ftp://janssens.be/hooks"}, "https://"),
        ({"webhook_url": "https://user:pw@janssens.be/hooks"}, "no user or password"),
        ({"webhook_secret": "not-a-secret"}, "whsec_"),
        ({"webhook_secret": "whsec_" + base64.b64encode(b"short").decode()}, "24 to 64 bytes"),
        ({"webhook_secret": None}, "needs its webhook_secret"),
        ({"email": "a@b.be\r\nBcc: c@d.be"}, "not allowed"),
    ],
)
def test_a_bad_entry_is_a_422_and_changes_nothing(api, change, says):
    body = {"name": "Janssens", "webhook_url": "http://127.0.0.1:9/hooks", "webhook_secret": SECRET} | change
    answer = put(api, TRAINER, body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json" and says in answer.text
    assert api.get(f"/providers/{TRAINER}").status_code == 404


def test_notices_are_listed_by_status_and_redelivered(api):
    api.post("/wallets", {"enterprise_number": ENTERPRISE, "name": "Bakkerij Peeters", "sme": sme()})
    notifier = api.client.app.state.notices.notifier
    from datetime import date, timedelta

    api.submit(date.today() + timedelta(days=10))
    notifier.run_pass()
    listed = api.get("/notices", status="undeliverable")
    assert listed.status_code == 200, listed.text
    types = sorted(n["type"] for n in listed.json()["notices"])
    assert types == ["application_awaiting_confirmation", "payment_instructions"]
    assert api.get("/notices", status="delivered").json() == {"notices": [], "next_cursor": None}
    first = api.get("/notices", limit=1).json()
    assert len(first["notices"]) == 1 and first["next_cursor"]
    second = api.get("/notices", limit=1, cursor=first["next_cursor"]).json()
    assert second["notices"][0]["id"] != first["notices"][0]["id"] and second["next_cursor"] is None
    unknown = api.get("/notices", status="lost")
    assert unknown.status_code == 422 and unknown.json()["code"] == "validation_error"
    assert api.get("/notices", as_="auditor").status_code == 403
    notice = listed.json()["notices"][0]
    api.client.put(
        f"/v1/providers/{TRAINER}",
        json={"name": "Janssens", "email": "a@janssens.be"},
        headers=api.headers("back-office"),
    )
    api.client.put(
        f"/v1/wallets/{ENTERPRISE}/contact", json={"contact_email": "b@peeters.be"}, headers=api.headers("back-office")
    )
    again = api.post(f"/notices/{notice['id']}/redelivery")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "pending" and again.json()["address"] in ("a@janssens.be", "b@peeters.be")
    keyed = api.post(f"/notices/{notice['id']}/redelivery", Idempotency_Key="redeliver-1")
    replayed = api.post(f"/notices/{notice['id']}/redelivery", Idempotency_Key="redeliver-1")
    assert replayed.json() == keyed.json() and replayed.headers["Idempotent-Replayed"] == "true"
    assert api.post("/notices/00000000-0000-0000-0000-000000000000/redelivery").status_code == 404
    assert api.post("/notices/not-an-id/redelivery").status_code == 422
