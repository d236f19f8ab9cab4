"""RFC 6962 / RFC 9162 Merkle trees: the published vectors of transparency-dev
(``tests/vectors/rfc6962``, copied unchanged from ``../shared``), and proofs made here
checked by the same verifier."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    MerkleError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_at,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962"
"""A copy of ``../shared/vectors/rfc6962`` kept in the repository, so a clean clone has them."""
PROVEN_UP_TO = 64


def _vector_cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    if not files:
        return [pytest.param(None, id="vectors-missing")]
    return [pytest.param(path, id=str(path.relative_to(VECTORS / kind))) for path in files]


def _happy_paths(kind: str) -> list[Any]:
    """The vectors' valid proofs: all made from the reference leaves of trees.json."""
    return [case for case in _vector_cases(kind) if case.values[0] is None or "happy-path" in case.values[0].name]


def _require_vectors() -> None:
    """Under CI the vectors are part of the test run: missing, they fail it."""
    if (VECTORS / "trees.json").is_file():
        return
    message = f"the RFC 6962 test vectors are not at {VECTORS}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _load(path: Path | None) -> dict[str, Any]:
    _require_vectors()
    assert path is not None
    return json.loads(path.read_text())


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _proof(vector: dict[str, Any]) -> list[bytes]:
    return [_b64(element) for element in vector["proof"] or []]


def _reference() -> tuple[list[bytes], list[bytes]]:
    """trees.json: the leaf hashes of the reference leaves, and the published
    root of every tree size from 0 to 8."""
    _require_vectors()
    trees = json.loads((VECTORS / "trees.json").read_text())
    leaves = [leaf_hash(bytes.fromhex(data)) for data in trees["leaf_inputs_hex"]]
    return leaves, [bytes.fromhex(hashed) for hashed in trees["root_hash_hex_by_tree_size"]]


def _leaves(count: int) -> list[bytes]:
    return [leaf_hash(f"record {number}".encode()) for number in range(count)]


