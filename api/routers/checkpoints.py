"""Proofs for auditors: the ledger-wide Merkle tree's signed checkpoints, the
public key that signs them, consistency proofs between two of them and the
inclusion proof of one wallet event (:mod:`ledger.audit.checkpoints`).

Every hash is lowercase hex; leaf and node hashes as RFC 6962 section 2.1.
Check a proof offline with ``kmo-ledger check-proof``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from api.auth import Auditing, LedgerDep
from api.params import EnterpriseNumber, never_null
from api.routers.declare import operation
from api.schemas import ResponseBody
from ledger.audit import checkpoints
from ledger.domain.errors import NotFound
from ledger.domain.identifiers import canonical_enterprise_number, wallet_id

router = APIRouter(tags=["checkpoints"])
TreeSize = Annotated[int, Query(ge=1, le=2**62, description="A tree size: the number of records a checkpoint covers")]
HEX = {"examples": ["5f5b0c1b0e4c8f6a9d2e7b3c1a0f9e8d7c6b5a493827161504f3e2d1c0b0a090"]}


class CheckpointOut(ResponseBody):
    tree_size: int = Field(description="Records covered: the first tree_size of the notification log")
    root_hash: str = Field(description="The Merkle tree hash of those records (RFC 6962)", **HEX)
    timestamp: str = Field(description="When it was taken (UTC, ISO 8601)", examples=["2026-12-07T06:52:45.917286Z"])
    key_id: str = Field(description="SHA-256 of the signing key's 32 raw public bytes", **HEX)
    signature: str = Field(
        description="Ed25519 over the lines `kmo-ledger checkpoint v2`, `number C`, `tree_size N`, `root_hash H`, "
        "`timestamp T`, `key_id K`, `previous_size P`, `previous_root R` (`none` for the first checkpoint), "
        "each ending in a newline. A checkpoint taken before 2026-12-07 signed the lines "
        "`kmo-ledger checkpoint v1`, `tree_size N`, `root_hash H`, `timestamp T`, `key_id K` only: "
        "its number and its link to the one before are not signed"
    )
    number: int = Field(description="Checkpoints are numbered from 1, without a gap")
    previous_size: int | None = Field(description="The tree size of the checkpoint before this one; null for the first")
    previous_root: str | None = Field(description="The root hash of the checkpoint before this one; null for the first")


class PublicKeyOut(ResponseBody):
    algorithm: str = Field(examples=["Ed25519"])
    key_id: str = Field(description="SHA-256 of the 32 raw public bytes", **HEX)
    public_key: str = Field(description="The 32 raw public bytes, hex")
    pem: str = Field(description="The same key as a PEM SubjectPublicKeyInfo")


class ConsistencyOut(ResponseBody):
    from_: int = Field(alias="from", serialization_alias="from")
    to: int
    proof: list[str] = Field(description="RFC 9162 section 2.1.4 consistency proof, hex")


class InclusionOut(ResponseBody):
    leaf_index: int = Field(description="The event's position in the notification log, from 0")
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || the 32 bytes of the event's hash)", **HEX)
    proof: list[str] = Field(description="RFC 9162 section 2.1.3 audit path, lowest first, hex")
    root_hash: str = Field(**HEX)


@operation(router.get, "/checkpoints/latest", "The latest signed checkpoint", CheckpointOut, 403, 404)
def latest_checkpoint(_caller: Auditing, ledger: LedgerDep):
    """The newest checkpoint of the ledger-wide Merkle tree; a 404 while none was taken."""
    return checkpoints.public_checkpoint(checkpoints.latest(ledger))


@operation(router.get, "/checkpoints/public-key", "The key that signs checkpoints", PublicKeyOut, 403)
def checkpoint_public_key(_caller: Auditing, request: Request):
    """The Ed25519 public key whose `key_id` checkpoints name."""
    key = checkpoints.signing_key(request.app.state.checkpoint_key)
    return checkpoints.public_key_document(key.public_key())


@operation(router.get, "/checkpoints/consistency", "Consistency proof between two tree sizes", ConsistencyOut, 403, 404)
def checkpoint_consistency(
    _caller: Auditing,
    ledger: LedgerDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=2**62, description="The older tree size")],
    to: Annotated[int, Query(ge=1, le=2**62, description="The newer tree size, at most the latest checkpoint's")],
):
    """The proof that the tree of `to` records begins with the tree of `from`:
    an older checkpoint's log was only appended to. `from` after `to`, or `to`
    beyond the latest checkpoint, is a 422."""
    return checkpoints.consistency(ledger, from_, to)


@operation(router.get, "/wallets/{en}/events/{sequence}/proof", "Inclusion proof of one event", InclusionOut, 403, 404)
def event_proof(
    en: EnterpriseNumber,
    sequence: Annotated[int, Path(ge=1, le=2**31 - 1, description="The event's `sequence` in its wallet")],
    _caller: Auditing,
    ledger: LedgerDep,
    tree_size: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**62,
            description="A checkpoint's tree size (default: the latest checkpoint's); beyond it, or not holding "
            "the event, is a 422",
            json_schema_extra=never_null,
        ),
    ] = None,
):
    """The audit path from the event's leaf to the root of the tree of
    `tree_size` records: with the checkpoint of that size and its public key,
    anyone can check that the event is in the ledger (`kmo-ledger check-proof`)."""
    enterprise = canonical_enterprise_number(en)
    aggregate_id = wallet_id(enterprise)
    if not ledger.recorder.select_events(aggregate_id, gt=sequence - 1, lte=sequence, limit=1):
        if not ledger.recorder.select_events(aggregate_id, limit=1):
            raise NotFound(f"no wallet for enterprise {en}")
        raise NotFound(f"the wallet of {enterprise} has no event {sequence}")
    return checkpoints.inclusion(ledger, str(aggregate_id), sequence, tree_size)
