"""Proofs for auditors over HTTP: the latest signed checkpoint, its public key,
consistency and inclusion proofs (auditor and back-office only, documented in
OpenAPI, typed problems for bad input); an event's proof as served checked
offline by ``kmo-ledger check-proof``; the server's own checkpoints."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.audit import checkpoints, merkle
from ledger.audit.proofs import check_event_proof, load_public_key
from ledger.storage.tree import tree_tables
from scripts import check_proof
from tests.conftest import ENTERPRISE, OTHER_ENTERPRISE


def checkpointed(api) -> dict:
    """A wallet with an application (two events and a claim), then a checkpoint taken by the server's checkpointer."""
    # its thread stopped first: a turn of its own (every 5 s) between the two commands
    # would take a checkpoint of fewer records, and this one would not be due
    api.client.app.state.checkpointer.close()
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        api.submit(date(2026, 3, 16))
    assert api.client.app.state.checkpointer.run_once() is not None
    response = api.get("/checkpoints/latest", as_="auditor")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_latest_checkpoint_is_signed_by_the_published_key(api_on_every_store):
    api = api_on_every_store
    assert api.get("/checkpoints/latest").json()["code"] == "not_found"  # none taken yet
    latest = checkpointed(api)
    served = {"tree_size", "root_hash", "timestamp", "key_id", "signature", "number", "previous_size", "previous_root"}
    assert set(latest) == served
    assert latest["tree_size"] == 3 and len(latest["root_hash"]) == 64
    assert (latest["number"], latest["previous_size"], latest["previous_root"]) == (1, None, None)  # the first
    key = api.get("/checkpoints/public-key", as_="auditor").json()
    assert key["algorithm"] == "Ed25519" and key["key_id"] == latest["key_id"]
    public = load_public_key(json.dumps(key).encode())
    message = (
        f"kmo-ledger checkpoint v2\nnumber 1\ntree_size 3\nroot_hash {latest['root_hash']}\n"
        f"timestamp {latest['timestamp']}\n"
        f"key_id {latest['key_id']}\nprevious_size none\nprevious_root none\n"
    ).encode()  # as the API's description of the signature says
    public.verify(bytes.fromhex(latest["signature"]), message)  # raises if it does not verify


def test_the_key_pair_is_made_on_first_start_private_to_its_owner(api, keys_file):
    private = keys_file.parent / "checkpoint-key.pem"
    assert private.exists() and stat.S_IMODE(private.stat().st_mode) == 0o600
    public = checkpoints.public_key_file(private)
    assert b"BEGIN PUBLIC KEY" in public.read_bytes()
    assert api.get("/checkpoints/public-key").json()["pem"] == public.read_text()


def test_an_event_s_proof_leads_to_the_signed_root(api_on_every_store):
    api = api_on_every_store
    latest = checkpointed(api)
    proof = api.get(f"/wallets/{ENTERPRISE}/events/2/proof", as_="auditor").json()
    assert proof["tree_size"] == 3 and proof["root_hash"] == latest["root_hash"]
    event = api.get(f"/wallets/{ENTERPRISE}/events", as_="auditor").json()["events"][1]
    assert proof["leaf_hash"] == merkle.leaf_hash(bytes.fromhex(event["hash"])).hex()
    assert merkle.verify_inclusion(
        proof["leaf_index"],
        3,
        bytes.fromhex(proof["leaf_hash"]),
        [bytes.fromhex(p) for p in proof["proof"]],
        bytes.fromhex(latest["root_hash"]),
    )