def _flipped(proof: list[bytes], element: int, bit: int) -> list[bytes]:
    changed = bytearray(proof[element])
    changed[bit // 8] ^= 0x80 >> (bit % 8)
    return [*proof[:element], bytes(changed), *proof[element + 1 :]]


BITS_FLIPPED = (0, 1, 7, 8, 100, 128, 200, 254, 255)


# The published vectors


def test_leaf_node_and_empty_hashes_are_those_of_rfc_6962():
    _require_vectors()
    published = json.loads((VECTORS / "trees.json").read_text())["hashes"]
    assert EMPTY_ROOT.hex() == published["empty_tree"] == root([]).hex()
    assert leaf_hash(b"L123456").hex() == published['leaf("L123456")']
    assert node_hash(b"N123", b"N456").hex() == published['node("N123","N456")']


def test_the_reference_leaves_have_the_published_root_at_every_size():
    leaves, published = _reference()
    assert len(published) == len(leaves) + 1
    frontier = Frontier()
    tree = MemoryTree()
    for size, expected in enumerate(published):
        assert root(leaves[:size]) == expected, size
        assert frontier.root() == expected, size
        assert root_at(size, tree.perfect) == expected, size
        if size < len(leaves):
            frontier.append(leaves[size])
            tree.append(leaves[size])


@pytest.mark.parametrize("path", _vector_cases("inclusion"))
def test_each_published_inclusion_proof_verifies_or_fails_as_published(path):
    vector = _load(path)
    verified = verify_inclusion(
        vector["leafIdx"], vector["treeSize"], _b64(vector["leafHash"]), _proof(vector), _b64(vector["root"])
    )
    assert verified is not vector["wantErr"], vector["desc"]


@pytest.mark.parametrize("path", _vector_cases("consistency"))
def test_each_published_consistency_proof_verifies_or_fails_as_published(path):
    vector = _load(path)
    verified = verify_consistency(
        vector["size1"], vector["size2"], _proof(vector), _b64(vector["root1"]), _b64(vector["root2"])
    )
    assert verified is not vector["wantErr"], vector["desc"]


@pytest.mark.parametrize("path", _happy_paths("inclusion"))
def test_an_inclusion_proof_made_here_is_the_published_one(path):
    vector = _load(path)
    leaves, _ = _reference()
    tree = MemoryTree(leaves[: vector["treeSize"]])
    assert inclusion_proof(vector["leafIdx"], vector["treeSize"], tree.perfect) == _proof(vector)


@pytest.mark.parametrize("path", _happy_paths("consistency"))
def test_a_consistency_proof_made_here_is_the_published_one(path):
    vector = _load(path)
    leaves, _ = _reference()
    tree = MemoryTree(leaves[: vector["size2"]])
    assert consistency_proof(vector["size1"], vector["size2"], tree.perfect) == _proof(vector)


# Proofs made here


@pytest.fixture(scope="module")
def proven() -> tuple[list[bytes], MemoryTree, list[bytes]]:
    """Leaves, their tree, and the root of every size up to PROVEN_UP_TO."""
    leaves = _leaves(PROVEN_UP_TO)
    return leaves, MemoryTree(leaves), [root(leaves[:size]) for size in range(PROVEN_UP_TO + 1)]


def test_every_inclusion_proof_up_to_64_leaves_verifies_and_any_change_fails(proven):
    leaves, tree, roots = proven
    for size in range(1, PROVEN_UP_TO + 1):
        for index in range(size):
            proof = inclusion_proof(index, size, tree.perfect)
            where = f"leaf {index} of {size}"
            assert verify_inclusion(index, size, leaves[index], proof, roots[size]), where
            for element in range(len(proof)):
                for bit in BITS_FLIPPED:
                    flipped = _flipped(proof, element, bit)
                    assert not verify_inclusion(index, size, leaves[index], flipped, roots[size]), where
            assert not verify_inclusion(index, size, leaves[index], [*proof, roots[size]], roots[size]), where
            if proof:
                assert not verify_inclusion(index, size, leaves[index], proof[:-1], roots[size]), where
                assert not verify_inclusion(index, size, leaves[index ^ 1], proof, roots[size]), where
            if size > 1:
                other = (index + 1) % size
                assert not verify_inclusion(other, size, leaves[index], proof, roots[size]), where


def test_every_consistency_proof_up_to_64_leaves_verifies_and_any_change_fails(proven):
    _, tree, roots = proven
    for size2 in range(1, PROVEN_UP_TO + 1):
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(size1, size2, tree.perfect)
            where = f"size {size1} to {size2}"
            assert verify_consistency(size1, size2, proof, roots[size1], roots[size2]), where
            for element in range(len(proof)):
                for bit in BITS_FLIPPED:
                    flipped = _flipped(proof, element, bit)
                    assert not verify_consistency(size1, size2, flipped, roots[size1], roots[size2]), where
            if size1 < size2:
                assert not verify_consistency(size1, size2, proof[:-1], roots[size1], roots[size2]), where
                assert not verify_consistency(size1, size2, [*proof, EMPTY_ROOT], roots[size1], roots[size2]), where
                assert not verify_consistency(size1, size2, proof, roots[size1 - 1], roots[size2]), where
                assert not verify_consistency(size1, size2, proof, roots[size1], roots[size2 - 1]), where
                assert not verify_consistency(size1 + 1, size2, proof, roots[size1], roots[size2]), where


def test_a_proof_is_refused_for_what_the_tree_does_not_hold(proven):
    _, tree, _ = proven
    for index, size in [(8, 8), (-1, 8), (0, 0), (3, 2)]:
        with pytest.raises(MerkleError):
            inclusion_proof(index, size, tree.perfect)
    for size1, size2 in [(0, 8), (9, 8), (-1, 8)]:
        with pytest.raises(MerkleError):
            consistency_proof(size1, size2, tree.perfect)
    with pytest.raises(MerkleError):
        inclusion_proof(0, PROVEN_UP_TO + 1, tree.perfect)


def test_the_empty_tree_proves_nothing_and_only_its_root_is_its_root():
    assert not verify_consistency(0, 5, [], EMPTY_ROOT, root(_leaves(5)))
    assert verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    assert not verify_inclusion(0, 0, leaf_hash(b""), [], EMPTY_ROOT)


def test_a_proof_reads_a_stored_subtree_at_most_twice_per_level():
    size = 10_000
    tree = MemoryTree(_leaves(size))
    reads: list[tuple[int, int]] = []

    def counted(level: int, index: int) -> bytes:
        reads.append((level, index))
        return tree.perfect(level, index)

    height = (size - 1).bit_length()
    for index in (0, 1, 4_095, 8_191, 9_998, 9_999):
        reads.clear()
        inclusion_proof(index, size, counted)
        assert len(reads) <= 2 * height, index
    for size1 in (1, 2, 3, 4_096, 7_777, 9_999):
        reads.clear()
        consistency_proof(size1, size, counted)
        assert len(reads) <= 2 * height, size1


# The tree of a growing log


def test_the_frontier_has_the_recursive_root_at_every_size():
    leaves = _leaves(5_000)
    checked = set(range(300))
    checked |= {size + delta for size in (2**power for power in range(9, 13)) for delta in (-1, 0, 1)}
    checked |= {997, 1_234, 3_001, 4_999, 5_000}
    frontier = Frontier()
    for size in range(len(leaves) + 1):
        if size in checked:
            assert frontier.root() == root(leaves[:size]), size
            assert len(frontier.peaks) == bin(size).count("1")
        if size < len(leaves):
            frontier.append(leaves[size])


def test_a_frontier_taken_up_from_its_stored_state_goes_on_as_before():
    leaves = _leaves(100)
    first = Frontier()
    first.extend(leaves[:37])
    resumed = Frontier(first.size, first.peaks)
    resumed.extend(leaves[37:])
    assert resumed.size == 100
    assert resumed.root() == root(leaves)


@pytest.mark.parametrize(
    ("size", "peaks"),
    [(3, [EMPTY_ROOT]), (4, [EMPTY_ROOT, EMPTY_ROOT]), (0, [EMPTY_ROOT]), (-1, []), (1, [b"short"])],
)
def test_a_frontier_refuses_a_state_no_tree_has(size, peaks):
    with pytest.raises(MerkleError):
        Frontier(size, peaks)


def test_a_frontier_refuses_a_leaf_hash_of_the_wrong_length():
    with pytest.raises(MerkleError):
        Frontier().append(b"not a hash")


def test_the_frontier_reports_every_perfect_subtree_with_its_hash():
    leaves = _leaves(45)
    heard: list[tuple[int, int, bytes]] = []
    Frontier(on_subtree=lambda level, index, hashed: heard.append((level, index, hashed))).extend(leaves)
    expected = {
        (level, index)
        for level in range(6)
        for index in range(len(leaves) >> level)  # only the subtrees wholly within the 45 leaves
    }
    assert {(level, index) for level, index, _ in heard} == expected
    assert len(heard) == len(expected)
    for level, index, hashed in heard:
        assert hashed == root(leaves[index << level : (index + 1) << level]), (level, index)


# Properties


@given(st.lists(st.binary(max_size=8), max_size=150), st.data())
def test_proofs_of_any_log_verify_against_its_streamed_root(records, data):
    leaves = [leaf_hash(record) for record in records]
    tree = MemoryTree(leaves)
    assert tree.root() == root(leaves) == root_at(len(leaves), tree.perfect)
    if not leaves:
        return
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    size1 = data.draw(st.integers(1, size), label="size1")
    proof = inclusion_proof(index, size, tree.perfect)
    assert verify_inclusion(index, size, leaves[index], proof, root(leaves[:size]))
    consistency = consistency_proof(size1, size, tree.perfect)
    assert verify_consistency(size1, size, consistency, root(leaves[:size1]), root(leaves[:size]))


hashes = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
sizes = st.integers(-(2**65), 2**65)


@given(sizes, sizes, hashes, st.lists(hashes, max_size=70), hashes)
def test_inclusion_verification_answers_false_and_never_raises_for_made_up_input(index, size, leaf, proof, head):
    assume((index, size, proof) != (0, 1, []) or leaf != head)  # a one-leaf tree's root is its leaf
    assert verify_inclusion(index, size, leaf, proof, head) is False


@given(sizes, sizes, st.lists(hashes, max_size=70), hashes, hashes)
def test_consistency_verification_never_raises_for_made_up_input(size1, size2, proof, root1, root2):
    assert verify_consistency(size1, size2, proof, root1, root2) in (True, False)


def test_the_stored_tree_gives_the_published_roots_and_proofs():
    """The ledger's stored tree (leaves and perfect subtrees in tables, appended
    a chunk at a time as the log grows) answers as RFC 6962's reference does."""
    from ledger.audit.checkpoints import append_leaves, prefetched, stored_subtrees
    from ledger.storage.tree import MemoryTreeTables

    leaves, published = _reference()
    tables = MemoryTreeTables()
    tables.create()
    start, chunk = 0, 1
    while start < len(leaves):  # chunks of 1, 2, 3, ... leaves: every way a subtree completes across them
        rows = [(i, i + 1, f"record-{i}", 1, leaves[i]) for i in range(start, min(start + chunk, len(leaves)))]
        with tables.write() as writing:
            append_leaves(tables, writing, rows)
        start, chunk = start + len(rows), chunk + 1
    perfect = stored_subtrees(tables)
    assert [root_at(size, perfect) for size in range(len(published))] == published
    compared = 0
    for path in (VECTORS / "inclusion").rglob("*.json"):
        vector = _load(path)
        if not vector.get("wantErr") and 0 <= vector["leafIdx"] < vector["treeSize"] <= len(leaves):
            assert inclusion_proof(vector["leafIdx"], vector["treeSize"], perfect) == _proof(vector), path
            at_once = prefetched(tables, lambda read, v=vector: inclusion_proof(v["leafIdx"], v["treeSize"], read))
            assert at_once == _proof(vector), path  # every stored hash read in one query per table
            compared += 1
    for path in (VECTORS / "consistency").rglob("*.json"):
        vector = _load(path)
        if not vector.get("wantErr") and 0 < vector["size1"] <= vector["size2"] <= len(leaves):
            at_once = prefetched(tables, lambda read, v=vector: consistency_proof(v["size1"], v["size2"], read))
            assert at_once == _proof(vector), path
    assert compared >= 6  # every valid inclusion vector within the reference leaves
    tables.close()
