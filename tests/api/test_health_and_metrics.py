"""An operator's checks: /healthz (alive), /readyz (the store answers and the
read models are within KMO_LEDGER_READY_MAX_LAG notifications of it) and
/metrics (Prometheus' text format), counted exactly across the workers of a
real ``kmo-ledger serve --workers 2``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from ledger.application import KmoLedger
from scripts.local_server import Server, free_port, stop_session
from scripts.seed import enterprise_number
from tests.api.conftest import Api, running, write_keys
from tests.conftest import ENTERPRISE, sme

REPOSITORY = str(Path(__file__).resolve().parents[2])
WALLET_SPELLINGS = ("0403170701", "BE0403170701", "0403.170.701", "BE 0403 170 701", "403170701")
"""One wallet, spelled as clients do: one route template, one series."""


def samples(exposition: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a text exposition: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(found: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_liveness_answers_without_a_key(api: Api):
    answer = api.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"alive": True}


def test_the_operator_checks_are_outside_v1_and_documented(api: Api):
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {paths[p]["get"]["operationId"] for p in ("/healthz", "/readyz", "/metrics")} == {
        "liveness",
        "readiness",
        "metrics",
    }
    assert all("security" not in paths[p]["get"] for p in ("/healthz", "/readyz", "/metrics"))


# ---------------------------------------------------------------------- /metrics, two workers


def server_environment(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A server's environment on a fresh store, with its temporary folder (where
    its metrics folder is made) under ``tmp_path``."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {
        **os.environ,
        "KMO_LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "KMO_LEDGER_API_KEYS_FILE": str(write_keys(tmp_path / "keys.json")),
        "TMPDIR": str(temporary),
    }
    return env, temporary


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """A real server of two workers; its metrics folder is made under ``tmp``."""
    env, temporary = server_environment(tmp_path)
    server = Server(env, REPOSITORY, workers=2)
    server.start()
    try:
        yield server, temporary
    finally:
        server.stop()


def wallet_reads_by_worker(temporary: Path) -> list[float]:
    """The wallet reads each worker counted, from its own file in the metrics folder."""
    (folder,) = temporary.glob("kmo-ledger-metrics-*")
    counts = []
    for file in sorted(folder.glob("counter_*.db")):
        found = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in MultiProcessCollector.merge([str(file)])
            for s in family.samples
        }
        counts.append(
            value(found, "kmo_ledger_http_requests_total", method="GET", route="/v1/wallets/{en}", status="200")
        )
    return counts


def test_metrics_count_every_request_exactly_summed_over_two_workers(two_workers: tuple[Server, Path]):
    server, temporary = two_workers
    back_office = Api.headers("back-office")
    opened = httpx.post(
        f"{server.url}/v1/wallets",
        json={"enterprise_number": ENTERPRISE, "name": "Bakkerij Peeters", "sme": sme()},
        headers=back_office,
    )
    assert opened.status_code == 201, opened.text

    # wallet reads, each on a connection of its own, until both workers served some (at least 7)
    reads = 0
    while reads < 7 or sum(count > 0 for count in wallet_reads_by_worker(temporary)) < 2:
        assert reads < 200, "one worker served every connection"
        spelling = WALLET_SPELLINGS[reads % len(WALLET_SPELLINGS)]
        assert httpx.get(f"{server.url}/v1/wallets/{spelling}", headers=back_office).status_code == 200
        reads += 1
    refused = [
        httpx.post(  # the same wallet again
            f"{server.url}/v1/wallets",
            json={"enterprise_number": ENTERPRISE, "name": "Bakkerij Peeters", "sme": sme()},
            headers=back_office,
        ),
        httpx.post(f"{server.url}/v1/wallets", json={}, headers=Api.headers("auditor")),  # no command for an auditor
        httpx.post(f"{server.url}/v1/wallets", json={}, headers={"Authorization": "Bearer not-a-key-0123456789"}),
    ]
    assert [answer.status_code for answer in refused] == [409, 403, 401]

    found = samples(httpx.get(f"{server.url}/metrics").text)
    requests = "kmo_ledger_http_requests_total"
    assert value(found, requests, method="GET", route="/v1/wallets/{en}", status="200") == reads
    assert sum(wallet_reads_by_worker(temporary)) == reads
    for status in ("201", "409", "403", "401"):
        assert value(found, requests, method="POST", route="/v1/wallets", status=status) == 1, status
    latency = "kmo_ledger_http_request_duration_seconds_count"
    assert value(found, latency, method="GET", route="/v1/wallets/{en}") == reads
    assert value(found, latency, method="POST", route="/v1/wallets") == 4
    for outcome in ("accepted", "already_exists", "forbidden", "unauthorized"):
        assert value(found, "kmo_ledger_commands_total", command="open_wallet", outcome=outcome) == 1, outcome
    for code in ("already_exists", "forbidden", "unauthorized"):
        assert value(found, "kmo_ledger_refusals_total", code=code) == 1, code
    assert not any(name == requests and "0403.170.701" in str(labels) for name, labels in found)
    # one transaction committed the opening, the only command that recorded anything
    assert value(found, "kmo_ledger_commit_group_size_count") == 1
    assert value(found, "kmo_ledger_commit_group_size_sum") == 1
    assert value(found, "kmo_ledger_commit_seconds_count") == 1
    # no read across wallets yet: the read models lack the one event; /readyz catches them up
    assert value(found, "kmo_ledger_read_models_lag") == 1
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert value(samples(httpx.get(f"{server.url}/metrics").text), "kmo_ledger_read_models_lag") == 0


def test_each_start_has_a_fresh_metrics_folder_and_one_killed_is_removed_by_the_next(tmp_path: Path):
    env, temporary = server_environment(tmp_path)
    server = Server(env, REPOSITORY)
    server.start()
    try:
        (first,) = temporary.glob("kmo-ledger-metrics-*")
        assert first.stat().st_mode & 0o077 == 0
        server.kill()  # no chance to remove its own
        assert first.exists()
        server.restart()
        assert [folder.name for folder in temporary.glob("kmo-ledger-metrics-*")] not in ([], [first.name])
    finally:
        server.stop()
    assert list(temporary.glob("kmo-ledger-metrics-*")) == []


# ---------------------------------------------------------------------- /readyz and the lag


@contextmanager
def writer_busy(ledger: KmoLedger) -> Iterator[None]:
    """SQLite's writer turn held by another thread (a long write), for at most
    10 s: the read models cannot commit a batch meanwhile."""
    assert ledger.writer_turn is not None
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ledger.writer_turn:
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait(5)
    try:
        yield
    finally:
        release.set()
        holder.join()


def ready_when_caught_up(api: Api) -> dict:
    deadline = time.monotonic() + 10
    while True:
        answer = api.client.get("/readyz")
        if answer.status_code == 200 and answer.json()["read_models"]["lag"] == 0 or time.monotonic() > deadline:
            return answer.json()


def test_readiness_allows_the_read_models_a_lag_of_ready_max_lag_notifications(
    sqlite_url: str, keys_file: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KMO_LEDGER_READY_MAX_LAG", "2")
    with running(sqlite_url, keys_file) as api:
        ledger = api.client.app.state.ledger
        for n in range(2):
            api.open_wallet(enterprise_number(n))
        with writer_busy(ledger):  # the catch-up the check starts cannot finish
            answer = api.client.get("/readyz")
        assert answer.status_code == 200, answer.text
        models = answer.json()["read_models"]
        assert (models["ok"], models["position"], models["lag"], models["max_lag"]) == (True, 0, 2, 2)
        assert ready_when_caught_up(api)["read_models"]["position"] == 2

        for n in range(2, 5):
            api.open_wallet(enterprise_number(n))
        with writer_busy(ledger):
            answer = api.client.get("/readyz")
        assert answer.status_code == 503, answer.text
        report = answer.json()
        assert report["ready"] is False and report["store"] == {"ok": True, "notifications": 5}
        assert (report["read_models"]["ok"], report["read_models"]["position"], report["read_models"]["lag"]) == (
            False,
            2,
            3,
        )
        caught_up = ready_when_caught_up(api)
        assert caught_up["ready"] is True and caught_up["read_models"]["position"] == 5


def test_a_bad_ready_max_lag_stops_serve_in_one_line(tmp_path: Path):
    env = {
        **os.environ,
        "KMO_LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "KMO_LEDGER_API_KEYS_FILE": str(write_keys(tmp_path / "keys.json")),
        "KMO_LEDGER_READY_MAX_LAG": "-1",
    }
    command = [sys.executable, "-c", "import sys; from scripts.cli import main; sys.exit(main())", "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(free_port())],
        env=env,
        cwd=REPOSITORY,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _out, error = server.communicate(timeout=30)
    finally:
        stop_session(server)  # were it serving
    assert server.returncode == 2
    assert error.startswith("kmo-ledger serve: KMO_LEDGER_READY_MAX_LAG") and error.count("\n") == 1


def test_wallet_reads_are_one_series_whatever_the_spelling(api: Api):
    api.open_wallet(ENTERPRISE)
    for spelling in WALLET_SPELLINGS:
        assert api.get(f"/wallets/{spelling}").status_code == 200
    found = samples(api.client.get("/metrics").text)
    routes = {dict(labels)["route"] for name, labels in found if name == "kmo_ledger_http_requests_total"}
    assert "/v1/wallets/{en}" in routes and not any("0403" in route for route in routes)
    reads = value(found, "kmo_ledger_http_requests_total", method="GET", route="/v1/wallets/{en}", status="200")
    assert reads == len(WALLET_SPELLINGS)
