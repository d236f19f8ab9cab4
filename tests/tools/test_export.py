"""``kmo-ledger export`` and the standalone ``archive_verifier.py``: a sealed
yearly archive that anyone can check with a bare Python, and that fails on a
single changed byte."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
from datetime import date
from pathlib import Path

import orjson
import pytest
from freezegun import freeze_time

from ledger.audit import merkle
from ledger.audit.checkpoints import checkpoint_message, linked_message, signed_messages
from ledger.domain import commands as c
from ledger.domain.events import chain_hash
from scripts import archive_verifier, checkpoint, export, verify
from tests.conftest import BACK_OFFICE, OTHER_ENTERPRISE, sme
from tests.scenarios.helpers import Story
from tests.tools.helpers import StoredEvents, Tools


def system_python() -> str:
    """The interpreter outside the virtual environment: no orjson, no ledger."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", getattr(sys, "_base_executable", "")):
        if candidate and Path(candidate).exists():
            return candidate
    return sys.executable


def run_verifier(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [system_python(), "-I", str(directory / "archive_verifier.py"), str(directory)],
        capture_output=True,
        text=True,
        cwd=directory.parent,
        env={"PATH": os.defpath},
        timeout=120,
    )


@pytest.fixture
def tools(monkeypatch, capsys, database_url):
    return Tools(monkeypatch, capsys, database_url)


@pytest.fixture
def two_years(ledger):
    """Events in 2019 and 2020, one wallet with a non-ASCII name, and a lapse
    dated 2019-12-31 recorded after an event of 2020 (a late deadline run)."""
    with freeze_time("2019-11-04 09:00:00"):
        story = Story(ledger)
        funded = story.submit(date(2019, 11, 18))
        ledger.open_wallet(
            c.OpenWallet(enterprise_number=OTHER_ENTERPRISE, name="Brouwerij Œuvre — café Ærø ☕ 😀", sme=sme()),
            BACK_OFFICE,
        )
    with freeze_time("2019-11-06 09:00:00"):
        story.fund(funded, date(2019, 11, 6))
    with freeze_time("2019-12-16 09:00:00"):
        story.submit(date(2019, 12, 30))  # the provider must answer by 2019-12-30
    with freeze_time("2020-01-02 09:00:00"):
        story.submit(date(2020, 1, 20))
    with freeze_time("2020-01-03 09:00:00"):
        assert [r.deadline for r in ledger.run_deadlines()] == [date(2019, 12, 30)]
    return story


def exported(tools: Tools, directory: Path) -> dict:
    outcome = tools.run(export.main, "--out", str(directory), "--json")
    assert outcome.code == 0, outcome.err
    return json.loads(outcome.out)


def test_the_archive_holds_one_file_per_business_year_and_verifies_with_a_bare_python(tools, two_years, tmp_path):
    archive = tmp_path / "archive"
    summary = exported(tools, archive)
    assert sorted(p.name for p in archive.iterdir()) == [
        "archive_verifier.py",
        "events-2019.jsonl",
        "events-2020.jsonl",
        "manifest.json",
        "merkle.py",
        "tree-leaves.jsonl",
    ]
    assert {year: entry["events"] for year, entry in summary["years"].items()} == {"2019": 8, "2020": 1}
    manifest = json.loads((archive / "manifest.json").read_text())
    lines = [json.loads(line) for line in (archive / "events-2019.jsonl").read_text(encoding="utf-8").splitlines()]
    lapse = lines[-1]
    assert (lapse["type"], lapse["business_date"], lapse["sequence"]) == ("ApplicationLapsed", "2019-12-31", 8)
    assert set(lines[0]) == {
        "enterprise_number",
        "wallet_id",
        "sequence",
        "type",
        "business_date",
        "recorded_at",
        "state",
    }
    heads = manifest["years"]["2019"]["wallets"][lapse["wallet_id"]]
    assert (heads["last_sequence"], heads["head"]) == (8, lapse["state"]["hash"])
    assert "café Ærø ☕ 😀" in (archive / "events-2019.jsonl").read_text(encoding="utf-8")
    result = run_verifier(archive)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 event(s) in 2 file(s): OK" in result.stdout


def test_one_changed_byte_fails_the_standalone_verifier(tools, two_years, tmp_path):
    archive = tmp_path / "archive"
    exported(tools, archive)
    path = archive / "events-2019.jsonl"
    content = path.read_bytes()
    at = content.index(b'"amount":"6000.00"') + len(b'"amount":"6')
    path.write_bytes(content[:at] + b"1" + content[at + 1 :])  # 6000.00 becomes 6100.00
    result = run_verifier(archive)
    assert result.returncode == 1
    assert "events-2019.jsonl: SHA-256" in result.stdout
    assert "wallet 0403170701" in result.stdout
    assert "event 4 (OwnShareDeposited): its hash does not match" in result.stdout


