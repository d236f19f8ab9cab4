"""``kmo-ledger serve`` and the settings it and ``create_app`` read."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api import create_app
from api.observability import log_config
from api.settings import Settings, SettingsError
from api.transport import PROTOCOL, LimitedProtocol
from scripts import serve
from scripts.local_server import free_port
from tests.api.conftest import Api

JSON_LOGS = {"log_config": log_config(), "access_log": False}
"""Every line as JSON, one per request from the app; none from uvicorn's access log."""


class FakeUvicorn:
    def __init__(self):
        self.calls: list[tuple[tuple, dict]] = []

    def run(self, *args, **kwargs):
        self.calls.append((args, kwargs))


@pytest.fixture
def fake_uvicorn(monkeypatch) -> FakeUvicorn:
    fake = FakeUvicorn()
    monkeypatch.setattr(uvicorn, "run", fake.run)
    return fake


@pytest.fixture
def fresh_folder(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMO_LEDGER_API_KEYS_FILE", raising=False)
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    return tmp_path


def test_serve_creates_a_keys_file_with_one_key_per_role_and_says_where(fresh_folder, fake_uvicorn, capsys):
    assert serve.main(["--host", "0.0.0.0", "--port", "8123"]) == 0
    keys_file = fresh_folder / "var" / "api-keys.json"
    keys = json.loads(keys_file.read_text())
    assert sorted(entry["role"] for entry in keys.values()) == ["auditor", "back-office", "provider", "reconciler"]
    assert all(len(secret) >= 32 for secret in keys)
    assert keys_file.stat().st_mode & 0o077 == 0
    assert f"created {keys_file}" in capsys.readouterr().out
    assert fake_uvicorn.calls == [
        ((create_app,), {"factory": True, "host": "0.0.0.0", "port": 8123, "http": LimitedProtocol, **JSON_LOGS})
    ]

    assert serve.main([]) == 0
    assert json.loads(keys_file.read_text()) == keys
    assert f"using {keys_file}" in capsys.readouterr().out
    assert fake_uvicorn.calls[-1] == (
        (create_app,),
        {"factory": True, "host": "127.0.0.1", "port": 8000, "http": LimitedProtocol, **JSON_LOGS},
    )


def test_serve_with_workers_has_each_process_build_the_app_from_its_factory(fresh_folder, fake_uvicorn):
    assert serve.main(["--workers", "2"]) == 0
    assert fake_uvicorn.calls == [
        (
            ("api.app:create_app",),
            {"factory": True, "host": "127.0.0.1", "port": 8000, "workers": 2, "http": PROTOCOL, **JSON_LOGS},
        )
    ]


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
def test_serve_refuses_workers_for_a_store_in_memory(fresh_folder, fake_uvicorn, capsys, monkeypatch, url):
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", url)
    assert serve.main(["--workers", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "kmo-ledger serve: a store in memory belongs to one process: serve it with --workers 1"
    )
    assert fake_uvicorn.calls == []


@pytest.mark.parametrize(
    "argv", [["--port", "http"], ["--port", "70000"], ["--bogus"], ["extra"], ["--workers", "0"], ["--workers", "many"]]
)
def test_serve_refuses_bad_usage_with_one_line_and_exit_2(fresh_folder, fake_uvicorn, capsys, argv):
    assert serve.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kmo-ledger serve: ") and "\n" not in error
    assert fake_uvicorn.calls == []


def test_serve_refuses_a_configured_keys_file_that_is_missing(fresh_folder, fake_uvicorn, capsys, monkeypatch):
    monkeypatch.setenv("KMO_LEDGER_API_KEYS_FILE", str(fresh_folder / "nowhere.json"))
    assert serve.main([]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert fake_uvicorn.calls == []


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("KMO_LEDGER_HEADER_TIMEOUT", "0", "Input should be greater than 0"),
        ("KMO_LEDGER_BODY_TIMEOUT", "soon", "Input should be a valid number, unable to parse string as a number"),
        ("KMO_LEDGER_MAX_CONNECTIONS", "0", "Input should be greater than or equal to 1"),
    ],
)
def test_serve_refuses_a_bad_transport_limit_in_one_line(
    fresh_folder, fake_uvicorn, capsys, monkeypatch, variable, value, says
):
    monkeypatch.setenv(variable, value)
    assert serve.main([]) == 2
    assert capsys.readouterr().err == f"kmo-ledger serve: {variable}: {says}\n"
    assert fake_uvicorn.calls == []


def test_serve_stops_in_one_line_when_the_consoles_secret_is_unusable(fresh_folder, fake_uvicorn, capsys):
    (fresh_folder / "var").mkdir()
    (fresh_folder / "var" / "console-secret").write_text("too short\n")
    assert serve.main([]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kmo-ledger serve: the console's secret in ") and error.count("\n") == 1
    assert fake_uvicorn.calls == []


def test_serve_stops_in_one_line_when_the_store_cannot_be_reached(fresh_folder, fake_uvicorn, capsys, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/test")
    assert serve.main([]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kmo-ledger serve: cannot open the store: ") and error.count("\n") == 1
    assert f"127.0.0.1:{port}" in error or "connect" in error
    assert fake_uvicorn.calls == []


def test_serve_stops_in_one_line_on_a_store_url_it_cannot_use(fresh_folder, fake_uvicorn, capsys, monkeypatch):
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", "mysql://root@127.0.0.1/ledger")
    assert serve.main([]) == 2
    assert capsys.readouterr().err.startswith("kmo-ledger serve: cannot open the store: unsupported database URL")
    assert fake_uvicorn.calls == []


@pytest.mark.postgres
def test_serve_creates_a_missing_postgresql_schema_before_serving(
    fresh_folder, fake_uvicorn, capsys, monkeypatch, postgres_server
):
    postgres_url = postgres_server.split("?")[0]
    schema = f"kmo_serve_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", f"{postgres_url}?schema={schema}")
    try:
        assert serve.main([]) == 0, capsys.readouterr().err
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            tables = connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
            ).fetchone()
        assert tables is not None and tables[0] > 0
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_the_app_reads_the_environment_when_it_is_built(fresh_folder, keys_file, monkeypatch):
    monkeypatch.setenv("KMO_LEDGER_API_KEYS_FILE", str(keys_file))
    app = create_app()
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", "sqlite:///elsewhere.db")
    with TestClient(app) as client:
        answer = client.post(
            "/v1/wallets",
            json={
                "enterprise_number": "0403170701",
                "name": "Peeters",
                "sme": {"fte": 1, "turnover": "1", "balance_total": "1"},
            },
            headers=Api.headers("back-office"),
        )
    assert answer.status_code == 201
    assert (fresh_folder / "ledger.db").exists() and not (fresh_folder / "elsewhere.db").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "cannot be read as JSON"),
        ("[]", "JSON object"),
        ('{"short": {"role": "back-office"}}', "16 characters"),
        ('{"a-long-enough-secret-key": {"role": "janitor"}}', "key "),
        ('{"a-long-enough-secret-key": {"role": "provider"}}', "registration number"),
        ('{"a-long-enough-secret-key": {"role": "provider", "provider": "DV.0207084"}}', "zero"),
        ('{"a-long-enough-secret-key": {"role": "auditor", "provider": "DV.O207084"}}', "only a provider"),
    ],
)
def test_a_bad_keys_file_stops_the_app_from_being_built(tmp_path: Path, content, reason):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(content)
    with pytest.raises(SettingsError, match=reason):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", api_keys_file=keys_file))


def test_provider_numbers_in_the_keys_file_are_read_in_canonical_form(tmp_path: Path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text('{"a-long-enough-secret-key": {"role": "provider", "provider": " dv.o207084 "}}')
    keys = Settings(api_keys_file=keys_file).load_keys()
    assert [key.provider for key in keys.values()] == ["DV.O207084"]
