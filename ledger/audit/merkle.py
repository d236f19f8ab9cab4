"""Merkle trees as Certificate Transparency builds them (RFC 6962 section 2.1,
RFC 9162 section 2.1): the tree hash of a list of records, inclusion and
consistency proofs, and their verification.

The standard library only, and nothing of the ledger: this file can be copied
beside an export and run by an auditor on any Python 3.9 or later.

- Hashes are SHA-256. A leaf hash is ``SHA-256(0x00 || leaf input)``, an inner
  node ``SHA-256(0x01 || left || right)``, the empty tree's root
  ``SHA-256()`` (:data:`EMPTY_ROOT`).
- Leaves are numbered from 0. A tree of size n holds leaves 0 to n - 1; the
  tree of a smaller size is the tree of the first leaves only.
- A *perfect subtree* is the ``2**level`` leaves from
  ``index * 2**level``; level 0 is a leaf's own hash. Proofs are made from
  those alone (:data:`PerfectSubtrees`), so a store that keeps them answers a
  proof in O(log n) reads: at most one per level, plus the perfect subtrees
  at the tree's right edge.

Verification returns ``False`` for every proof that does not prove what is
asked, whatever is wrong with it (a size, index, hash or proof element out of
place, missing or left over); it raises nothing for values of the right
types. Making a proof of something the tree does not hold (a leaf past its
end, a size beyond it) raises :class:`MerkleError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256

PerfectSubtrees = Callable[[int, int], bytes]
"""``perfect(level, index)``: the hash of the perfect subtree of the leaves
``index * 2**level`` to ``(index + 1) * 2**level - 1``."""

SubtreeListener = Callable[[int, int, bytes], None]
"""Told ``(level, index, hash)`` of each perfect subtree as it completes."""


class MerkleError(ValueError):
    """A leaf, tree size or tree state that the tree in question does not have."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || data)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash MTH of the leaves, by RFC 9162 section 2.1.1: the
    left subtree holds the largest power of two of leaves smaller than their
    number, the right one the rest. It holds every leaf hash; over a long log,
    :class:`Frontier` gives the same root holding O(log n) hashes."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def _mth(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaf_hashes[start]
    split = start + _largest_power_of_two_below(end - start)
    return node_hash(_mth(leaf_hashes, start, split), _mth(leaf_hashes, split, end))


def _largest_power_of_two_below(n: int) -> int:
    """k < n <= 2k, for n > 1."""
    return 1 << ((n - 1).bit_length() - 1)


def _ones(n: int) -> int:
    return bin(n).count("1")


