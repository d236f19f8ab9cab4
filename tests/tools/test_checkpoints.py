"""The ledger-wide Merkle tree and its signed checkpoints, from the command
line: ``kmo-ledger checkpoint`` signs the tree; ``kmo-ledger verify``
recomputes it from a tampered copy of the store and names the first position
where the log and the tree part (on SQLite and PostgreSQL); a forged
checkpoint is refused; ``--since-checkpoint`` goes on from the last one verified."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from urllib.parse import urlsplit
from uuid import UUID

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from freezegun import freeze_time

from ledger.audit import merkle
from ledger.audit.checkpoints import checkpoint_message, key_id, leaf_hash_of, public_pem, raw_public
from ledger.domain.identifiers import wallet_id
from ledger.storage.tree import tree_tables
from scripts import checkpoint, verify
from tests.conftest import ENTERPRISE, OTHER_ENTERPRISE
from tests.scenarios.helpers import Story
from tests.tools.helpers import StoredEvents, Tools
from tests.tools.test_verify import two_wallets  # noqa: F401  # the fixture, shared

WALLET = wallet_id(ENTERPRISE)
OTHER_WALLET = wallet_id(OTHER_ENTERPRISE)


@pytest.fixture
def tools(monkeypatch, capsys, database_url, tmp_path):
    monkeypatch.setenv("KMO_LEDGER_CHECKPOINT_KEY_FILE", str(tmp_path / "keys" / "checkpoint-key.pem"))
    return Tools(monkeypatch, capsys, database_url)


@pytest.fixture
def signed(ledger, tools, request):
    """Two wallets (the first: events 1..7, the second: 1..2, each submission
    with its payment-reference claim), then a checkpoint of all of it."""
    request.getfixturevalue("two_wallets")
    taken = tools.run(checkpoint.main, "--json")
    assert taken.code == 0, taken.err
    return ledger


class Tables:
    """Rows behind the ledger's back: the events table and the checkpoints."""

    def __init__(self, url: str):
        self.url = url

    def run(self, statement: str, params: tuple = ()) -> list[tuple]:
        if self.url.startswith("sqlite"):
            with closing(sqlite3.connect(self.url[len("sqlite:///") :])) as db, db:
                sql = statement.format(events="stored_events", checkpoints="kmo_ledger_checkpoints")
                return db.execute(sql, params).fetchall()
        import psycopg

        schema = dict(pair.split("=", 1) for pair in urlsplit(self.url).query.split("&") if pair)["schema"]
        sql = statement.format(events=f"{schema}.kmo_ledger_events", checkpoints=f"{schema}.kmo_ledger_checkpoints")
        with psycopg.connect(self.url.split("?")[0], autocommit=True) as connection:
            cursor = connection.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []


def position(ledger, wallet, version) -> int:
    return tree_tables(ledger).leaf_of(str(wallet), version)


def findings(tools: Tools, *args: str) -> tuple[int, dict]:
    outcome = tools.run(verify.main, *args, "--json")
    assert outcome.code in (0, 1), outcome.err
    return outcome.code, json.loads(outcome.out)


def problems(report: dict) -> str:
    return "\n".join(p["problem"] for p in report["problems"])


def test_an_untouched_ledger_matches_its_signed_checkpoint(tools, signed):
    code, report = findings(tools)
    assert code == 0, problems(report)
    assert report["tree"]["checked"] and report["tree"]["tree_size"] == 11 and report["tree"]["checkpoints"] == 1
    human = tools.run(verify.main)
    assert "Merkle tree of 11 record(s) against 1 checkpoint(s)" in human.out and "OK" in human.out


def test_the_tree_covers_every_stored_record_in_notification_order(signed, tools):
    """Wallet events by their hash, records (the claims) by the SHA-256 of their bytes: the signed root."""
    rows = signed.recorder.select_notifications(1, 100)
    assert len(rows) == 11 and any("PaymentReferenceClaimed" in row.topic for row in rows)
    expected = merkle.root([leaf_hash_of(bytes(row.state)) for row in rows]).hex()
    claim = next(row for row in rows if "PaymentReferenceClaimed" in row.topic)
    event = next(row for row in rows if row.originator_id == WALLET)
    assert leaf_hash_of(bytes(claim.state)) == merkle.leaf_hash(hashlib.sha256(claim.state).digest())
    assert leaf_hash_of(bytes(event.state)) == merkle.leaf_hash(bytes.fromhex(orjson.loads(event.state)["hash"]))
    assert json.loads(tools.run(checkpoint.main, "--json").out)["root_hash"] == expected


