"""Nearest known-bad PDQ hash within a Hamming radius, at millions of hashes.

Small banks are scanned exactly (faiss ``IndexBinaryFlat``: a SIMD popcount over every code).
From ``MULTI_HASH_FROM`` codes on, the index is multi-index hashing (faiss
``IndexBinaryMultiHash``): the 256 bits are cut into 16 substrings of 16 bits, each a hash
table. By the pigeonhole principle, two codes within distance 31 agree on some substring up to
one bit (16 substrings × 2 bits = 32 > 31), so probing every table with the query's substring and
its 16 one-bit neighbours (``nflip = 1``) finds *every* code within 31: the index is exact at the
default radius, not approximate. Larger radii would need more flips; :class:`PDQIndex` raises
the flips to keep exactness (at a cost measured in ``bench/hashing.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np
from numpy.typing import NDArray

from safestack.errors import InputError

__all__ = ["MULTI_HASH_FROM", "PDQIndex", "pdq_codes"]

#: Below this many codes an exact scan is as fast as the tables and far cheaper to build.
MULTI_HASH_FROM = 200_000
_BITS = 256
_TABLES = 16
_TABLE_BITS = _BITS // _TABLES


def pdq_codes(hex_hashes: Sequence[str]) -> NDArray[np.uint8]:
    """PDQ hex strings as an ``n × 32`` array of bytes (faiss's binary code layout)."""
    try:
        joined = bytes.fromhex("".join(hex_hashes))
    except ValueError as exc:
        raise InputError(f"not a PDQ hex hash: {exc}") from None
    if len(joined) != 32 * len(hex_hashes):
        raise InputError("every PDQ hash is 64 hex digits")
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(hex_hashes), 32)


@dataclass(frozen=True)
class _Hit:
    position: int
    distance: int


class PDQIndex:
    """An immutable index over PDQ codes; :meth:`nearest` finds the closest within a radius.

    Positions are those of the codes given to the constructor, so the caller keeps its own
    metadata in a list alongside. Thread-safe for concurrent searches (faiss searches do not
    mutate the index).
    """

    def __init__(self, codes: NDArray[np.uint8], *, max_distance: int = 31) -> None:
        if codes.ndim != 2 or codes.shape[1] != _BITS // 8 or codes.dtype != np.uint8:
            raise InputError(f"PDQ codes must be an n × 32 uint8 array, got {codes.shape}")
        if not 0 <= max_distance < _BITS:
            raise InputError(f"max_distance must be 0–255, got {max_distance}")
        self.max_distance = max_distance
        self.size = int(codes.shape[0])
        self.kind = "flat" if self.size < MULTI_HASH_FROM else "multi-hash"
        index: faiss.IndexBinary
        if self.kind == "flat":
            index = faiss.IndexBinaryFlat(_BITS)
        else:
            index = faiss.IndexBinaryMultiHash(_BITS, _TABLES, _TABLE_BITS)
            # Exact within max_distance: some table agrees up to floor(max_distance / 16) bits.
            index.nflip = max_distance // _TABLES
        if self.size:
            index.add(np.ascontiguousarray(codes))
        self._index = index

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"PDQIndex(size={self.size}, kind={self.kind!r}, max_distance={self.max_distance})"

    def nearest(self, query_hex: str) -> tuple[int, int] | None:
        """``(position, distance)`` of the closest code within ``max_distance``, else None."""
        if not self.size:
            return None
        query = pdq_codes([query_hex])
        # faiss counts distances strictly below the radius.
        lims, distances, labels = self._index.range_search(query, self.max_distance + 1)
        if lims[1] == 0:
            return None
        best = int(np.argmin(distances[: lims[1]]))
        return int(labels[best]), int(distances[best])
