"""Train/test splits that keep every variant of one source item on the same side.

A random split of safety data leaks: AdvBench alone holds dozens of bomb-making rewordings, and
StrongREJECT re-uses AdvBench prompts. Items are first grouped by their source item (``group``),
then groups whose texts are near-duplicates in embedding space are merged; whole components go to
one side, chosen by a hash of the component's key and the seed, so the split is fixed by the seed
and does not depend on the order the data was read in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["grouped_split", "near_duplicate_components"]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_components(
    groups: Sequence[str],
    embeddings: NDArray[np.float32],
    *,
    threshold: float = 0.9,
    block: int = 2048,
) -> list[str]:
    """Component key of every item: its group, merged with groups of near-duplicate texts.

    ``embeddings`` must be L2-normalised; two items are near-duplicates when their cosine
    similarity reaches ``threshold``.
    """
    if len(groups) != len(embeddings):
        raise ValueError(f"{len(groups)} groups but {len(embeddings)} embeddings")
    names = sorted(set(groups))
    index = {g: i for i, g in enumerate(names)}
    uf = _UnionFind(len(names))
    item_group = np.array([index[g] for g in groups])
    for start in range(0, len(embeddings), block):
        sims = embeddings[start : start + block] @ embeddings.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows + start, cols, strict=True):
            if r < c:
                uf.union(int(item_group[r]), int(item_group[c]))
    return [names[uf.find(int(g))] for g in item_group]


def grouped_split(
    components: Sequence[str], *, test_fraction: float = 0.2, seed: int = 0
) -> NDArray[np.bool_]:
    """``True`` for the items whose component falls in the test side."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    cut = int(test_fraction * 10_000)

    def is_test(key: str) -> bool:
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % 10_000 < cut

    decided: dict[str, bool] = {}
    return np.array([decided.setdefault(k, is_test(k)) for k in components], dtype=bool)