def test_a_deleted_last_event_of_a_wallet_is_named_by_position(tools, signed):
    """The chain of the second wallet still holds without its last event; the tree does not."""
    at = position(signed, OTHER_WALLET, 2)
    StoredEvents(tools.database_url).delete(OTHER_WALLET, 2)
    code, report = findings(tools)
    assert code == 1
    first = next(p for p in report["problems"] if p.get("position") == at)
    assert (first["enterprise_number"], first["sequence"]) == (OTHER_ENTERPRISE, 2)
    assert f"position {at}: the tree recorded wallet {OTHER_ENTERPRISE} event 2" in first["problem"]
    assert "checkpoint 1 (tree size 11" in problems(report) and "does not match the log" in problems(report)


def test_the_deleted_newest_event_of_the_ledger_is_named(tools, signed):
    at = position(signed, WALLET, 7)
    assert at == 10  # the newest record of all
    StoredEvents(tools.database_url).delete(WALLET, 7)
    code, report = findings(tools)
    assert code == 1
    assert f"position {at}: the log ends here, but the tree recorded wallet {ENTERPRISE} event 7" in problems(report)
    assert "the log ends after 10 records, but checkpoint 1 signed 11" in problems(report)
    human = tools.run(verify.main)
    assert human.code == 1 and "position 10" in human.out.replace("\n", " ")


def test_two_swapped_events_are_named_at_the_first(tools, signed):
    stored = StoredEvents(tools.database_url)
    third, fourth = stored.state(WALLET, 3), stored.state(WALLET, 4)
    stored.update(WALLET, 3, fourth)
    stored.update(WALLET, 4, third)
    at = position(signed, WALLET, 3)
    code, report = findings(tools)
    assert code == 1
    assert f"position {at}: wallet {ENTERPRISE} event 3" in problems(report) and "it was changed" in problems(report)
    assert f"first difference at position {at}" in problems(report)


def test_a_changed_byte_of_a_record_outside_every_chain_is_named(tools, signed):
    """A payment-reference claim belongs to no hash chain: one byte of it changed is a leaf changed."""
    (record_id, state), *_ = Tables(tools.database_url).run(
        "SELECT originator_id, state FROM {events} WHERE topic LIKE ? ORDER BY 1", ("%PaymentReferenceClaimed",)
    )
    stored = StoredEvents(tools.database_url)
    record = UUID(str(record_id))
    stored.update(record, 1, bytes(state).replace(b'"timestamp":"2026', b'"timestamp":"2027'))
    at = tree_tables(signed).leaf_of(str(record), 1)
    code, report = findings(tools)
    assert code == 1
    assert f"position {at}: record {record} version 1" in problems(report)


def test_a_changed_byte_of_an_event_hash_is_named(tools, signed):
    stored = StoredEvents(tools.database_url)
    state = orjson.loads(stored.state(WALLET, 5))
    state["hash"] = ("0" if state["hash"][0] != "0" else "1") + state["hash"][1:]
    stored.update(WALLET, 5, orjson.dumps(state))
    at = position(signed, WALLET, 5)
    code, report = findings(tools)
    assert code == 1 and f"position {at}: wallet {ENTERPRISE} event 5" in problems(report)


def test_a_truncated_log_is_named(tools, signed):
    stored = StoredEvents(tools.database_url)
    for version in (5, 6, 7):
        stored.delete(WALLET, version)
    code, report = findings(tools)
    assert code == 1
    assert "the log was truncated" in problems(report) and "checkpoint 1 signed 11" in problems(report)
    assert f"position {position(signed, WALLET, 5)}: the log ends here" in problems(report)


def test_a_checkpoint_with_a_changed_root_is_refused(tools, signed):
    tables = Tables(tools.database_url)
    (root,), *_ = tables.run("SELECT root_hash FROM {checkpoints}")
    tables.run("UPDATE {checkpoints} SET root_hash = ?", ("0" * 64,))
    code, report = findings(tools)
    assert code == 1 and root != "0" * 64
    assert "signature does not verify with the public key: it was forged or changed" in problems(report)


