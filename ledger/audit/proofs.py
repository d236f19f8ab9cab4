"""Checking a proof with no database: one event as ``GET /v1/wallets/{en}/events``
served it, its inclusion proof (``GET .../events/{sequence}/proof``), a signed
checkpoint (``GET /v1/checkpoints/latest``) and the ledger's public key
(``GET /v1/checkpoints/public-key``, or its PEM file).

:func:`check_event_proof` answers None when all of it holds, or the first
reason it does not, in one sentence: the signature is the public key's over
the checkpoint; the event's hash is recomputed from its content; its leaf
hash and audit path lead to the checkpoint's root at the checkpoint's size.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ledger.audit import merkle
from ledger.audit.checkpoints import LINKED_FIELDS, hexes, key_id, raw_public, signed_messages
from ledger.domain import events as ev
from ledger.domain.identifiers import canonical_enterprise_number, wallet_id

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHECKPOINT_FIELDS = ("tree_size", "root_hash", "timestamp", "key_id", "signature")


class NotAKey(ValueError):
    """Bytes that are no Ed25519 public key in any form this accepts."""


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its PEM, or from the JSON of ``GET
    /v1/checkpoints/public-key`` (its ``pem`` or its hex ``public_key``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = data.strip()
    if text.startswith(b"{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise NotAKey("it is neither PEM nor the JSON of GET /v1/checkpoints/public-key") from None
        if isinstance(document, dict) and isinstance(document.get("pem"), str):
            text = document["pem"].encode()
        elif isinstance(document, dict) and isinstance(document.get("public_key"), str):
            raw = hexes([document["public_key"]])
            if raw is None:
                raise NotAKey("its public_key is not 64 hex digits")
            return Ed25519PublicKey.from_public_bytes(raw[0])
    try:
        key = serialization.load_pem_public_key(text)
    except (ValueError, TypeError) as error:
        raise NotAKey(f"it is not a public key in PEM ({str(error).splitlines()[0]})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise NotAKey("it is not an Ed25519 key")
    return key


def checkpoint_problem(checkpoint: Any, public_key: Ed25519PublicKey) -> str | None:
    """Why ``checkpoint`` (as ``GET /v1/checkpoints/latest`` serves it) is not
    signed by ``public_key``, or None."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(checkpoint, dict) or any(field not in checkpoint for field in CHECKPOINT_FIELDS):
        return f"the checkpoint is not an object with {', '.join(CHECKPOINT_FIELDS)}"
    size, root, signer = checkpoint["tree_size"], checkpoint["root_hash"], checkpoint["key_id"]
    if not _is_size(size) or hexes([root]) is None:
        return "the checkpoint's tree_size or root_hash is malformed"
    previous = checkpoint.get("previous_size"), checkpoint.get("previous_root")
    if not (previous == (None, None) or (_is_size(previous[0]) and hexes([previous[1]]) is not None)):
        return "the checkpoint's previous_size or previous_root is malformed"
    if "number" in checkpoint and not (_is_size(checkpoint["number"]) and checkpoint["number"] > 0):
        return "the checkpoint's number is malformed"
    expected = key_id(raw_public(public_key))
    if signer != expected:
        return f"the checkpoint names key {signer}, but the public key given is {expected}"
    try:
        signature = bytes.fromhex(str(checkpoint["signature"]))
    except ValueError:
        signature = b""
    for message in signed_messages(checkpoint):
        try:
            public_key.verify(signature, message)
            return None
        except InvalidSignature:
            continue
    if any(field not in checkpoint for field in LINKED_FIELDS):
        return (
            "the checkpoint's signature does not verify with the public key: it was forged or changed, or "
            f"saved without {', '.join(LINKED_FIELDS)} (signed since 2026-12-07: save all GET /v1/checkpoints/latest)"
        )
    return "the checkpoint's signature does not verify with the public key: it was forged or changed"


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def event_hash(event: dict[str, Any], enterprise_number: str) -> str:
    """The chain hash of ``event`` as the events endpoint shows it, recomputed
    from its content (``ValueError`` when it cannot be read as an event)."""
    cls = getattr(ev, str(event.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, ev.WalletEvent)):
        raise ValueError(f"{event.get('type')!r} is not a wallet event type")
    data = dict(event.get("data") or {})
    rate = data.get("rate")
    if isinstance(rate, str) and "rate" in cls.model_fields:  # shown in percent, stored in basis points
        try:
            data["rate"] = int(Decimal(rate) * 100)
        except InvalidOperation:
            raise ValueError(f"rate {rate!r} is not a percentage") from None
    model = cls.model_validate(
        data
        | {
            "originator_id": wallet_id(canonical_enterprise_number(enterprise_number)),
            "originator_version": event.get("sequence"),
            "timestamp": event.get("recorded_at"),
            "business_date": event.get("business_date"),
            "actor": event.get("actor"),
            "previous_hash": event.get("previous_hash"),
        }
    )
    return ev.chain_hash(model.canonical_content())


def check_event_proof(
    event: dict[str, Any],
    enterprise_number: str,
    proof: dict[str, Any],
    checkpoint: dict[str, Any],
    public_key: Ed25519PublicKey,
) -> str | None:
    """None when ``event`` of ``enterprise_number``'s wallet is proven in the
    ledger signed by ``checkpoint``; else why not, in one sentence."""
    problem = checkpoint_problem(checkpoint, public_key)
    if problem:
        return problem
    try:
        recomputed = event_hash(event, enterprise_number)
    except (ValueError, TypeError) as error:
        return f"the event cannot be read: {str(error).splitlines()[0]}"
    if recomputed != event.get("hash"):
        return f"the event's content does not hash to its hash {event.get('hash')}: it was changed"
    fields = ("leaf_index", "tree_size", "leaf_hash", "proof", "root_hash")
    if not isinstance(proof, dict) or any(field not in proof for field in fields):
        return f"the proof is not an object with {', '.join(fields)}"
    leaf = merkle.leaf_hash(bytes.fromhex(recomputed))
    if proof["leaf_hash"] != leaf.hex():
        return f"the proof is of leaf {proof['leaf_hash']}, not of this event (leaf {leaf.hex()})"
    if proof["tree_size"] != checkpoint["tree_size"] or proof["root_hash"] != checkpoint["root_hash"]:
        return (
            f"the proof is for a tree of {proof['tree_size']} records, root {proof['root_hash']}; the checkpoint "
            f"signs {checkpoint['tree_size']}, root {checkpoint['root_hash']}: ask for the proof at its tree_size"
        )
    path = hexes(proof["proof"]) if isinstance(proof["proof"], list) else None
    index = proof["leaf_index"]
    if path is None or not isinstance(index, int):
        return "the proof's leaf_index or path is malformed"
    if not merkle.verify_inclusion(index, checkpoint["tree_size"], leaf, path, bytes.fromhex(checkpoint["root_hash"])):
        return f"the audit path does not lead from leaf {index} to the checkpoint's root: the event is not proven"
    return None
