"""The benchmark runs end to end and reports every figure with its target."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from api import create_app
from api.settings import Settings
from ledger.application import KmoLedger
from ledger.domain.clock import SystemClock, brussels_date
from scripts.bench import Store, _application_lives, application_life, enterprise, main
from tests.api.conftest import KEYS, write_keys


def test_bench_reports_each_figure_as_a_ratio_with_its_target(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--scale", "0.02", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    names = [f["name"] for f in figures]
    assert any(n.startswith("command rate / raw insert rate") for n in names)
    assert any(n.startswith("HTTP stack floor") for n in names)  # the framework's share, same run
    assert any("without Idempotency-Keys" in n for n in names)  # the comparison with less ledger work
    assert all(f["baseline"] > 0 and f["ratio"] > 0 and f["target"] for f in figures)
    assert "kmo-ledger bench" in capsys.readouterr().out


def test_bench_refuses_bad_usage_with_exit_2():
    assert main(["--scale", "0"]) == 2
    assert main(["--store", "oracle"]) == 2


def test_bench_leaves_no_store_behind():
    store = Store("sqlite", "postgresql://unused")
    url = store.url()
    Path(url[len("sqlite:///") :]).write_bytes(b"")
    store.close()
    assert not Path(store.folder).exists()


class _Posting:
    """The bench's HTTP client, over a TestClient: each POST with a new key."""

    def __init__(self, client: TestClient):
        self.client = client

    def post(self, path: str, body: dict) -> dict:
        response = self.client.post(
            path,
            json=body,
            headers={"Authorization": f"Bearer {KEYS['back-office']}", "Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code < 300, response.text
        return response.json()

    def reconnect(self) -> None:
        pass


def _shape(value: Any) -> Any:
    """A JSON value's keys, all the way down (the values differ from life to life)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


def _recorded(ledger: KmoLedger) -> list[tuple[str, Any]]:
    """Each stored event's type, and for an answer stored with an
    Idempotency-Key, the shape of that answer."""
    return [
        (row.topic.rsplit(":", 1)[-1], _shape(orjson.loads(row.state).get("body")))
        for row in ledger.recorder.select_notifications(1, 1000)
    ]


def test_the_in_process_baseline_records_what_the_http_lives_record(tmp_path):
    """The HTTP figure's baseline does the same ledger work as the HTTP clients:
    the same events and an answer of the same shape stored under each key."""
    today = brussels_date(SystemClock().now())
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'http.db'}", api_keys_file=write_keys(tmp_path / "keys.json")
    )
    with TestClient(create_app(settings)) as client:
        _application_lives(today, 0, 1, _Posting(client), 0)
        over_http = _recorded(client.app.state.ledger)
    ledger = KmoLedger(f"sqlite:///{tmp_path / 'in-process.db'}")
    try:
        application_life(ledger, enterprise(1), today, keyed=True)
        in_process = _recorded(ledger)
    finally:
        ledger.close()
    assert len(over_http) == 15  # 7 commands, 7 answers, 1 payment reference claimed
    assert in_process == over_http


def test_bench_measures_verify_and_an_inclusion_proof_at_a_given_size(tmp_path, monkeypatch):
    """``--verify-events N``: verify against the raw read (exit 0 on a sound ledger), its
    peak, a proof's time; its store and keys go with it, and the key file it gave its
    children is not left set for whatever this process does next."""
    import os
    import tempfile

    monkeypatch.delenv("KMO_LEDGER_CHECKPOINT_KEY_FILE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the bench's store folder goes here
    out = tmp_path / "verify.json"
    assert main(["--verify-events", "3000", "--json", str(out)]) == 0
    assert "KMO_LEDGER_CHECKPOINT_KEY_FILE" not in os.environ
    assert [p.name for p in tmp_path.iterdir()] == ["verify.json"]
    figures = {f["name"].split(" (")[0]: f for f in json.loads(out.read_text())}
    verify = figures["verify"]
    assert verify["measured"] > 0 and verify["baseline"] > 0 and "exit 0" in verify["detail"]
    assert figures["peak memory of verify, all its processes together"]["measured"] > 0
    assert 0 < figures["inclusion proof of one event, median of 200"]["measured"] < 1000


def test_a_process_trees_memory_counts_the_processes_it_started():
    """The verify figure's peak memory adds up the workers' memory, as sampled, not guessed from one of them."""
    import os
    import subprocess
    import sys
    import time

    from scripts.bench import tree_rss

    alone = tree_rss(os.getpid())
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; held = bytearray(80_000_000); print(1, flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"1"
        time.sleep(0.1)
        assert tree_rss(os.getpid()) - alone > 70_000_000
    finally:
        child.kill()
        child.wait()