def test_a_removed_line_is_named_by_the_verifier(tools, two_years, tmp_path):
    archive = tmp_path / "archive"
    exported(tools, archive)
    path = archive / "events-2019.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    wallet_five = [i for i, line in enumerate(lines) if b'"sequence":5,' in line and b'"0403170701"' in line]
    del lines[wallet_five[0]]
    path.write_bytes(b"".join(lines))
    result = run_verifier(archive)
    assert result.returncode == 1
    assert "event 5 of the wallet is missing" in result.stdout


def test_export_removes_nothing_and_refuses_to_overwrite_an_archive(tools, two_years, tmp_path):
    before = StoredEvents(tools.database_url).count()
    exported(tools, tmp_path / "archive")
    assert StoredEvents(tools.database_url).count() == before
    assert tools.run(verify.main).code == 0
    again = tools.run(export.main, "--out", str(tmp_path / "archive"))
    assert again.code == 2 and "holds an archive already" in again.err


def test_the_human_summary_says_how_to_verify(tools, two_years, tmp_path):
    outcome = tools.run(export.main, "--out", str(tmp_path / "archive"))
    assert outcome.code == 0
    assert "events-2019.jsonl" in outcome.out and "archive_verifier.py" in outcome.out


def test_the_verifier_recomputes_the_ledgers_hash_of_every_exported_event(tools, two_years, tmp_path):
    archive = tmp_path / "archive"
    exported(tools, archive)
    for name in ("events-2019.jsonl", "events-2020.jsonl"):
        for line in (archive / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            content = {k: v for k, v in record["state"].items() if k != "hash"}
            content.update(
                originator_id=record["wallet_id"], originator_version=record["sequence"], type=record["type"]
            )
            assert chain_hash(content) == record["state"]["hash"]
            assert (
                archive_verifier.event_hash(record["wallet_id"], record["sequence"], record["type"], record["state"])
                == record["state"]["hash"]
            )


# ---------------------------------------------------------------------- files


def test_every_export_file_and_the_folder_it_creates_are_owner_only(tools, two_years, tmp_path):
    archive = tmp_path / "new" / "archive"
    exported(tools, archive)
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in archive.iterdir()} == {
        name: "0o600"
        for name in (
            "archive_verifier.py",
            "events-2019.jsonl",
            "events-2020.jsonl",
            "manifest.json",
            "merkle.py",
            "tree-leaves.jsonl",
        )
    }
    assert [oct(folder.stat().st_mode & 0o777) for folder in (archive, archive.parent)] == ["0o700", "0o700"]


def refused(tools: Tools, archive: Path, name: str) -> None:
    """The export stopped with one line naming ``name`` and left none of its files."""
    outcome = tools.run(export.main, "--out", str(archive))
    assert outcome.code == 2
    assert outcome.err.count("\n") == 1 and str(archive / name) in outcome.err, outcome.err
    assert [path.name for path in archive.iterdir()] == [name]


@pytest.mark.parametrize(
    "name",
    [
        "events-2019.jsonl.partial",
        "events-2020.jsonl.partial",
        "events-2019.jsonl",
        "archive_verifier.py",
        "manifest.json.partial",
    ],
)
def test_a_link_planted_in_the_export_folder_is_neither_followed_nor_replaced(tools, two_years, tmp_path, name):
    target = tmp_path / "outside.txt"
    target.write_bytes(b"not the export's\n")
    target.chmod(0o644)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / name).symlink_to(target)
    refused(tools, archive, name)
    assert (archive / name).is_symlink() and (archive / name).readlink() == target
    assert (target.read_bytes(), target.stat().st_mode & 0o777) == (b"not the export's\n", 0o644)


@pytest.mark.parametrize("name", ["events-2019.jsonl.partial", "manifest.json"])
def test_a_link_to_nothing_in_the_export_folder_creates_nothing_outside_it(tools, two_years, tmp_path, name):
    target = tmp_path / "elsewhere" / "planted.txt"
    target.parent.mkdir()
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / name).symlink_to(target)
    refused(tools, archive, name)
    assert (archive / name).is_symlink() and not target.exists()