class Frontier:
    """The tree of a growing log kept as its right edge (a "compact range"):
    one perfect subtree hash per set bit of the size, largest first. Appending
    a leaf costs one hash per subtree it completes; the root is there at any
    size. Its state (``size``, ``peaks``) can be stored and taken up again.

    ``on_subtree`` hears of every perfect subtree as it completes, leaves
    included: that is how a store of perfect subtrees (:class:`MemoryTree`,
    or a table of them) fills while the log is read once.
    """

    __slots__ = ("_size", "_peaks", "_on_subtree")

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = (), on_subtree: SubtreeListener | None = None) -> None:
        if size < 0 or len(peaks) != _ones(size):
            raise MerkleError(f"a tree of size {size} has {_ones(max(size, 0))} peaks, not {len(peaks)}")
        if any(len(peak) != HASH_SIZE for peak in peaks):
            raise MerkleError(f"a peak is a {HASH_SIZE}-byte hash")
        self._size = size
        self._peaks = list(peaks)
        self._on_subtree = on_subtree

    @property
    def size(self) -> int:
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        """The perfect subtrees covering leaves 0 to size - 1, left to right."""
        return tuple(self._peaks)

    def append(self, leaf_hash: bytes) -> None:
        if len(leaf_hash) != HASH_SIZE:
            raise MerkleError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf_hash)}")
        index, level, merged = self._size, 0, leaf_hash
        peaks, listener = self._peaks, self._on_subtree
        if listener is not None:
            listener(0, index, merged)
        while index & 1:
            merged = node_hash(peaks.pop(), merged)
            index >>= 1
            level += 1
            if listener is not None:
                listener(level, index, merged)
        peaks.append(merged)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append the leaves in order, as :meth:`append` one by one would, but a
        level at a time: each level's new nodes are hashed in pairs in one pass,
        so a batch costs about one hash per leaf and little else. The listener
        hears of the completed subtrees level by level, each level's in index
        order."""
        nodes = list(leaf_hashes)
        if nodes and set(map(len, nodes)) != {HASH_SIZE}:
            wrong = next(len(hashed) for hashed in nodes if len(hashed) != HASH_SIZE)
            raise MerkleError(f"a leaf hash is {HASH_SIZE} bytes, not {wrong}")
        peaks, listener = self._peaks, self._on_subtree
        start, level, added, waiting = self._size, 0, len(nodes), []
        while nodes:
            if listener is not None:
                for offset, hashed in enumerate(nodes):
                    listener(level, start + offset, hashed)
            if start & 1:  # the first node's left sibling is this level's peak
                nodes.insert(0, peaks.pop())
                start -= 1
            if len(nodes) & 1:  # the last node has no right sibling yet: a peak of the new size
                waiting.append(nodes.pop())
            pairs = iter(nodes)  # an even number of nodes, two at a time (no strict=: Python 3.9)
            nodes = [node_hash(left, right) for left, right in zip(pairs, pairs)]  # noqa: B905
            start >>= 1
            level += 1
        peaks.extend(reversed(waiting))
        self._size += added

    def root(self) -> bytes:
        """MTH of the leaves appended so far (RFC 9162 section 2.1.1)."""
        if not self._peaks:
            return EMPTY_ROOT
        folded = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            folded = node_hash(peak, folded)
        return folded


class MemoryTree:
    """Every perfect subtree of a tree, held in memory: the simplest source of
    proofs (``tree.perfect``), for tests and small trees."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = []
        self._frontier = Frontier(on_subtree=self._keep)
        self._frontier.extend(leaf_hashes)

    def _keep(self, level: int, index: int, hashed: bytes) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(hashed)

    @property
    def size(self) -> int:
        return self._frontier.size

    def append(self, leaf_hash: bytes) -> None:
        self._frontier.append(leaf_hash)

    def perfect(self, level: int, index: int) -> bytes:
        if level < 0 or index < 0 or level >= len(self._levels) or index >= len(self._levels[level]):
            raise MerkleError(f"the tree of size {self.size} has no perfect subtree {index} at level {level}")
        return self._levels[level][index]

    def root(self) -> bytes:
        return self._frontier.root()


def root_at(tree_size: int, perfect: PerfectSubtrees) -> bytes:
    """MTH of the first ``tree_size`` leaves, from the perfect subtrees
    covering them (one read per set bit of the size)."""
    if tree_size < 0:
        raise MerkleError(f"a tree size is 0 or more, not {tree_size}")
    if tree_size == 0:
        return EMPTY_ROOT
    return _range_hash(perfect, 0, tree_size)


def _range_hash(perfect: PerfectSubtrees, start: int, end: int) -> bytes:
    """MTH of leaves start to end - 1, where ``start`` is a multiple of a power
    of two at least ``end - start``: a node of the tree whose size is ``end``.
    Read as its perfect subtrees, largest first, folded from the right."""
    blocks: list[bytes] = []
    while start < end:
        level = (end - start).bit_length() - 1
        blocks.append(perfect(level, start >> level))
        start += 1 << level
    folded = blocks[-1]
    for block in reversed(blocks[:-1]):
        folded = node_hash(block, folded)
    return folded


def inclusion_proof(leaf_index: int, tree_size: int, perfect: PerfectSubtrees) -> list[bytes]:
    """The audit path PATH(m, D[n]) of RFC 9162 section 2.1.3.1: the sibling
    of each node from the leaf up to the root, lowest first. A sibling lies
    either wholly inside the tree (a perfect subtree, one read) or at its right
    edge (the hash of its perfect subtrees, at most once per proof)."""
    if not 0 <= leaf_index < tree_size:
        raise MerkleError(f"leaf {leaf_index} is not in a tree of size {tree_size}")
    proof: list[bytes] = []
    level, index, last = 0, leaf_index, tree_size - 1
    while last >> level:
        sibling = index ^ 1
        start = sibling << level
        if start < tree_size:
            end = min(start + (1 << level), tree_size)
            if end - start == 1 << level:
                proof.append(perfect(level, sibling))
            else:
                proof.append(_range_hash(perfect, start, end))
        level += 1
        index >>= 1
    return proof


