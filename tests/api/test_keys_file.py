"""The API keys file: an entry may hold the SHA-256 of a key instead of the key,
a named key is recorded by name on every event it posts, and the file is read
again when it changes, in every process of ``kmo-ledger serve --workers 2``,
without a restart."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from api import create_app
from api.keys import KeyRing
from api.settings import Settings, SettingsError
from ledger.domain.identifiers import wallet_id
from scripts import keys, verify
from scripts.local_server import Server
from tests.api.conftest import KEYS, key_id_of, running, write_keys
from tests.conftest import ENTERPRISE, TRAINER
from tests.tools.helpers import StoredEvents

SECRET = "a-secret-only-its-holder-knows-0123"
DIGEST = hashlib.sha256(SECRET.encode()).hexdigest()
WALLET_PATH = f"/v1/wallets/{ENTERPRISE}"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# ------------------------------------------------------------ hashed entries


def test_an_entry_holding_the_sha256_of_a_key_lets_that_key_in(tmp_path: Path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({f"sha256:{DIGEST}": {"role": "auditor"}}))
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", api_keys_file=keys_file))
    with TestClient(app) as client:
        assert client.get(WALLET_PATH, headers=bearer(SECRET)).status_code == 404  # let in: no such wallet
        assert client.get(WALLET_PATH, headers=bearer(DIGEST)).status_code == 401  # the digest is no key
        assert client.get(WALLET_PATH, headers=bearer(f"sha256:{DIGEST}")).status_code == 401
        forbidden = client.post("/v1/deadlines/run", headers=bearer(SECRET))
    assert forbidden.status_code == 403  # an auditor's key, as its entry says


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (f"sha256:{DIGEST.upper()}", "64 lowercase hex digits"),
        (f"sha256:{DIGEST[:63]}", "64 lowercase hex digits"),
        (f"sha256:{DIGEST}0", "64 lowercase hex digits"),
    ],
)
def test_a_hashed_entry_that_is_no_sha256_stops_the_app_from_being_built(tmp_path: Path, entry, reason):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({entry: {"role": "back-office"}}))
    with pytest.raises(SettingsError, match=reason):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", api_keys_file=keys_file))


def test_a_key_listed_both_as_itself_and_as_its_digest_stops_the_app(tmp_path: Path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({SECRET: {"role": "auditor"}, f"sha256:{DIGEST}": {"role": "back-office"}}))
    with pytest.raises(SettingsError, match=f"key {DIGEST[:12]} is listed twice"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", api_keys_file=keys_file))


def test_a_key_name_that_is_blank_or_holds_control_characters_stops_the_app(tmp_path: Path):
    keys_file = tmp_path / "keys.json"
    for name in ("  ", "Pay\x1b[31mments"):
        keys_file.write_text(json.dumps({SECRET: {"role": "auditor", "name": name}}))
        with pytest.raises(SettingsError, match=f"key {DIGEST[:12]}: name: "):
            create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", api_keys_file=keys_file))


# ------------------------------------------------------------ named keys on events


def test_a_named_key_is_recorded_by_name_and_events_from_before_names_still_verify(
    database_url: str, tmp_path: Path, monkeypatch, capsys
):
    """The wallet is opened with the keys file of API.md (no names), then the
    file names the back-office key: the next event carries the name, the one
    before is stored exactly as before, and the chain verifies."""
    unnamed = write_keys(tmp_path / "keys.json")
    with running(database_url, unnamed) as api, freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
    named = json.loads(unnamed.read_text())
    named[KEYS["back-office"]]["name"] = "Payments service"
    named[f"sha256:{DIGEST}"] = {"role": "provider", "provider": TRAINER, "name": "Trainer's back office"}
    unnamed.write_text(json.dumps(named))
    with running(database_url, unnamed) as api, freeze_time("2026-03-03 09:00:00"):
        application = api.submit(date(2026, 3, 16))
        confirmed = api.client.post(
            f"{WALLET_PATH}/applications/{application['application_id']}/confirmation", headers=bearer(SECRET)
        )
        assert confirmed.status_code == 200, confirmed.text
        events = api.get(f"/wallets/{ENTERPRISE}/events", as_="auditor").json()["events"]
        verification = api.get(f"/wallets/{ENTERPRISE}/verification", as_="auditor").json()

    assert [event["actor"] for event in events] == [
        {"key_id": key_id_of("back-office"), "role": "back-office"},
        {"key_id": key_id_of("back-office"), "role": "back-office", "name": "Payments service"},
        {"key_id": DIGEST[:12], "role": "provider", "name": "Trainer's back office"},
    ]
    stored = [orjson.loads(StoredEvents(database_url).state(wallet_id(ENTERPRISE), v))["actor"] for v in (1, 2)]
    assert stored == [
        {"key_id": key_id_of("back-office"), "role": "back-office"},  # no "name": null in what the hash covers
        {"key_id": key_id_of("back-office"), "role": "back-office", "name": "Payments service"},
    ]
    assert verification == {"ok": True, "problems": []}
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", database_url)
    assert verify.main([ENTERPRISE]) == 0, capsys.readouterr()


# ------------------------------------------------------------ a file that changes while serving


def test_a_keys_file_broken_while_in_use_leaves_the_keys_read_before_and_says_so_once(tmp_path: Path, caplog):
    keys_file = write_keys(tmp_path / "keys.json")
    ring = KeyRing.load(Settings(api_keys_file=keys_file), every=0)
    before = ring.current()
    caplog.set_level(logging.WARNING, logger="kmo_ledger.api")

    keys_file.write_text('{"half a key file')
    assert ring.current() == before
    assert ring.current() == before
    keys_file.unlink()
    assert ring.current() == before
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2  # one line per broken version of the file, not one per request
    assert "cannot be read as JSON" in warnings[0] and "does not exist" in warnings[1]
    assert all(secret not in line for line in warnings for secret in KEYS.values())

    keys_file.write_text(json.dumps({f"sha256:{DIGEST}": {"role": "auditor"}}))
    assert list(ring.current()) == [DIGEST]
    keys_file.write_text("{}")  # every key revoked: no key, as the file says
    assert ring.current() == {}


def test_a_keys_file_whose_every_key_was_revoked_does_not_start_a_server(tmp_path: Path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text("{}")
    with pytest.raises(SettingsError, match="holds no key"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", api_keys_file=keys_file))


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    keys_file = write_keys(tmp_path / "keys.json")
    env = {
        **os.environ,
        "KMO_LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "KMO_LEDGER_API_KEYS_FILE": str(keys_file),
    }
    server = Server(env, str(Path(__file__).resolve().parents[2]), workers=2)
    server.start()
    try:
        yield server, keys_file
    finally:
        server.stop()


def answers(server: Server, secret: str, requests: int = 12) -> set[int]:
    """The statuses of ``requests`` reads sent at once, each on a connection of
    its own, so that both worker processes answer some of them."""

    def read(_: int) -> int:
        headers = bearer(secret) | {"Connection": "close"}
        return httpx.get(server.url + WALLET_PATH, headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=requests) as pool:
        return set(pool.map(read, range(requests)))


def settles_on(server: Server, secret: str, status: int, seconds: float = 8, rounds: int = 3) -> bool:
    """Whether, within ``seconds``, every read with ``secret`` gets ``status`` for
    ``rounds`` rounds in a row."""
    deadline, in_a_row = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        in_a_row = in_a_row + 1 if answers(server, secret) == {status} else 0
        if in_a_row == rounds:
            return True
    return False


def test_a_key_added_or_revoked_takes_effect_in_every_worker_without_a_restart(two_workers, monkeypatch, capsys):
    server, keys_file = two_workers
    monkeypatch.setenv("KMO_LEDGER_API_KEYS_FILE", str(keys_file))
    assert answers(server, KEYS["back-office"]) == {404}

    capsys.readouterr()
    assert keys.main(["add", "--role", "back-office", "--name", "Payments service", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert settles_on(server, added["secret"], 404), "the added key was not let in within seconds"

    saved = keys_file.read_bytes()
    keys_file.write_text('{"an edit": "half')  # a slip while editing by hand
    started = time.monotonic()
    while time.monotonic() - started < 2.5:  # longer than either worker takes to see the change
        assert answers(server, added["secret"]) == {404}, "a broken keys file locked a key out"
        assert answers(server, KEYS["auditor"]) == {404}
    keys_file.write_bytes(saved)

    assert keys.main(["revoke", added["key_id"]]) == 0
    assert settles_on(server, added["secret"], 401), "the revoked key still got in"
    assert answers(server, KEYS["back-office"]) == {404}  # the others stay
