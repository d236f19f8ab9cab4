"""Slow and greedy clients against a real ``kmo-ledger serve``: a request must
arrive whole in time, and the server holds a bounded number of connections."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.local_server import Server
from tests.api.conftest import Api, write_keys

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
MAX_CONNECTIONS = 8


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = {
        **os.environ,
        "KMO_LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "KMO_LEDGER_API_KEYS_FILE": str(write_keys(tmp_path / "keys.json")),
        "KMO_LEDGER_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "KMO_LEDGER_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "KMO_LEDGER_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    server = Server(env, str(Path(__file__).resolve().parents[2]))
    server.start()
    yield server
    server.stop()


def connect(server: Server) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return connection


def closed_within(connection: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed ``connection`` within ``seconds``, and what it sent."""
    connection.settimeout(seconds)
    received = b""
    try:
        while chunk := connection.recv(4096):
            received += chunk
        return True, received
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        return True, received


def trickle(connection: socket.socket, data: bytes, pause: float) -> float:
    """Send ``data`` a byte every ``pause`` seconds until the server closes the
    connection or it is sent (at most the longer timeout and 5 s); when it began."""
    started = time.monotonic()
    try:
        for byte in data:
            connection.sendall(bytes([byte]))
            time.sleep(pause)
            if time.monotonic() - started > max(HEADER_TIMEOUT, BODY_TIMEOUT) + 5:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    return started


def a_request_still_works(server: Server) -> None:
    answer = httpx.get(f"{server.url}/v1/wallets/0403170701", headers=Api.headers("back-office"), timeout=10)
    assert answer.status_code == 404  # served: no such wallet yet


def test_a_client_that_never_finishes_its_headers_is_closed_after_the_header_timeout(server):
    connection = connect(server)
    connection.sendall(b"GET /v1/wallets/0403170701 HTTP/1.1\r\nHost: x\r\n")  # no blank line: never complete
    started = time.monotonic()
    closed, _ = closed_within(connection, HEADER_TIMEOUT + 5)
    assert closed and time.monotonic() - started < HEADER_TIMEOUT + 3
    connection.close()
    a_request_still_works(server)


def test_a_silent_connection_is_closed_after_the_header_timeout(server):
    connection = connect(server)
    closed, _ = closed_within(connection, HEADER_TIMEOUT + 5)
    assert closed
    connection.close()


def test_headers_trickled_a_byte_at_a_time_do_not_keep_a_connection_open(server):
    connection = connect(server)
    started = trickle(connection, b"GET /v1/wallets/0403170701 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100, 0.1)
    closed, _ = closed_within(connection, 1)
    assert closed and time.monotonic() - started < HEADER_TIMEOUT + 5
    connection.close()


def test_a_body_trickled_slower_than_the_body_timeout_is_cut_off_and_records_nothing(server):
    body = json.dumps(
        {"enterprise_number": "0403170701", "name": "Peeters", "sme": {"fte": 1, "turnover": "1", "balance_total": "1"}}
    ).encode()
    headers = "".join(f"{name}: {value}\r\n" for name, value in Api.headers("back-office").items())
    connection = connect(server)
    connection.sendall(
        b"POST /v1/wallets HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        + headers.encode()
        + f"content-length: {len(body)}\r\n\r\n".encode()
    )
    started = trickle(connection, body[:-1], 0.05)  # never the last byte
    closed, _ = closed_within(connection, 2)
    assert closed and time.monotonic() - started < BODY_TIMEOUT + 5
    connection.close()
    a_request_still_works(server)  # and the wallet was not opened


def test_connections_beyond_the_cap_are_answered_503_and_closed(server):
    held = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # the server has taken them all
        extra = connect(server)
        closed, received = closed_within(extra, 5)
        extra.close()
        assert closed
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert json.loads(body)["code"] == "too_many_connections"
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.2)
    a_request_still_works(server)


def test_a_request_sent_whole_is_served_as_before(server):
    a_request_still_works(server)
    with httpx.Client(base_url=server.url, headers=Api.headers("back-office"), timeout=10) as client:
        for _ in range(3):  # one kept-alive connection, several requests, each in time
            assert client.get("/v1/wallets/0403170701").status_code == 404
            time.sleep(HEADER_TIMEOUT / 2)