def test_a_file_already_in_the_export_folder_is_not_replaced(tools, two_years, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "events-2020.jsonl").write_bytes(b"someone else's\n")
    refused(tools, archive, "events-2020.jsonl")
    assert (archive / "events-2020.jsonl").read_bytes() == b"someone else's\n"


# ---------------------------------------------------------------------- canonical form


def _random_float(rng: random.Random) -> float:
    while True:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            return value


TRICKY_FLOATS = [
    0.0,
    -0.0,
    1.0,
    0.1,
    1e-5,
    2.5e-5,
    1e-4,
    1e-7,
    1.2345e-6,
    1e15,
    1e16,
    1.5e16,
    1e22,
    1e23,
    123456789.125,
    5e-324,
    1.7976931348623157e308,
    -2.5e-5,
    9007199254740993.0,
    3.14159,
    1e100,
    1e-100,
]
TRICKY_TEXT = [
    "",
    "café",
    "Œuvre — Ærø",
    "☕",
    "😀",
    "ｚ",
    "€",
    "\u2028\u2029",
    "\x00\x1f\x7f",
    'quote " back \\ slash',
    "\n\t\r\b\f",
]


def test_canonical_json_equals_orjson_with_sorted_keys():
    rng = random.Random(20260302)
    values = TRICKY_FLOATS + [_random_float(rng) for _ in range(20000)] + [rng.uniform(-1e6, 1e6) for _ in range(5000)]
    for value in values:
        assert archive_verifier.canonical(value).encode() == orjson.dumps(value), repr(value)
    for text in TRICKY_TEXT + [chr(cp) for cp in range(0, 0x3000)] + ["\U0001f600\uffff\ue000"]:
        assert archive_verifier.canonical(text).encode() == orjson.dumps(text), repr(text)
    nested = {
        "z": [1, -2, 3.5, None, True, False, {"é": "ü", "a": [], "ｚ": {}, "😀": 1e-7}],
        "A": "x",
        "a\u00e9": 2**62,
        "": 0.1,
        "\ue000": 1,
        "\U0001f600": 2,
    }
    assert archive_verifier.canonical(nested).encode() == orjson.dumps(nested, option=orjson.OPT_SORT_KEYS)
    assert archive_verifier.chain_hash(nested) == chain_hash(nested)
    assert archive_verifier.chain_hash({"b": "é", "a": 1}, has_float=False) == chain_hash({"b": "é", "a": 1})


def test_a_float_in_a_stored_state_is_hashed_exactly(tmp_path):
    state = {"amount": "1.00", "ratio": 2.5e-05, "tiny": 1e-07, "huge": 1e16, "name": "Œ"}
    line = json.dumps(state)
    parsed = archive_verifier._Line(line)
    assert parsed.has_float
    assert archive_verifier.chain_hash(parsed.value, parsed.has_float) == chain_hash(orjson.loads(line))