def test_a_consistency_proof_links_two_checkpoints(api):
    first = checkpointed(api)
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet(OTHER_ENTERPRISE)
    api.client.app.state.checkpointer.run_once()  # not due: 1 record more, a day not passed
    assert api.get("/checkpoints/latest").json() == first
    checkpoints.take_checkpoint(
        api.client.app.state.ledger, checkpoints.signing_key(api.client.app.state.checkpoint_key)
    )
    second = api.get("/checkpoints/latest").json()
    answer = api.get("/checkpoints/consistency", **{"from": 3, "to": 4}).json()
    assert answer["from"] == 3 and answer["to"] == 4
    assert merkle.verify_consistency(
        3,
        4,
        [bytes.fromhex(p) for p in answer["proof"]],
        bytes.fromhex(first["root_hash"]),
        bytes.fromhex(second["root_hash"]),
    )
    assert api.get("/checkpoints/consistency", **{"from": 4, "to": 4}).json()["proof"] == []


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (f"/wallets/{OTHER_ENTERPRISE}/events/1/proof", {}, 404),  # no such wallet
        (f"/wallets/{ENTERPRISE}/events/9/proof", {}, 404),  # no such event
        (f"/wallets/{ENTERPRISE}/events/2/proof", {"tree_size": 4}, 422),  # beyond the latest checkpoint
        (f"/wallets/{ENTERPRISE}/events/2/proof", {"tree_size": 1}, 422),  # a tree that does not hold it
        (f"/wallets/{ENTERPRISE}/events/0/proof", {}, 422),
        (f"/wallets/{ENTERPRISE}/events/2/proof", {"tree_size": "x"}, 422),
        ("/checkpoints/consistency", {"from": 3, "to": 2}, 422),  # from after to
        ("/checkpoints/consistency", {"from": 1, "to": 9}, 422),  # beyond the latest
        ("/checkpoints/consistency", {"from": 0, "to": 3}, 422),
        ("/checkpoints/consistency", {"to": 3}, 422),
    ],
)
def test_bad_input_is_a_typed_problem(api, path, params, status):
    checkpointed(api)
    response = api.get(path, as_="auditor", **params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json" and response.json()["code"]


@pytest.mark.parametrize("role", ["reconciler", "provider"])
def test_only_auditors_and_the_back_office_may_ask(api, role):
    checkpointed(api)
    for path in ("/checkpoints/latest", "/checkpoints/public-key", f"/wallets/{ENTERPRISE}/events/1/proof"):
        assert api.get(path, as_=role).status_code == 403


def test_every_route_is_documented(api):
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/checkpoints/latest",
        "/v1/checkpoints/public-key",
        "/v1/checkpoints/consistency",
        "/v1/wallets/{en}/events/{sequence}/proof",
    ):
        operation = paths[path]["get"]
        assert operation["tags"] == ["checkpoints"] and {"403", "422"} <= set(operation["responses"])


def served(api, tmp_path) -> dict:
    """What an auditor downloads, written to files: event 2, its proof, the checkpoint, the key."""
    latest = checkpointed(api)
    files = {
        "event": api.get(f"/wallets/{ENTERPRISE}/events", as_="auditor").json(),
        "proof": api.get(f"/wallets/{ENTERPRISE}/events/2/proof", as_="auditor").json(),
        "checkpoint": latest,
        "key": api.get("/checkpoints/public-key", as_="auditor").json(),
    }
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    return files