def test_a_checkpoint_signed_with_another_key_is_refused(tools, signed, tmp_path):
    """A forger who re-signs with a key of their own: verify holds the checkpoint to the ledger's key."""
    forger = Ed25519PrivateKey.generate()
    (size, root, stamp), *_ = Tables(tools.database_url).run(
        "SELECT tree_size, root_hash, timestamp FROM {checkpoints}"
    )
    forged_id = key_id(raw_public(forger.public_key()))
    signature = forger.sign(checkpoint_message(size, root, stamp, forged_id)).hex()
    Tables(tools.database_url).run("UPDATE {checkpoints} SET key_id = ?, signature = ?", (forged_id, signature))
    code, report = findings(tools)
    assert code == 1 and f"names key {forged_id}, but the public key given is" in problems(report)
    # and a checkpoint of the real key is refused against the forger's
    (tmp_path / "forger.pem").write_bytes(public_pem(forger.public_key()))
    Tables(tools.database_url).run("DELETE FROM {checkpoints}")
    assert tools.run(checkpoint.main).code == 0
    code, report = findings(tools, "--public-key", str(tmp_path / "forger.pem"))
    assert code == 1 and "but the public key given is" in problems(report)


def test_without_the_public_key_the_key_stored_with_the_checkpoints_is_used_and_said(
    tools, signed, monkeypatch, tmp_path
):
    monkeypatch.setenv("KMO_LEDGER_CHECKPOINT_KEY_FILE", str(tmp_path / "elsewhere" / "none.pem"))
    code, report = findings(tools)
    assert code == 0 and report["tree"]["key"] == "stored"
    assert "(key stored with them)" in tools.run(verify.main).out
    Tables(tools.database_url).run("UPDATE {checkpoints} SET root_hash = ?", ("1" * 64,))
    code, report = findings(tools)
    assert code == 1 and "signature does not verify" in problems(report)


def test_a_checkpoint_deleted_from_between_two_is_found_though_the_next_is_relinked(tools, signed):
    """Each checkpoint signs the size and root of the one before it: whoever deletes
    checkpoint 2 and points checkpoint 3 at checkpoint 1 breaks 3's signature."""
    for day in ("2026-04-02", "2026-04-03"):
        with freeze_time(f"{day} 10:00:00"):
            Story(signed, enterprise_number_of(day))
        assert tools.run(checkpoint.main).code == 0
    tables = Tables(tools.database_url)
    (first_size, first_root), *_ = tables.run("SELECT tree_size, root_hash FROM {checkpoints} WHERE number = 1")
    tables.run("DELETE FROM {checkpoints} WHERE number = 2")
    tables.run(
        "UPDATE {checkpoints} SET previous_size = ?, previous_root = ? WHERE number = 3", (first_size, first_root)
    )
    code, report = findings(tools)
    assert code == 1
    assert "checkpoint 3 (tree size 13" in problems(report) and "signature does not verify" in problems(report)


def test_a_checkpoint_deleted_from_between_two_alike_is_found(tools, signed):
    """With no record between them, checkpoints 1 to 3 sign the same size and root:
    checkpoint 3 still names checkpoint 2 by its number, which it signs."""
    for _ in range(2):
        assert tools.run(checkpoint.main).code == 0
    assert findings(tools)[0] == 0
    Tables(tools.database_url).run("DELETE FROM {checkpoints} WHERE number = 2")
    code, report = findings(tools)
    assert code == 1 and "checkpoint 3 (tree size 11" in problems(report)
    assert "checkpoint 2 is gone (numbers run from 1 without a gap)" in problems(report)
    Tables(tools.database_url).run("UPDATE {checkpoints} SET number = 2 WHERE number = 3")  # renumbered: unsigned
    code, report = findings(tools)
    assert code == 1 and "signature does not verify" in problems(report)


def test_a_checkpoint_signed_before_checkpoints_named_the_one_before_still_verifies(tools, signed, tmp_path):
    """Checkpoints taken before 2026-12-07 signed their size, root, time and key only."""
    from ledger.audit.checkpoints import signing_key

    key = signing_key(tmp_path / "keys" / "checkpoint-key.pem")
    (size, root, stamp, signer), *_ = Tables(tools.database_url).run(
        "SELECT tree_size, root_hash, timestamp, key_id FROM {checkpoints}"
    )
    older = key.sign(checkpoint_message(size, root, stamp, signer)).hex()
    Tables(tools.database_url).run("UPDATE {checkpoints} SET signature = ?", (older,))
    code, report = findings(tools)
    assert code == 0, problems(report)
    served = json.loads(tools.run(checkpoint.main, "--json").out)  # the next one signs its link to it
    assert (served["previous_size"], served["previous_root"]) == (size, root)
    assert findings(tools)[0] == 0


def enterprise_number_of(day: str) -> str:
    return {"2026-04-02": "0417497106", "2026-04-03": "0000001186"}[day]