def test_the_verifier_refuses_a_folder_that_is_no_archive(tmp_path):
    result = subprocess.run(
        [system_python(), "-I", str(Path(archive_verifier.__file__)), str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2 and "manifest.json not found" in result.stderr
    shutil.rmtree(tmp_path)


# ------------------------------------------------------------------ the ledger-wide tree in the archive


@pytest.fixture
def checkpointed(tools, two_years, tmp_path, monkeypatch) -> Path:
    """The two years with a signed checkpoint of all of it, exported: the archive's folder."""
    monkeypatch.setenv("KMO_LEDGER_CHECKPOINT_KEY_FILE", str(tmp_path / "keys" / "checkpoint-key.pem"))
    assert tools.run(checkpoint.main).code == 0
    archive = tmp_path / "archive"
    exported(tools, archive)
    return archive


def run_verifier_with(python: list[str], directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*python, str(directory / "archive_verifier.py"), str(directory)],
        capture_output=True,
        text=True,
        env={"PATH": os.defpath},
        timeout=120,
    )


WITH_CRYPTOGRAPHY = [sys.executable, "-I"]  # the virtual environment: cryptography importable
BARE = [sys.executable, "-I", "-S"]  # no site-packages: the standard library alone


def test_the_archive_carries_its_checkpoints_key_and_the_ledgers_own_merkle_code(checkpointed):
    archive = checkpointed
    tree = json.loads((archive / "manifest.json").read_text())["tree"]
    assert tree["leaves"]["count"] == 12 and len(tree["checkpoints"]) == 1  # 9 events and 3 payment-reference claims
    assert (
        tree["checkpoints"][0]["tree_size"] == 12
        and tree["public_keys"][0]["key_id"] == tree["checkpoints"][0]["key_id"]
    )
    assert (archive / "merkle.py").read_bytes() == Path(merkle.__file__).read_bytes()  # one source of truth
    result = run_verifier_with(WITH_CRYPTOGRAPHY, archive)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOTE Merkle tree: 12 leaves, 1 checkpoint root(s) recomputed" in result.stdout
    assert "NOTE signatures checked: 1" in result.stdout


def test_without_cryptography_the_verifier_says_it_did_not_check_signatures(checkpointed):
    archive = checkpointed
    result = run_verifier_with(BARE, archive)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 checkpoint root(s) recomputed" in result.stdout
    assert "signatures NOT checked: the cryptography package cannot be imported" in result.stdout


def test_a_forged_checkpoint_in_the_archive_is_refused(checkpointed):
    archive = checkpointed
    manifest = json.loads((archive / "manifest.json").read_text())
    manifest["tree"]["checkpoints"][0]["root_hash"] = "0" * 64
    (archive / "manifest.json").write_text(json.dumps(manifest))
    for python in (WITH_CRYPTOGRAPHY, BARE):
        result = run_verifier_with(python, archive)
        assert result.returncode == 1 and "the leaves give" in result.stdout
    assert "its signature does not verify" in run_verifier_with(WITH_CRYPTOGRAPHY, archive).stdout


def test_a_leaf_removed_from_the_archive_is_found(checkpointed):
    archive = checkpointed
    path = archive / "tree-leaves.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    result = run_verifier_with(BARE, archive)
    assert result.returncode == 1
    assert "beyond the 11 leaves" in result.stdout and "differs from the manifest's" in result.stdout


def test_the_verifier_signs_off_the_same_message_as_the_ledger():
    row = {"tree_size": 7, "root_hash": "ab" * 32, "timestamp": "2026-01-01T00:00:00.000000Z", "key_id": "cd" * 32}
    assert archive_verifier.checkpoint_message(row) == checkpoint_message(7, "ab" * 32, row["timestamp"], "cd" * 32)
    for number, previous in [(1, (None, None)), (2, (5, "ef" * 32))]:
        linked = row | {"number": number, "previous_size": previous[0], "previous_root": previous[1]}
        assert archive_verifier.signed_messages(linked) == signed_messages(linked)
        signed = linked_message(number, 7, "ab" * 32, row["timestamp"], "cd" * 32, *previous)
        assert signed_messages(linked)[0] == signed
    assert archive_verifier.signed_messages(row) == signed_messages(row) == [archive_verifier.checkpoint_message(row)]


@pytest.mark.parametrize("left_out", [0, 1])
def test_a_checkpoint_left_out_of_the_archive_is_found(tools, two_years, tmp_path, monkeypatch, left_out):
    """Each checkpoint signs its number and the one before it: the archive's list cannot
    lose one unseen, the first or one from between two alike (no record between them)."""
    monkeypatch.setenv("KMO_LEDGER_CHECKPOINT_KEY_FILE", str(tmp_path / "keys" / "checkpoint-key.pem"))
    for _ in range(3):
        assert tools.run(checkpoint.main).code == 0
    archive = tmp_path / "archive"
    exported(tools, archive)
    assert run_verifier_with(WITH_CRYPTOGRAPHY, archive).returncode == 0
    manifest = json.loads((archive / "manifest.json").read_text())
    assert manifest["format"] == "kmo-ledger-archive/2"
    assert [c["number"] for c in manifest["tree"]["checkpoints"]] == [1, 2, 3]
    del manifest["tree"]["checkpoints"][left_out]
    (archive / "manifest.json").write_text(json.dumps(manifest))
    for python in (WITH_CRYPTOGRAPHY, BARE):
        result = run_verifier_with(python, archive)
        assert result.returncode == 1 and f"checkpoint {left_out + 1} is missing" in result.stdout, result.stdout


def test_the_checkouts_verifier_never_runs_code_from_the_archive_it_checks(checkpointed, tmp_path):
    archive = checkpointed
    planted = tmp_path / "ran"
    (archive / "merkle.py").write_text(f"open({str(planted)!r}, 'w').write('forged')\n")  # a forged archive's code
    (archive / "archive_verifier.py").unlink()  # checked with the checkout's verifier instead of the archive's own
    verifier = Path(archive_verifier.__file__)
    result = subprocess.run(
        [sys.executable, "-I", str(verifier), str(archive)], capture_output=True, text=True, timeout=120
    )
    assert not planted.exists(), "the verifier ran the archive's merkle.py"
    assert "1 checkpoint root(s) recomputed" in result.stdout, result.stdout + result.stderr