def check(capsys, tmp_path, *extra: str, key: str = "key.json"):
    args = ["--event", str(tmp_path / "event.json"), "--sequence", "2", "--enterprise", "BE 0403.170.701"]
    args += ["--proof", str(tmp_path / "proof.json"), "--checkpoint", str(tmp_path / "checkpoint.json")]
    code = check_proof.main([*args, "--public-key", str(tmp_path / key), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_check_proof_proves_an_event_with_no_database(api, tmp_path, capsys, monkeypatch):
    served(api, tmp_path)
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never opened
    code, out = check(capsys, tmp_path)
    assert code == 0 and "Proven: event 2 of 0403170701 is leaf" in out and "of the 3 records" in out


def test_check_proof_refuses_a_changed_event_proof_or_checkpoint(api, tmp_path, capsys):
    files = served(api, tmp_path)
    changed = json.loads(json.dumps(files["event"]))
    changed["events"][1]["data"]["application_id"] = "forged"
    (tmp_path / "event.json").write_text(json.dumps(changed))
    code, out = check(capsys, tmp_path)
    assert code == 1 and "does not hash to its hash" in out
    (tmp_path / "event.json").write_text(json.dumps(files["event"]))
    forged = files["checkpoint"] | {"root_hash": "0" * 64}
    (tmp_path / "checkpoint.json").write_text(json.dumps(forged))
    code, out = check(capsys, tmp_path)
    assert code == 1 and "signature does not verify" in out and len(out.strip().splitlines()) == 1
    (tmp_path / "checkpoint.json").write_text(json.dumps(files["checkpoint"]))
    bent = files["proof"] | {"proof": list(reversed(files["proof"]["proof"]))}
    (tmp_path / "proof.json").write_text(json.dumps(bent))
    code, out = check(capsys, tmp_path)
    assert code == 1 and "does not lead from leaf" in out


def test_check_proof_refuses_a_checkpoint_of_another_key(api, tmp_path, capsys):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    served(api, tmp_path)
    (tmp_path / "other.pem").write_bytes(checkpoints.public_pem(Ed25519PrivateKey.generate().public_key()))
    code, out = check(capsys, tmp_path, key="other.pem")
    assert code == 1 and "but the public key given is" in out


def test_the_library_checks_the_same_without_a_database(api, tmp_path):
    files = served(api, tmp_path)
    key = load_public_key(json.dumps(files["key"]).encode())
    event = files["event"]["events"][1]
    assert check_event_proof(event, ENTERPRISE, files["proof"], files["checkpoint"], key) is None
    forged = files["checkpoint"] | {"tree_size": 2}
    assert "signature" in check_event_proof(event, ENTERPRISE, files["proof"], forged, key)
    # its link to the checkpoint before it is signed too: neither changed nor dropped
    relinked = files["checkpoint"] | {"previous_size": 1, "previous_root": "ab" * 32}
    assert "signature" in check_event_proof(event, ENTERPRISE, files["proof"], relinked, key)
    renumbered = files["checkpoint"] | {"number": 2}
    assert "signature" in check_event_proof(event, ENTERPRISE, files["proof"], renumbered, key)
    unlinked = {k: v for k, v in files["checkpoint"].items() if k not in ("number", "previous_size", "previous_root")}
    assert "save all GET /v1/checkpoints/latest" in check_event_proof(event, ENTERPRISE, files["proof"], unlinked, key)
    malformed = files["checkpoint"] | {"previous_size": "one"}
    assert "previous_size or previous_root is malformed" in check_event_proof(
        event, ENTERPRISE, files["proof"], malformed, key
    )


@pytest.mark.parametrize(
    "args",
    [
        [],
        [
            "--event",
            "missing.json",
            "--enterprise",
            ENTERPRISE,
            "--proof",
            "p",
            "--checkpoint",
            "c",
            "--public-key",
            "k",
        ],
    ],
)
def test_check_proof_bad_usage_is_exit_2(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_proof.main(args) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_server_takes_checkpoints_every_n_records_and_at_least_daily(sqlite_url, tmp_path):
    ledger = KmoLedger(sqlite_url)
    try:
        worker = checkpoints.Checkpointer(ledger, tmp_path / "key.pem", every=3, interval=0.02).start()
        from tests.scenarios.helpers import Story

        Story(ledger)
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while tree_tables(ledger).latest_checkpoint() is None and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
        worker.close()
        assert tree_tables(ledger).latest_checkpoint()["tree_size"] == 1
        due = checkpoints.due_every(3)
        latest = tree_tables(ledger).latest_checkpoint()
        taken = datetime.fromisoformat(latest["timestamp"].replace("Z", "+00:00"))
        assert not due(latest, 3, taken) and due(latest, 4, taken)  # every 3 records
        assert due(latest, 1, taken + timedelta(days=1))  # and daily
    finally:
        ledger.close()


def test_processes_racing_take_each_checkpoint_once(sqlite_url, tmp_path):
    """Two ledgers on one store (two worker processes): the tree's one writer keeps checkpoints in sequence."""
    ledgers = [KmoLedger(sqlite_url) for _ in range(2)]
    try:
        from tests.scenarios.helpers import Story

        Story(ledgers[0])
        key = checkpoints.signing_key(tmp_path / "key.pem")
        due = checkpoints.due_every(1)
        results: list = []
        threads = [
            threading.Thread(target=lambda led=led: results.append(checkpoints.take_checkpoint(led, key, due)))
            for led in ledgers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(r is None for r in results) == [False, True]  # one took it, the other found it taken
        assert [row["number"] for row in tree_tables(ledgers[1]).checkpoints()] == [1]
    finally:
        for led in ledgers:
            led.close()
    assert os.path.exists(tmp_path / "key.pem")
