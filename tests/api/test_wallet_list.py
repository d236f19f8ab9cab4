"""The wallet list, ``GET /v1/wallets?q=&cursor=&limit=``: every wallet, a page
at a time in order of enterprise number, searched by enterprise number in any
spelling or by any part of the name. Before it, finding a wallet meant knowing
its enterprise number in advance."""

from __future__ import annotations

import base64

import pytest

from tests.api.conftest import Api
from tests.conftest import sme


def enterprise_number(serial: int) -> str:
    """A valid enterprise number, in the order of ``serial``: eight digits, then the
    check digits (97 minus the first eight modulo 97)."""
    first_eight = f"{10_000_000 + serial:08d}"
    return first_eight + f"{97 - int(first_eight) % 97:02d}"


def open_wallet(api: Api, number: str, name: str) -> None:
    response = api.post("/wallets", {"enterprise_number": number, "name": name, "sme": sme()})
    assert response.status_code == 201, response.text


def listed(api: Api, as_: str = "back-office", **params) -> dict:
    response = api.get("/wallets", as_=as_, **params)
    assert response.status_code == 200, response.text
    return response.json()


def numbers(page: dict) -> list[str]:
    return [wallet["enterprise_number"] for wallet in page["wallets"]]


def test_the_list_shows_every_wallet_with_its_name_in_order_of_enterprise_number(api_on_every_store: Api):
    api = api_on_every_store
    open_wallet(api, "0403170701", "Bakkerij Peeters")
    open_wallet(api, "BE 0202.239.951", "Brouwerij Janssens")
    assert listed(api) == {
        "wallets": [
            {"enterprise_number": "0202239951", "name": "Brouwerij Janssens"},
            {"enterprise_number": "0403170701", "name": "Bakkerij Peeters"},
        ],
        "next_cursor": None,
    }


@pytest.mark.parametrize("spelling", ["BE 0403.170.701", "0403170701", "403170701", "be0403-170-701"])
def test_q_finds_a_wallet_by_its_enterprise_number_in_any_spelling(api_on_every_store: Api, spelling: str):
    api = api_on_every_store
    open_wallet(api, "0403170701", "Bakkerij Peeters")
    open_wallet(api, "0202239951", "Brouwerij Janssens")
    assert numbers(listed(api, q=spelling)) == ["0403170701"]


@pytest.mark.parametrize("part", ["peeters", "BAKKERIJ", "kerij pee", "élise", "ÉLISE", "Ürün"])
def test_q_finds_a_wallet_by_any_part_of_its_name_whatever_its_case(api_on_every_store: Api, part: str):
    api = api_on_every_store
    open_wallet(api, "0403170701", "Bakkerij Peeters & Élise ürün")
    open_wallet(api, "0202239951", "Brouwerij Janssens")
    assert numbers(listed(api, q=part)) == ["0403170701"]


def test_q_takes_percent_and_underscore_literally(api_on_every_store: Api):
    api = api_on_every_store
    open_wallet(api, "0403170701", "Bakkerij 100% Peeters")
    open_wallet(api, "0202239951", "Brouwerij Janssens")
    assert numbers(listed(api, q="100%")) == ["0403170701"]
    assert numbers(listed(api, q="%")) == ["0403170701"]
    assert numbers(listed(api, q="_")) == []


def test_q_that_matches_nothing_answers_an_empty_page(api_on_every_store: Api):
    api = api_on_every_store
    open_wallet(api, "0403170701", "Bakkerij Peeters")
    assert listed(api, q="Slagerij") == {"wallets": [], "next_cursor": None}
    assert numbers(listed(api, q="")) == ["0403170701"]


def test_pages_follow_the_cursor_and_wallets_opened_meanwhile_do_not_shift_them(api_on_every_store: Api):
    api = api_on_every_store
    opened = [enterprise_number(serial) for serial in (10, 20, 30, 40, 50)]
    for number in opened:
        open_wallet(api, number, f"Wallet {number}")
    first = listed(api, limit=2)
    assert numbers(first) == opened[:2] and first["next_cursor"]
    # one wallet sorts before the page just read (it pushes nothing on), one among those still to come
    open_wallet(api, enterprise_number(5), "Opened before the cursor")
    open_wallet(api, enterprise_number(35), "Opened after the cursor")
    second = listed(api, limit=2, cursor=first["next_cursor"])
    assert numbers(second) == [opened[2], enterprise_number(35)]
    last = listed(api, limit=2, cursor=second["next_cursor"])
    assert numbers(last) == opened[3:] and last["next_cursor"] is None


def test_a_search_pages_too(api_on_every_store: Api):
    api = api_on_every_store
    for serial in range(1, 6):
        open_wallet(api, enterprise_number(serial), f"Bakkerij {serial}" if serial % 2 else f"Slagerij {serial}")
    first = listed(api, q="bakkerij", limit=2)
    assert numbers(first) == [enterprise_number(1), enterprise_number(3)]
    second = listed(api, q="bakkerij", limit=2, cursor=first["next_cursor"])
    assert second == {
        "wallets": [{"enterprise_number": enterprise_number(5), "name": "Bakkerij 5"}],
        "next_cursor": None,
    }


def test_a_page_holds_20_wallets_unless_asked_for_up_to_100(api: Api):
    for serial in range(21):
        open_wallet(api, enterprise_number(serial), f"Wallet {serial}")
    page = listed(api)
    assert len(page["wallets"]) == 20 and page["next_cursor"]
    assert numbers(listed(api, cursor=page["next_cursor"])) == [enterprise_number(20)]
    assert len(listed(api, limit=100)["wallets"]) == 21


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        _cursor("wallets-after:0403170702"),  # not an enterprise number
        _cursor("wallets-after:403170701"),  # not the canonical form a page gives
        _cursor("0403170701"),
        "a" * 65,
        "d2Fs bGV0",
    ],
)
def test_a_cursor_no_page_gave_is_a_validation_problem(api_on_every_store: Api, cursor: str):
    api = api_on_every_store
    open_wallet(api, "0403170701", "Bakkerij Peeters")
    response = api.get("/wallets", cursor=cursor)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"


def test_an_empty_cursor_asks_for_the_first_page(api: Api):
    open_wallet(api, "0403170701", "Bakkerij Peeters")
    assert numbers(listed(api, cursor="")) == ["0403170701"]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
def test_a_limit_outside_1_to_100_is_a_validation_problem(api: Api, limit: str):
    response = api.get("/wallets", limit=limit)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


def test_a_control_character_in_q_is_a_validation_problem(api_on_every_store: Api):
    response = api_on_every_store.get("/wallets", q="Bakkerij\x00")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


def test_every_role_but_a_provider_may_list_the_wallets(api: Api):
    open_wallet(api, "0403170701", "Bakkerij Peeters")
    for role in ("back-office", "auditor", "reconciler"):
        assert numbers(listed(api, as_=role)) == ["0403170701"]
    refused = api.get("/wallets", as_="provider")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert api.get("/wallets", as_=None).status_code == 401


def test_the_list_is_documented_with_its_parameters(api: Api):
    document = api.client.get("/openapi.json").json()
    operation = document["paths"]["/v1/wallets"]["get"]
    assert operation["operationId"] == "list_wallets" and operation["tags"] == ["wallets"]
    assert operation["description"].strip()
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {"q", "cursor", "limit"}
    assert all(parameter["description"] for parameter in parameters.values())
    assert parameters["limit"]["schema"]["minimum"] == 1 and parameters["limit"]["schema"]["maximum"] == 100
    assert "403" in operation["responses"]
