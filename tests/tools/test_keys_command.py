"""``kmo-ledger keys add | list | revoke``: a new key's secret is printed once
and the keys file keeps only its SHA-256; nothing ever prints a secret; the
file stays owner-only and is never left half written or written over when
broken."""

from __future__ import annotations

import hashlib
import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.keys import add_key, list_keys
from api.settings import key_id
from scripts import cli, keys
from tests.api.conftest import KEYS, key_id_of, write_keys
from tests.conftest import TRAINER
from tests.tools.helpers import Outcome


@pytest.fixture
def keys_file(tmp_path: Path, monkeypatch) -> Path:
    path = write_keys(tmp_path / "api-keys.json")
    monkeypatch.setenv("KMO_LEDGER_API_KEYS_FILE", str(path))
    return path


@pytest.fixture
def run(capsys):
    def run(*args: str) -> Outcome:
        capsys.readouterr()
        code = keys.main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def secret_of(added: Outcome) -> str:
    (line,) = [line for line in added.out.splitlines() if line.startswith("secret: ")]
    return line.removeprefix("secret: ")


def test_keys_add_prints_the_secret_once_and_the_file_keeps_only_its_digest(keys_file: Path, run):
    added = run("add", "--role", "back-office", "--name", "Payments service")
    assert added.code == 0, added.err
    secret = secret_of(added)
    assert len(secret) >= 32 and f"added key {key_id(secret)} (back-office, Payments service)" in added.out

    stored = keys_file.read_text()
    assert secret not in stored
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert json.loads(stored)[f"sha256:{digest}"] == {"role": "back-office", "name": "Payments service"}
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert [p.name for p in keys_file.parent.iterdir()] == [keys_file.name]  # no temporary file left behind

    for listed in (run("list"), run("list", "--json")):
        assert listed.code == 0 and key_id(secret) in listed.out
        assert secret not in listed.out + listed.err


def test_keys_list_shows_each_key_of_a_file_in_api_md_form_and_never_its_secret(keys_file: Path, run):
    listed = run("list", "--json")
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)["keys"]
    assert [(row["key_id"], row["role"], row["provider"], row["stored"]) for row in rows] == [
        (key_id_of("back-office"), "back-office", None, "plaintext"),
        (key_id_of("auditor"), "auditor", None, "plaintext"),
        (key_id_of("reconciler"), "reconciler", None, "plaintext"),
        (key_id_of("provider"), "provider", TRAINER, "plaintext"),
        (key_id_of("other-provider"), "provider", "DV.O999999", "plaintext"),
    ]
    shown = run("list")
    assert key_id_of("auditor") in shown.out
    for outcome in (listed, shown):
        assert not any(secret in outcome.out + outcome.err for secret in KEYS.values())


def test_keys_add_keeps_the_entries_already_in_the_file_as_they_are(keys_file: Path, run):
    before = json.loads(keys_file.read_text())
    assert run("add", "--role", "auditor", "--name", "Court of Audit").code == 0
    after = json.loads(keys_file.read_text())
    assert {entry: fields for entry, fields in after.items() if entry in before} == before
    assert len(after) == len(before) + 1


def test_keys_revoke_removes_that_key_only(keys_file: Path, run):
    revoked = run("revoke", key_id_of("auditor"))
    assert revoked.code == 0, revoked.err
    assert f"revoked key {key_id_of('auditor')} (auditor)" in revoked.out
    remaining = json.loads(keys_file.read_text())
    assert KEYS["auditor"] not in remaining and len(remaining) == len(KEYS) - 1

    added = run("add", "--role", "reconciler", "--name", "Bank statements", "--json")
    new_id = json.loads(added.out)["key_id"]
    assert run("revoke", new_id.upper()).code == 0  # as someone might type it
    assert len(json.loads(keys_file.read_text())) == len(KEYS) - 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("revoke", "000000000000"), "no key with id 000000000000 in "),
        (("revoke", "03b8129837"), "'03b8129837' is not a key id (12 hex digits, as keys list shows)"),
        (("add", "--role", "provider", "--name", "Trainer"), "a provider key names its registration number"),
        (("add", "--role", "auditor", "--name", "A", "--provider", TRAINER), "not an auditor key"),
        (("add", "--role", "provider", "--name", "T", "--provider", "DV.0207084"), "has a zero after 'DV.'"),
        (("add", "--role", "auditor", "--name", " "), "name: must not be blank"),
        (("add", "--role", "janitor", "--name", "J"), "invalid choice: 'janitor'"),
        (("add", "--role", "auditor"), "the following arguments are required: --name"),
        (("forget",), "invalid choice: 'forget'"),
        ((), "the following arguments are required"),
    ],
)
def test_bad_usage_is_one_line_exit_2_and_leaves_the_file_as_it_was(keys_file: Path, run, args, reason):
    before = keys_file.read_bytes()
    outcome = run(*args)
    assert (outcome.code, outcome.out) == (2, "")
    assert outcome.err.startswith("kmo-ledger keys: ") and outcome.err.count("\n") == 1 and reason in outcome.err
    assert keys_file.read_bytes() == before


def test_a_broken_keys_file_is_named_and_never_written_over(keys_file: Path, run):
    keys_file.write_text('{"half a key file')
    for args in (("add", "--role", "auditor", "--name", "A"), ("list",), ("revoke", key_id_of("auditor"))):
        outcome = run(*args)
        assert outcome.code == 2 and "cannot be read as JSON" in outcome.err and outcome.err.count("\n") == 1
        assert keys_file.read_text() == '{"half a key file'


def test_a_provider_key_is_stored_with_the_registration_number_in_canonical_form(keys_file: Path, run):
    added = run("add", "--role", "provider", "--name", "Trainer", "--provider", " dv.o207084 ", "--json")
    assert added.code == 0, added.err
    shown = json.loads(added.out)
    assert (shown["role"], shown["provider"], shown["stored"]) == ("provider", TRAINER, "sha256")
    digest = hashlib.sha256(shown["secret"].encode()).hexdigest()
    assert json.loads(keys_file.read_text())[f"sha256:{digest}"]["provider"] == TRAINER


def test_without_a_keys_file_variable_keys_add_makes_the_default_file_owner_only(tmp_path, monkeypatch, run):
    monkeypatch.delenv("KMO_LEDGER_API_KEYS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run("list").err.startswith("kmo-ledger keys: API keys file var/api-keys.json does not exist")
    assert run("add", "--role", "back-office", "--name", "First").code == 0
    path = tmp_path / "var" / "api-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [entry.name for entry in list_keys(path)] == ["First"]


def test_keys_added_at_the_same_time_are_all_kept(keys_file: Path):
    with ThreadPoolExecutor(max_workers=8) as pool:
        added = list(pool.map(lambda n: add_key(keys_file, "auditor", f"auditor {n}")[1], range(16)))
    assert {entry.key_id for entry in added} <= {entry.key_id for entry in list_keys(keys_file)}


def test_kmo_ledger_keys_is_a_command_of_the_console_script(keys_file: Path, capsys):
    assert cli.main(["keys", "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["keys"]) == len(KEYS)
