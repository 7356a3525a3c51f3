"""Near-duplicate paragraphs (syndicated copies across outlets): exact normalised-text hash, then MinHash/LSH
candidates verified by exact word-3-shingle Jaccard."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

JACCARD = 0.8
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Case-, accent-width-, punctuation- and whitespace-insensitive form of a paragraph."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", text).split())


def shingles(text: str, k: int = 3) -> set[str]:
    """Word k-shingles of the normalised text (the whole text when it is shorter than k words)."""
    words = normalise(text).split()
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


_PRIME = np.uint64(4294967291)  # largest prime < 2**32: a*h + b stays below 2**64


class MinHasher:
    """MinHash signatures over 32-bit shingle hashes with `num_perm` universal hash functions (numpy)."""

    def __init__(self, num_perm: int = 64, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, int(_PRIME), size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, int(_PRIME), size=num_perm, dtype=np.uint64)
        self.num_perm = num_perm

    def signature(self, items: Iterable[str]) -> np.ndarray:
        hashes = np.fromiter((zlib.crc32(s.encode("utf-8")) for s in items), dtype=np.uint64)
        if hashes.size == 0:
            return np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        return ((hashes[:, None] * self.a[None, :] + self.b[None, :]) % _PRIME).min(axis=0)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:  # the smaller index stays the root: earlier texts represent their cluster
            self.parent[max(a, b)] = min(a, b)


def near_duplicate_clusters(
    texts: Sequence[str], threshold: float = JACCARD, k: int = 3, num_perm: int = 64, bands: int = 16, seed: int = 1
) -> list[int]:
    """For each text, the index of its cluster's representative (the earliest member).

    Identical normalised texts join directly; other pairs become candidates when their MinHash signatures
    share a band (16 bands × 4 rows: a pair at Jaccard 0.8 is found with probability > 0.99) and join when
    the exact shingle Jaccard is ≥ threshold.
    """
    n = len(texts)
    union = _UnionFind(n)
    by_norm: dict[str, int] = {}
    unique: list[int] = []
    for i, text in enumerate(texts):
        key = hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()
        if key in by_norm:
            union.union(by_norm[key], i)
        else:
            by_norm[key] = i
            unique.append(i)
    if num_perm % bands:
        raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
    rows = num_perm // bands
    hasher = MinHasher(num_perm, seed)
    sets = {i: shingles(texts[i], k) for i in unique}
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for i in unique:
        if len(sets[i]) < 2:  # a text of < k+1 words: only its exact copies are duplicates
            continue
        signature = hasher.signature(sets[i])
        for band in range(bands):
            buckets[(band, signature[band * rows : (band + 1) * rows].tobytes())].append(i)
    checked: set[tuple[int, int]] = set()
    for members in buckets.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                pair = (members[x], members[y])
                if pair in checked:
                    continue
                checked.add(pair)
                if jaccard(sets[pair[0]], sets[pair[1]]) >= threshold:
                    union.union(*pair)
    return [union.find(i) for i in range(n)]
