"""``kmo-ledger check-proof``: prove that one event is in the ledger, with no
database. Give it what the API served:

- ``--event FILE``: the event (one object of ``GET /v1/wallets/{en}/events``,
  or that whole answer with ``--sequence``);
- ``--enterprise EN``: the wallet's enterprise number;
- ``--proof FILE``: ``GET /v1/wallets/{en}/events/{sequence}/proof``;
- ``--checkpoint FILE``: ``GET /v1/checkpoints/latest``;
- ``--public-key FILE``: ``GET /v1/checkpoints/public-key`` or its PEM.

The event's hash is recomputed from its content, its leaf and audit path lead
to the checkpoint's root, and the checkpoint's signature is the key's. Exit 0
proven, 1 not proven (why, in one line), 2 bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scripts import common as cli

PROG = "kmo-ledger check-proof"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _check(argv))


def _json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise cli.UsageError(f"{path}: no such file ({what})") from None
    except ValueError:
        raise cli.UsageError(f"{path} is not JSON ({what})") from None


def _event(document: Any, sequence: int | None) -> dict[str, Any]:
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        if sequence is None:
            raise cli.UsageError("the event file holds a list of events: say which with --sequence")
        for event in document["events"]:
            if isinstance(event, dict) and event.get("sequence") == sequence:
                return event
        raise cli.UsageError(f"the event file holds no event of sequence {sequence}")
    if not isinstance(document, dict):
        raise cli.UsageError("the event file holds no event object")
    return document


def _check(argv: list[str] | None) -> int:
    parser = cli.parser("check-proof", "Check an event, its inclusion proof and a signed checkpoint, offline.")
    parser.add_argument("--event", metavar="FILE", type=Path, required=True, help="the event as the API served it")
    parser.add_argument("--sequence", type=int, help="which event, when the file holds a list of them")
    parser.add_argument("--enterprise", metavar="EN", required=True, help="the wallet's enterprise number")
    parser.add_argument("--proof", metavar="FILE", type=Path, required=True, help="the event's inclusion proof")
    parser.add_argument("--checkpoint", metavar="FILE", type=Path, required=True, help="the signed checkpoint")
    parser.add_argument("--public-key", metavar="FILE", type=Path, required=True, help="the ledger's public key")
    args = parser.parse_args(argv)

    from ledger.audit.proofs import NotAKey, check_event_proof, load_public_key
    from ledger.domain.errors import LedgerError
    from ledger.domain.identifiers import canonical_enterprise_number

    event = _event(_json_file(args.event, "the event"), args.sequence)
    proof = _json_file(args.proof, "the proof")
    checkpoint = _json_file(args.checkpoint, "the checkpoint")
    try:
        key = load_public_key(args.public_key.read_bytes())
    except FileNotFoundError:
        raise cli.UsageError(f"{args.public_key}: no such file (the public key)") from None
    except NotAKey as error:
        raise cli.UsageError(f"{args.public_key}: {error}") from None
    try:
        enterprise = canonical_enterprise_number(args.enterprise)
    except LedgerError as error:
        raise cli.UsageError(error.detail) from None
    problem = check_event_proof(event, enterprise, proof, checkpoint, key)
    verdict = {
        "proven": problem is None,
        "problem": problem,
        "sequence": event.get("sequence"),
        "leaf_index": proof.get("leaf_index") if isinstance(proof, dict) else None,
        "tree_size": checkpoint.get("tree_size") if isinstance(checkpoint, dict) else None,
    }
    if args.json:
        cli.print_json(verdict)
    elif problem is None:
        cli.console().print(
            cli.printable(
                f"Proven: event {event.get('sequence')} of {enterprise} is leaf {proof['leaf_index']} of the "
                f"{checkpoint['tree_size']} records signed at {checkpoint['timestamp']} by key {checkpoint['key_id']}"
            )
        )
    else:
        cli.console().print(cli.printable(f"Not proven: {problem}"))
    return cli.EXIT_OK if problem is None else cli.EXIT_PROBLEM
