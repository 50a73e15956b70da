"""Exact and near duplicates: which images are copies of each other, grouped transitively."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Sequence

import numpy as np

_BYTE_BITS = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


class UnionFind:
    """Disjoint sets over ``0..size-1``: join pairs, then read the groups."""

    def __init__(self, size: int) -> None:
        self._parent = list(range(size))

    def find(self, index: int) -> int:
        """Return the representative of ``index``'s set."""
        root = index
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[index] != root:  # path compression
            self._parent[index], index = root, self._parent[index]
        return root

    def join(self, first: int, second: int) -> None:
        """Put ``first`` and ``second`` in one set (the smaller representative wins)."""
        a, b = self.find(first), self.find(second)
        if a != b:
            self._parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        """Every set, each sorted, ordered by its smallest member."""
        members: dict[int, list[int]] = defaultdict(list)
        for index in range(len(self._parent)):
            members[self.find(index)].append(index)
        return [members[root] for root in sorted(members)]


def same_value_pairs(values: Sequence[Hashable | None]) -> Iterator[tuple[int, int]]:
    """Pairs ``(first, other)`` of indices with equal, non-None values (a chain per value)."""
    first_of: dict[Hashable, int] = {}
    for index, value in enumerate(values):
        if value is None:
            continue
        first = first_of.setdefault(value, index)
        if first != index:
            yield first, index


def near_pairs(hashes: Sequence[int | None], threshold: int) -> Iterator[tuple[int, int]]:
    """Pairs of indices whose 64-bit hashes differ in at most ``threshold`` bits.

    Compares every pair with numpy, row by row: about a second for 10,000 images.
    """
    present = [i for i, value in enumerate(hashes) if value is not None]
    packed = np.array([hashes[i] for i in present], dtype=np.uint64)
    for row, index in enumerate(present[:-1]):
        distances = _popcount(packed[row + 1 :] ^ packed[row])
        for offset in np.flatnonzero(distances <= threshold):
            yield index, present[row + 1 + int(offset)]


def groups_of(size: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Return the groups of ``0..size-1`` connected by ``pairs``, singletons included."""
    sets = UnionFind(size)
    for first, second in pairs:
        sets.join(first, second)
    return sets.groups()


def hamming(first: int, second: int) -> int:
    """Bits that differ between two hashes."""
    return (first ^ second).bit_count()


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        counts: np.ndarray = np.bitwise_count(values)
        return counts
    bytes_ = values.view(np.uint8).reshape(-1, 8)  # pragma: no cover
    summed: np.ndarray = _BYTE_BITS[bytes_].sum(axis=1)  # pragma: no cover
    return summed  # pragma: no cover


__all__ = ["UnionFind", "groups_of", "hamming", "near_pairs", "same_value_pairs"]
