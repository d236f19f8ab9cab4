"""``kmo-ledger checkpoint``: catch the ledger-wide Merkle tree up with the log
and take a signed checkpoint of it now (the server takes one every N events
and at least daily by itself). The signing key is
``KMO_LEDGER_CHECKPOINT_KEY_FILE`` (default ``var/checkpoint-key.pem``), made
on first use with its public key beside it (``.pub``)."""

from __future__ import annotations

from pathlib import Path

from scripts import common as cli

PROG = "kmo-ledger checkpoint"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _checkpoint(argv))


def _checkpoint(argv: list[str] | None) -> int:
    parser = cli.parser("checkpoint", "Take a signed checkpoint of the ledger-wide Merkle tree now.")
    parser.add_argument(
        "--key", metavar="FILE", type=Path, help="the Ed25519 private key (default: KMO_LEDGER_CHECKPOINT_KEY_FILE)"
    )
    args = parser.parse_args(argv)

    from ledger.audit.checkpoints import key_file, public_checkpoint, public_key_file, signing_key, take_checkpoint

    path = key_file(args.key)
    with cli.open_ledger() as ledger:
        row = take_checkpoint(ledger, signing_key(path))
    assert row is not None  # taken unconditionally
    shown = public_checkpoint(row)
    if args.json:
        cli.print_json(shown)
        return cli.EXIT_OK
    out = cli.console()
    out.print(
        cli.printable(
            f"Checkpoint {row['number']}: {row['tree_size']} record(s), root {row['root_hash']}, "
            f"at {row['timestamp']}, key {row['key_id']} (public key: {public_key_file(path)})"
        )
    )
    return cli.EXIT_OK