def test_each_checkpoint_names_the_one_before_and_is_consistent_with_it(tools, signed):
    with freeze_time("2026-04-02 10:00:00"):
        Story(signed, "0417497106")
    second = json.loads(tools.run(checkpoint.main, "--json").out)
    assert second["tree_size"] == 12
    rows = Tables(tools.database_url).run(
        "SELECT number, root_hash, previous_size, previous_root FROM {checkpoints} ORDER BY 1"
    )
    assert rows[1][2:] == (11, rows[0][1])
    assert findings(tools)[0] == 0
    Tables(tools.database_url).run("UPDATE {checkpoints} SET previous_size = 10 WHERE number = 2")
    code, report = findings(tools)
    assert code == 1 and "checkpoint 2 (tree size 12" in problems(report)
    assert "does not name checkpoint 1 as the one before it" in problems(report)


def test_verification_goes_on_from_the_last_checkpoint_verified(tools, signed):
    assert findings(tools)[0] == 0  # remembers checkpoint 1
    with freeze_time("2026-04-02 10:00:00"):
        Story(signed, "0417497106")
    assert tools.run(checkpoint.main).code == 0
    code, report = findings(tools, "--since-checkpoint")
    assert code == 0, problems(report)
    assert report["tree"]["from_position"] == 11 and report["tree"]["tree_size"] == 12
    assert report["wallets"] == 1  # only the wallet written since
    # a record deleted before the verified checkpoint is still found by counting
    StoredEvents(tools.database_url).delete(OTHER_WALLET, 2)
    code, report = findings(tools, "--since-checkpoint")
    assert code == 1 and "records were deleted or added before it" in problems(report)


def test_worker_processes_find_what_one_process_finds(tools, signed, monkeypatch):
    """Wallets checked in worker processes (as a large ledger is), while this process recomputes the tree."""
    from ledger.audit import ledger_verification

    StoredEvents(tools.database_url).delete(WALLET, 5)
    serial = findings(tools)
    monkeypatch.setattr(ledger_verification, "PARALLEL_FROM", 1)
    monkeypatch.setattr(ledger_verification, "CHUNK_WALLETS", 1)
    parallel = findings(tools)
    assert parallel == serial and parallel[0] == 1 and parallel[1]["wallets"] == 2
    assert any(p["sequence"] == 5 and "missing" in p["problem"] for p in parallel[1]["problems"])


def test_a_run_that_found_anything_is_not_remembered_as_verified(tools, signed):
    """A wallet's problem found once is found again: --since-checkpoint starts from a run where all held."""
    stored = StoredEvents(tools.database_url)
    state = stored.state(WALLET, 4)
    stored.update(WALLET, 4, state.replace(b'"amount":"7000.00"', b'"amount":"7100.00"'))  # the chain sees it
    assert findings(tools)[0] == 1
    code, report = findings(tools, "--since-checkpoint")
    assert code == 1 and report["tree"]["from_position"] == 0 and report["wallets"] == 2


@pytest.mark.parametrize("batch", [1, 3, 4])
def test_the_log_read_in_small_batches_finds_what_one_batch_finds(tools, signed, monkeypatch, batch):
    """The tree is recomputed a batch of records at a time: batches that end before, at or after a
    checkpoint's size name the same first difference and the same unmatched checkpoints."""
    from ledger.audit import tree_verification

    with freeze_time("2026-04-02 10:00:00"):
        Story(signed, "0417497106")
    assert tools.run(checkpoint.main).code == 0  # checkpoints at 11 and 12 records
    stored = StoredEvents(tools.database_url)
    third, fourth = stored.state(WALLET, 3), stored.state(WALLET, 4)
    stored.update(WALLET, 3, fourth)
    stored.update(WALLET, 4, third)
    whole = findings(tools)
    monkeypatch.setattr(tree_verification, "READ_BATCH", batch)
    assert findings(tools) == whole
    assert whole[0] == 1 and f"first difference at position {position(signed, WALLET, 3)}" in problems(whole[1])
    assert "checkpoint 2 (tree size 12" in problems(whole[1])


@pytest.mark.parametrize("batch", [1, 4])
def test_small_batches_remember_the_right_edge_at_the_latest_checkpoint(tools, signed, monkeypatch, batch):
    """A clean run read in batches keeps the tree's edge at the checkpoint, so the next run goes on from it."""
    from ledger.audit import tree_verification

    monkeypatch.setattr(tree_verification, "READ_BATCH", batch)
    assert findings(tools)[0] == 0
    with freeze_time("2026-04-02 10:00:00"):
        Story(signed, "0417497106")
    assert tools.run(checkpoint.main).code == 0
    code, report = findings(tools, "--since-checkpoint")
    assert code == 0, problems(report)
    assert report["tree"]["from_position"] == 11 and report["wallets"] == 1


