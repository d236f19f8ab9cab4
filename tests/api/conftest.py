"""An API client per test: the app built by ``create_app`` on a fresh store, with
one key per role (and a second provider), called through ``TestClient``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from api import create_app
from api.routers import applications, notices, operations, providers, wallets
from api.settings import Settings, key_id
from tests.conftest import ENTERPRISE, TRAINER, sme, training

OTHER_TRAINER = "DV.O999999"
ROUTERS = (applications.router, wallets.router, operations.router, notices.router, providers.router)
KEYS = {
    "back-office": "bo-secret-0123456789abcdef",
    "auditor": "au-secret-0123456789abcdef",
    "reconciler": "rc-secret-0123456789abcdef",
    "provider": "dv-secret-0123456789abcdef",
    "other-provider": "dv-other-0123456789abcdef",
}


def write_keys(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                KEYS["back-office"]: {"role": "back-office"},
                KEYS["auditor"]: {"role": "auditor"},
                KEYS["reconciler"]: {"role": "reconciler"},
                KEYS["provider"]: {"role": "provider", "provider": TRAINER},
                KEYS["other-provider"]: {"role": "provider", "provider": OTHER_TRAINER},
            }
        )
    )
    return path


def key_id_of(who: str) -> str:
    return key_id(KEYS[who])


class Api:
    """A TestClient that posts as a role: ``api.post(path, body, as_="auditor")``."""

    def __init__(self, client: TestClient):
        self.client = client

    @staticmethod
    def headers(as_: str | None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {KEYS[as_]}"} if as_ else {}
        return headers | {k.replace("_", "-"): v for k, v in extra.items()}

    def get(self, path: str, as_: str | None = "back-office", **params: Any):
        return self.client.get("/v1" + path, params=params, headers=self.headers(as_))

    def post(self, path: str, body: Any = None, as_: str | None = "back-office", **headers: str):
        return self.client.post("/v1" + path, json=body, headers=self.headers(as_, **headers))

    # ------------------------------------------------------------ the story's steps

    def open_wallet(self, enterprise: str = ENTERPRISE, **figures: Any) -> dict:
        body = {"enterprise_number": enterprise, "name": "Bakkerij Peeters", "sme": sme(**figures)}
        response = self.post("/wallets", body)
        assert response.status_code == 201, response.text
        return response.json()

    def submit(self, starts_on: date, enterprise: str = ENTERPRISE, **fields: Any) -> dict:
        response = self.post(f"/wallets/{enterprise}/applications", training(starts_on, **fields))
        assert response.status_code == 201, response.text
        return response.json()

    def act(self, application: dict, action: str, body: Any = None, as_: str = "back-office", **headers: str):
        path = f"/wallets/{ENTERPRISE}/applications/{application['application_id']}/{action}"
        return self.post(path, body, as_=as_, **headers)

    def fund(self, application: dict, on: date) -> dict:
        assert self.act(application, "confirmation", as_="provider").status_code == 200
        deposit = self.deposit_of(application, on.isoformat())
        assert self.act(application, "deposits", deposit).status_code == 200
        response = self.act(application, "top-ups", {"amount": application["subsidy"], "value_date": on.isoformat()})
        assert response.status_code == 200, response.text
        return response.json()

    @staticmethod
    def deposit_of(application: dict, value_date: str) -> dict:
        """The own-share deposit an application asks for, with the bank's value date."""
        return {
            "amount": application["own_share"],
            "payment_reference": application["payment_reference"],
            "value_date": value_date,
        }

    def events(self, enterprise: str = ENTERPRISE) -> list[str]:
        return [e["type"] for e in self.get(f"/wallets/{enterprise}/events").json()["events"]]


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return write_keys(tmp_path / "api-keys.json")


@contextmanager
def running(database_url: str, keys_file: Path) -> Iterator[Api]:
    app = create_app(Settings(database_url=database_url, api_keys_file=keys_file))
    with TestClient(app) as client:
        client.event_hooks["response"].append(hold_to_response_model)
        yield Api(client)


def hold_to_response_model(response: httpx.Response) -> None:
    """Every successful JSON answer is exactly its route's response model in JSON:
    parsed into the model and dumped again it comes out unchanged (commands
    send their views as they are, so this is where a view that drifted from its
    schema is caught)."""
    if not 200 <= response.status_code < 300 or response.headers.get("content-type") != "application/json":
        return
    path, method = response.request.url.path.removeprefix("/v1"), response.request.method
    for route in (route for router in ROUTERS for route in router.routes):
        if isinstance(route, APIRoute) and method in route.methods and route.path_regex.match(path):
            if route.response_model is None:
                return
            response.read()
            model = TypeAdapter(route.response_model)
            body = response.json()
            again = model.dump_python(model.validate_python(body), mode="json", by_alias=True)
            # compared as JSON text: 1 and 1.0 or true and 1 are equal in Python, not on the wire
            as_text = partial(orjson.dumps, option=orjson.OPT_SORT_KEYS)
            assert as_text(again) == as_text(body), (
                f"{method} {path}: the answer is not its response model {route.response_model}"
            )
            return


@pytest.fixture
def api(sqlite_url: str, keys_file: Path) -> Iterator[Api]:
    """The API on a SQLite file."""
    with running(sqlite_url, keys_file) as client:
        yield client


@pytest.fixture
def api_on_every_store(database_url: str, keys_file: Path) -> Iterator[Api]:
    """The API on SQLite and on PostgreSQL."""
    with running(database_url, keys_file) as client:
        yield client
