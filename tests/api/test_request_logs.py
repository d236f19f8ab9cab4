"""What a served ledger writes to its log: one JSON line per request with its
request id (given in X-Request-ID or made, and echoed), method, route
template, status, the caller's key id, the problem's code and the duration;
never a secret, an Authorization header or a body. Every other line is JSON
too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api import create_app
from api.settings import Settings
from scripts.local_server import free_port, stop_session, wait_until_up
from tests.api.conftest import KEYS, Api, key_id_of, write_keys
from tests.conftest import ENTERPRISE, sme

REPOSITORY = str(Path(__file__).resolve().parents[2])
UNKNOWN_SECRET = "never-a-key-5f1e0c9a7b3d"
NAME_IN_BODY = "Bakkerij Geheimzinnig"


class Served:
    """``kmo-ledger serve`` in a child process, its standard error kept in a file."""

    def __init__(self, url: str, log: Path):
        self.url, self.log = url, log

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def line_of(self, request_id: str, seconds: float = 10) -> dict:
        """The access line of a request (written before its answer is complete)."""
        deadline = time.monotonic() + seconds
        while True:
            found = [
                line
                for line in self.lines()
                if line.get("logger") == "kmo_ledger.access" and line.get("request_id") == request_id
            ]
            if found or time.monotonic() > deadline:
                assert len(found) == 1, found
                return found[0]
            time.sleep(0.05)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("served")
    env = {
        **os.environ,
        "KMO_LEDGER_DATABASE_URL": f"sqlite:///{folder / 'ledger.db'}",
        "KMO_LEDGER_API_KEYS_FILE": str(write_keys(folder / "keys.json")),
        "KMO_LEDGER_HEADER_TIMEOUT": "0.5",
    }
    port, log = free_port(), folder / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from scripts.cli import main; sys.exit(main())", "serve"]
            + ["--port", str(port)],
            env=env,
            cwd=REPOSITORY,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/openapi.json")
        yield Served(f"http://127.0.0.1:{port}", log)
    finally:
        stop_session(process)


def test_a_given_request_id_is_echoed_and_logged_with_the_callers_key_id(served: Served):
    answer = httpx.get(
        f"{served.url}/v1/wallets/{ENTERPRISE}", headers={**Api.headers("auditor"), "X-Request-ID": "trace-7f3a/42"}
    )
    assert answer.headers["X-Request-ID"] == "trace-7f3a/42"
    line = served.line_of("trace-7f3a/42")
    assert line["level"] == "info"
    assert (line["method"], line["route"], line["status"], line["key_id"]) == (
        "GET",
        "/v1/wallets/{en}",
        answer.status_code,
        key_id_of("auditor"),
    )
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0


@pytest.mark.parametrize("given", [None, b"", b"has spaces in it", b"x" * 129, "caf\u00e9".encode()])
def test_a_request_without_a_usable_request_id_gets_a_new_one(served: Served, given: bytes | None):
    headers = {} if given is None else {"X-Request-ID": given}
    answer = httpx.get(f"{served.url}/healthz", headers=headers)
    made = answer.headers["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    assert served.line_of(made)["route"] == "/healthz"


def test_problem_answers_carry_the_request_id_and_log_their_code_and_no_secret(served: Served):
    unknown = httpx.get(f"{served.url}/v1/wallets", headers={"Authorization": f"Bearer {UNKNOWN_SECRET}"})
    assert unknown.status_code == 401 and unknown.json()["code"] == "unauthorized"
    line = served.line_of(unknown.headers["X-Request-ID"])
    assert (line["status"], line["code"], line["route"]) == (401, "unauthorized", "/v1/wallets")
    assert "key_id" not in line

    refused = httpx.post(
        f"{served.url}/v1/wallets",
        json={"enterprise_number": "0403170702", "name": NAME_IN_BODY, "sme": sme()},
        headers={**Api.headers("back-office"), "X-Request-ID": "refused-1"},
    )
    assert refused.status_code == 422 and refused.headers["X-Request-ID"] == "refused-1"
    line = served.line_of("refused-1")
    assert (line["status"], line["code"], line["key_id"]) == (422, refused.json()["code"], key_id_of("back-office"))

    log = served.log.read_text()
    for secret in (*KEYS.values(), UNKNOWN_SECRET):
        assert secret not in log
    assert NAME_IN_BODY not in log and "bearer" not in log.lower() and "authorization" not in log.lower()


def test_every_line_written_is_json_and_uvicorn_writes_no_access_lines(served: Served):
    # a client that never finishes its headers: the transport closes it with a line of the ledger's own
    with socket.create_connection(("127.0.0.1", int(served.url.rsplit(":", 1)[1])), timeout=5) as stalled:
        stalled.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            assert stalled.recv(1024) == b""  # closed after KMO_LEDGER_HEADER_TIMEOUT
        except ConnectionResetError:
            pass
    deadline = time.monotonic() + 5
    while not any("closed a connection" in line["message"] for line in served.lines()):
        assert time.monotonic() < deadline, "no line about the closed connection"
        time.sleep(0.05)
    lines = served.lines()  # each parsed as JSON, or this fails
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's own start-up lines
    assert not any(line["logger"] == "uvicorn.access" for line in lines)
    closed = next(line for line in lines if "closed a connection" in line["message"])
    assert closed["logger"] == "kmo_ledger.api" and closed["level"] == "warning"


def test_an_unexpected_error_is_answered_with_the_request_id(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", api_keys_file=write_keys(tmp_path / "k.json"))
    )

    @app.get("/failing")
    def failing() -> None:  # a defect anywhere in a route
        raise RuntimeError("a defect")

    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level("INFO", "kmo_ledger.access"):
        answer = client.get("/failing", headers={"X-Request-ID": "defect-1"})
    assert answer.status_code == 500 and answer.json()["code"] == "internal_error"
    assert answer.headers["X-Request-ID"] == "defect-1"
    (line,) = [record for record in caplog.records if record.name == "kmo_ledger.access"]
    assert (line.request_id, line.status, line.code) == ("defect-1", 500, "internal_error")
