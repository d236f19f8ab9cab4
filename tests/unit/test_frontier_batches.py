"""A frontier extended a batch at a time (as the tree is recomputed and caught
up) is the frontier appended leaf by leaf: the same size, peaks and root, and
its listener hears of the same perfect subtrees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.audit.merkle import Frontier, MerkleError, leaf_hash, root

LEAVES = [leaf_hash(f"record {number}".encode()) for number in range(600)]


@given(st.integers(0, 300), st.lists(st.integers(0, 140), max_size=12))
def test_batches_of_any_size_from_any_size_give_the_frontier_of_leaf_by_leaf(start, batches):
    heard_batches: list[tuple[int, int, bytes]] = []
    heard_leaves: list[tuple[int, int, bytes]] = []
    in_batches = Frontier(on_subtree=lambda *subtree: heard_batches.append(subtree))
    leaf_by_leaf = Frontier(on_subtree=lambda *subtree: heard_leaves.append(subtree))
    in_batches.extend(LEAVES[:start])
    for hashed in LEAVES[:start]:
        leaf_by_leaf.append(hashed)
    at = start
    for count in batches:
        in_batches.extend(iter(LEAVES[at : at + count]))  # any iterable, not only a list
        for hashed in LEAVES[at : at + count]:
            leaf_by_leaf.append(hashed)
        at = min(at + count, len(LEAVES))
        assert (in_batches.size, in_batches.peaks) == (leaf_by_leaf.size, leaf_by_leaf.peaks)
    assert in_batches.root() == root(LEAVES[:at])
    assert sorted(heard_batches) == sorted(heard_leaves)


def test_a_batch_with_a_leaf_hash_of_the_wrong_length_is_refused_whole():
    frontier = Frontier()
    with pytest.raises(MerkleError, match="not 5"):
        frontier.extend([LEAVES[0], b"short"])
    assert frontier.size == 0 and frontier.peaks == ()