def test_since_checkpoint_with_none_verified_yet_checks_everything(tools, signed, monkeypatch):
    """Nothing to go on from: the whole log from position 0, every wallet and every record, whatever the batches."""
    from ledger.audit import tree_verification

    monkeypatch.setattr(tree_verification, "READ_BATCH", 4)
    code, report = findings(tools, "--since-checkpoint")
    assert code == 0, problems(report)
    assert report["tree"]["from_position"] == 0 and report["wallets"] == 2 and report["records"]["checked"]


@pytest.mark.parametrize("database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_notification_ids_with_a_gap_are_no_finding(tools, signed):
    """PostgreSQL's sequence leaves a gap where an insert was rolled back (SQLite's
    row ids part only where a row was deleted): the tree counts records, not ids,
    whether it is built, verified whole or from a checkpoint."""
    assert findings(tools)[0] == 0  # remembers checkpoint 1
    tables = Tables(tools.database_url)
    tables.run(
        "SELECT setval(pg_get_serial_sequence('{events}', 'notification_id'), "
        "(SELECT max(notification_id) FROM {events}) + 5)"
    )
    with freeze_time("2026-04-02 10:00:00"):
        Story(signed, "0417497106")
    assert tables.run("SELECT max(notification_id) - count(*) FROM {events}") == [(5,)]
    assert tools.run(checkpoint.main).code == 0
    code, report = findings(tools, "--since-checkpoint")
    assert code == 0, problems(report)
    assert report["tree"]["from_position"] == 11 and report["tree"]["tree_size"] == 12 and report["wallets"] == 1
    code, report = findings(tools)
    assert code == 0, problems(report)
    assert report["tree"]["tree_size"] == 12


def test_a_checkpoint_kept_outside_the_store_finds_records_deleted_with_every_stored_trace(tools, signed, tmp_path):
    """Whoever can write to the store deletes the newest event, the tree's rows and every stored
    checkpoint: the store alone then agrees with itself; the checkpoint the auditor kept does not."""
    tables = Tables(tools.database_url)
    columns = ("tree_size", "root_hash", "timestamp", "key_id", "signature", "number", "previous_size", "previous_root")
    (row,) = tables.run(f"SELECT {', '.join(columns)} FROM {{checkpoints}}")
    kept = tmp_path / "latest.json"
    kept.write_text(json.dumps(dict(zip(columns, row, strict=True))))  # as GET /v1/checkpoints/latest served it
    key = tmp_path / "keys" / "checkpoint-key.pem.pub"
    StoredEvents(tools.database_url).delete(WALLET, 7)
    for table in ("{checkpoints}", "kmo_ledger_tree_leaves", "kmo_ledger_tree_nodes", "kmo_ledger_tree_verified"):
        qualified = table if table.startswith("{") else table_in(tools.database_url, table)
        tables.run(f"DELETE FROM {qualified}")
    assert findings(tools)[0] == 0  # nothing in the store says anything is missing
    code, report = findings(tools, "--checkpoint", str(kept), "--public-key", str(key))
    assert code == 1 and "the log ends after 10 records, but checkpoint kept signed 11" in problems(report)
    forged = json.loads(kept.read_text()) | {"root_hash": "0" * 64}
    kept.write_text(json.dumps(forged))
    code, report = findings(tools, "--checkpoint", str(kept), "--public-key", str(key))
    assert code == 1 and "the checkpoint kept of size 11: the checkpoint's signature does not verify" in problems(
        report
    )


def test_a_kept_checkpoint_needs_a_key_to_check_it_with_and_a_file_that_is_one(tools, signed, tmp_path, monkeypatch):
    monkeypatch.setenv("KMO_LEDGER_CHECKPOINT_KEY_FILE", str(tmp_path / "elsewhere" / "none.pem"))
    kept = tmp_path / "latest.json"
    kept.write_text(json.dumps({"tree_size": 11}))
    usage = tools.run(verify.main, "--checkpoint", str(kept))
    assert usage.code == 2 and usage.err.count("\n") == 1 and "--public-key" in usage.err
    kept.write_text("[1, 2]")
    key = tmp_path / "keys" / "checkpoint-key.pem.pub"
    usage = tools.run(verify.main, "--checkpoint", str(kept), "--public-key", str(key))
    assert usage.code == 2 and usage.err.count("\n") == 1 and "not a checkpoint" in usage.err
    assert tools.run(verify.main, "--checkpoint", str(kept), "--since-checkpoint").code == 2


def table_in(url: str, table: str) -> str:
    if url.startswith("sqlite"):
        return table
    schema = dict(pair.split("=", 1) for pair in urlsplit(url).query.split("&") if pair)["schema"]
    return f"{schema}.{table}"
