"""``kmo-ledger keys add --role ROLE --name NAME [--provider DV.X] | list |
revoke KEY_ID``: the API keys in the file ``serve`` uses
(``KMO_LEDGER_API_KEYS_FILE``, or ``./var/api-keys.json``).

``add`` prints a new key's secret once and stores only its SHA-256; running
servers let it in, and refuse a revoked key, within seconds, without a
restart. ``list`` never shows a secret.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from scripts.common import EXIT_OK, ArgumentParser, UsageError, console, print_json, run, table

if TYPE_CHECKING:
    from api.keys import KeyEntry

PROG = "kmo-ledger keys"
_KEY_ID = re.compile(r"[0-9a-f]{12}")


def _arguments() -> ArgumentParser:
    from api.settings import ROLES

    top = ArgumentParser(prog=PROG, description="Add, list and revoke the API's keys.")
    actions = top.add_subparsers(dest="action", required=True, metavar="{add,list,revoke}")
    add = actions.add_parser("add", help="make a key; its secret is printed once and stored as a digest")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--name", required=True, help="the service or person holding the key (recorded on events)")
    add.add_argument("--provider", help="a provider key's registration number (DV.X)")
    actions.add_parser("list", help="every key: id, role, name, provider (never a secret)")
    revoke = actions.add_parser("revoke", help="remove a key; servers refuse it within seconds")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, as keys list shows it")
    for action in actions.choices.values():
        action.add_argument("--json", action="store_true", help="machine-readable output on standard output")
    return top


def _keys_file() -> Path:
    from api.settings import Settings

    try:
        return Settings().keys_file()
    except ValidationError as error:
        first = error.errors()[0]
        where = "_".join(str(part) for part in first["loc"]).upper()
        raise UsageError(f"KMO_LEDGER_{where}: {first['msg']}") from None


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        from api import keys
        from api.settings import SettingsError

        args = _arguments().parse_args(sys.argv[1:] if argv is None else argv)
        path = _keys_file()
        try:
            if args.action == "add":
                if args.role == "provider" and not args.provider:
                    raise UsageError("a provider key names its registration number: --provider DV.X")
                secret, entry = keys.add_key(path, args.role, args.name, args.provider)
                _show_added(path, secret, entry, args.json)
            elif args.action == "list":
                _show_list(path, keys.list_keys(path), args.json)
            else:
                key_id = args.key_id.strip().lower()
                if not _KEY_ID.fullmatch(key_id):
                    raise UsageError(f"{args.key_id!r} is not a key id (12 hex digits, as keys list shows)")
                _show_revoked(path, keys.revoke_key(path, key_id), args.json)
        except SettingsError as error:
            raise UsageError(str(error)) from None
        return EXIT_OK

    return run(PROG, body)


def _who(entry: KeyEntry) -> str:
    return ", ".join(part for part in (entry.role, entry.name, entry.provider) if part)


def _show_added(path: Path, secret: str, entry: KeyEntry, as_json: bool) -> None:
    if as_json:
        print_json({"keys_file": str(path.resolve()), "secret": secret, **asdict(entry)})
        return
    out = console()
    out.print(f"added key {entry.key_id} ({_who(entry)}) to {path.resolve()}")
    out.print(f"secret: {secret}")
    out.print("This is the only time the secret is shown: the file keeps its SHA-256 only.")


def _show_list(path: Path, entries: list[KeyEntry], as_json: bool) -> None:
    if as_json:
        print_json({"keys_file": str(path.resolve()), "keys": [asdict(entry) for entry in entries]})
        return
    if not entries:
        console().print(f"no API key in {path.resolve()}")
        return
    rows = [(e.key_id, e.role, e.name or "", e.provider or "", e.stored) for e in entries]
    console().print(table(f"API keys in {path.resolve()}", ("key id", "role", "name", "provider", "stored as"), rows))


def _show_revoked(path: Path, entry: KeyEntry, as_json: bool) -> None:
    if as_json:
        print_json({"keys_file": str(path.resolve()), "revoked": asdict(entry)})
        return
    console().print(f"revoked key {entry.key_id} ({_who(entry)}) in {path.resolve()}: servers refuse it within seconds")


if __name__ == "__main__":
    sys.exit(main())