def consistency_proof(size1: int, size2: int, perfect: PerfectSubtrees) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1: the fewest subtree hashes
    from which both the root of the first ``size1`` leaves and that of the
    first ``size2`` follow. Empty when the sizes are equal; the empty tree has
    no proof (RFC 9162 defines them for 0 < size1 <= size2)."""
    if not 0 < size1 <= size2:
        raise MerkleError(f"there is no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    _subproof(size1, 0, size2, True, perfect, proof)
    return proof


def _subproof(m: int, start: int, end: int, complete: bool, perfect: PerfectSubtrees, proof: list[bytes]) -> None:
    """SUBPROOF(m, D[start:end], complete), appended to ``proof``; ``m``
    counts from ``start``. Recursion depth is the tree's height."""
    n = end - start
    if m == n:
        if not complete:
            proof.append(_range_hash(perfect, start, end))
        return
    k = _largest_power_of_two_below(n)
    if m <= k:
        _subproof(m, start, start + k, complete, perfect, proof)
        proof.append(_range_hash(perfect, start + k, end))
    else:
        _subproof(m - k, start + k, end, False, perfect, proof)
        proof.append(perfect(k.bit_length() - 1, start // k))


def _all_hashes(*hashes: bytes) -> bool:
    return all(len(hashed) == HASH_SIZE for hashed in hashes)


def _sides(fn: int, sn: int, proof: Sequence[bytes]) -> list[tuple[bytes, bool]] | None:
    """The walk up the tree that RFC 9162's verifications share: each proof
    hash with whether it is a left sibling, from the node at ``fn`` in a tree
    whose last node is ``sn``; None when the proof has more or fewer hashes
    than the sizes call for."""
    sides = []
    for hashed in proof:
        if sn == 0:
            return None
        left = bool(fn & 1) or fn == sn
        sides.append((hashed, left))
        if left:
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
    return sides if sn == 0 else None


def verify_inclusion(leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows the leaf whose hash is ``leaf_hash`` at
    ``leaf_index`` in the tree of ``tree_size`` leaves whose root is ``root``:
    RFC 9162 section 2.1.3.2, step by step. Every hash is 32 bytes.

    The proof binds the leaf to the root, not to the size (leaf 0 has the same
    path in trees of 3 and 4 leaves): take size and root together from a
    signed checkpoint."""
    if not 0 <= leaf_index < tree_size:
        return False
    if not _all_hashes(leaf_hash, root, *proof):
        return False
    sides = _sides(leaf_index, tree_size - 1, proof)
    if sides is None:
        return False
    r = leaf_hash
    for p, left in sides:
        r = node_hash(p, r) if left else node_hash(r, p)
    return r == root


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> bool:
    """Whether ``proof`` shows the tree of ``size2`` leaves with root ``root2``
    beginning with the tree of ``size1`` leaves with root ``root1``: RFC 9162
    section 2.1.4.2, step by step, for 0 < size1 < size2.

    Equal sizes are consistent when the proof is empty and the roots are the
    same (at size 0, the empty tree's root). From the empty tree to a larger
    one there is no proof to check, so it is refused: a caller that starts
    from nothing has nothing to compare."""
    if size1 < 0 or size2 < size1:
        return False
    if size1 == size2:
        return not proof and root1 == root2 and (size1 > 0 or root1 == EMPTY_ROOT)
    if size1 == 0 or not proof:
        return False
    if not _all_hashes(root1, root2, *proof):
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    sides = _sides(fn, sn, path[1:])
    if sides is None:
        return False
    fr = sr = path[0]
    for c, left in sides:
        if left:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    return fr == root1 and sr == root2
