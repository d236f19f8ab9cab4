"""``kmo-ledger``: one console script; each subcommand lives in its own module
with ``main(argv=None) -> int`` (0 success, 1 a problem found, 2 bad usage)."""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "serve": ("scripts.serve", "run the HTTP API (uvicorn)"),
    "replay": ("scripts.replay", "a wallet's timeline and its state as of a date"),
    "verify": ("scripts.verify", "check hash chains, invariants and projections"),
    "rebuild-projections": ("scripts.rebuild_projections", "drop and rebuild the read models"),
    "reconcile": ("scripts.reconcile", "match a bank statement (camt.053 or CSV) against the ledger"),
    "export": ("scripts.export", "write sealed yearly archives with a standalone verifier"),
    "purge-audit-trail": ("scripts.purge_audit_trail", "purge exported audit-trail rows past retention"),
    "run-deadlines": ("scripts.run_deadlines", "apply every deadline passed"),
    "bench": ("scripts.bench", "measure speed targets as ratios"),
    "checkpoint": ("scripts.checkpoint", "take a signed checkpoint of the ledger-wide Merkle tree now"),
    "check-proof": ("scripts.check_proof", "check an event's inclusion proof and a signed checkpoint, offline"),
    "notify": ("scripts.notify", "derive and deliver the notices: e-mail and signed webhooks"),
    "keys": ("scripts.keys", "add, list and revoke API keys (add shows a new secret once)"),
}


def usage() -> str:
    lines = ["usage: kmo-ledger COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<22}{about}" for name, (_module, about) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"kmo-ledger: unknown command {name!r} (see kmo-ledger --help)", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
