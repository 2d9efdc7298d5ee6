"""Nearest known-bad PDQ hash within a Hamming radius, at millions of hashes.

Small banks are scanned exactly (faiss ``IndexBinaryFlat``: a SIMD popcount over every code).
From ``MULTI_INDEX_FROM`` codes on, :class:`PDQIndex` uses multi-index hashing (Norouzi et al.,
"Fast search in Hamming space with multi-index hashing", CVPR 2012), sized to the bank:

* the 256 bits are cut into ``m`` substrings of ``b ≈ log2(n)`` bits, so a table key selects
  about one code;
* by the pigeonhole principle, a code within distance ``r`` of the query agrees with it on some
  substring up to ``⌊r / m⌋`` bits, so probing every table with the query's substring and all
  its neighbours within that many bits finds *every* code within ``r``: the index is exact, not
  approximate (``bench/hashing.py`` checks it against a full scan);
* each table is a sorted array of keys with the code positions beside it (8 bytes per code per
  table, no hash-map overhead), probed with one vectorised binary search per table; candidates
  are verified with a popcount.

At 10 M codes and ``r = 31`` that is 11 tables of 23 bits, 277 probes per table, and a few
thousand candidates per query. (faiss's ``IndexBinaryMultiHash`` was measured first: its fixed
16-bit tables hold ~150 codes per bucket at 10 M and answered in ~50 ms; wider tables in it cost
~1 GB of hash-map overhead per million codes.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import faiss
import numpy as np
from numpy.typing import NDArray

from safestack.errors import InputError

__all__ = ["MULTI_INDEX_FROM", "PDQIndex", "pdq_codes"]

#: Below this many codes an exact scan is about as fast as the tables and cheaper to build.
MULTI_INDEX_FROM = 200_000
_BITS = 256
_CHUNK = 1 << 20


def pdq_codes(hex_hashes: Sequence[str]) -> NDArray[np.uint8]:
    """PDQ hex strings as an ``n × 32`` array of bytes (faiss's binary code layout)."""
    try:
        joined = bytes.fromhex("".join(hex_hashes))
    except ValueError as exc:
        raise InputError(f"not a PDQ hex hash: {exc}") from None
    if len(joined) != 32 * len(hex_hashes):
        raise InputError("every PDQ hash is 64 hex digits")
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(hex_hashes), 32)


def _layout(n: int, max_distance: int) -> tuple[int, int, int]:
    """``(bits per table, tables, flips)`` for ``n`` codes: exact within ``max_distance``."""
    bits = min(32, max(16, round(math.log2(max(n, 2)))))
    tables = _BITS // bits
    return bits, tables, max_distance // tables


class PDQIndex:
    """An immutable index over PDQ codes; :meth:`nearest` finds the closest within a radius.

    Positions are those of the codes given to the constructor, so the caller keeps its own
    metadata in a list alongside. Thread-safe for concurrent searches (nothing is mutated).
    """

    def __init__(self, codes: NDArray[np.uint8], *, max_distance: int = 31) -> None:
        if codes.ndim != 2 or codes.shape[1] != _BITS // 8 or codes.dtype != np.uint8:
            raise InputError(f"PDQ codes must be an n × 32 uint8 array, got {codes.shape}")
        if not 0 <= max_distance < _BITS:
            raise InputError(f"max_distance must be 0–255, got {max_distance}")
        self.max_distance = max_distance
        self.size = int(codes.shape[0])
        self.kind = "flat" if self.size < MULTI_INDEX_FROM else "multi-index"
        if self.kind == "flat":
            self._flat = faiss.IndexBinaryFlat(_BITS)
            if self.size:
                self._flat.add(np.ascontiguousarray(codes))
            return
        self.bits, self.tables, self.flips = _layout(self.size, max_distance)
        # Big-endian 64-bit words: popcount of XOR is the Hamming distance.
        self._words = np.ascontiguousarray(codes).view(">u8").astype(np.uint64)
        # Per table, the code positions sorted by key (flattened: table t occupies
        # [t·n, (t+1)·n)) and, for every key, where its run starts: a bucket is two reads.
        n, buckets = self.size, 1 << self.bits
        # 32-bit offsets halve the memory (and the cache lines a lookup touches).
        offset = np.int32 if self.tables * n < 2**31 else np.int64
        self._positions = np.empty(self.tables * n, dtype=offset)
        self._starts = np.empty((self.tables, buckets + 1), dtype=offset)
        for table in range(self.tables):
            keys = np.empty(n, dtype=np.uint32)
            for chunk in range(0, n, _CHUNK):
                keys[chunk : chunk + _CHUNK] = self._keys(codes[chunk : chunk + _CHUNK], table)
            order = np.argsort(keys, kind="stable")
            self._positions[table * n : (table + 1) * n] = order
            counts = np.bincount(keys, minlength=buckets)
            self._starts[table, 0] = table * n
            self._starts[table, 1:] = np.cumsum(counts) + table * n
            del keys, order, counts
        masks = [0]
        for flips in range(1, self.flips + 1):
            for chosen in itertools.combinations(range(self.bits), flips):
                masks.append(sum(1 << bit for bit in chosen))
        self._masks = np.array(masks, dtype=np.int64)
        self._rows = np.arange(self.tables)[:, None]

    def _keys(self, codes: NDArray[np.uint8], table: int) -> NDArray[np.uint32]:
        """Each code's ``table``-th substring of ``bits`` bits, as an integer."""
        bits = np.unpackbits(codes[:, : (table + 1) * self.bits // 8 + 1], axis=1)
        window = bits[:, table * self.bits : (table + 1) * self.bits]
        key = np.zeros(len(codes), dtype=np.uint32)
        for column in range(self.bits):
            key = (key << np.uint32(1)) | window[:, column]
        return key

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        layout = (
            f", tables={self.tables}x{self.bits} bits, flips={self.flips}"
            if self.kind == "multi-index"
            else ""
        )
        return (
            f"PDQIndex(size={self.size}, kind={self.kind!r}, "
            f"max_distance={self.max_distance}{layout})"
        )

    def nearest(self, query_hex: str) -> tuple[int, int] | None:
        """``(position, distance)`` of the closest code within ``max_distance``, else None."""
        if not self.size:
            return None
        query = pdq_codes([query_hex])
        if self.kind == "flat":
            # One query is one scan: with more than one OpenMP thread, faiss still starts a
            # team, and on a busy 2-core machine p99 became a whole scheduler slice (24 ms vs
            # 0.5 ms, BENCHMARKS.md). The setting is per calling thread, so it is restored.
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                # faiss counts distances strictly below the radius.
                lims, distances, labels = self._flat.range_search(query, self.max_distance + 1)
            finally:
                faiss.omp_set_num_threads(threads)
            if lims[1] == 0:
                return None
            best = int(np.argmin(distances[: lims[1]]))
            return int(labels[best]), int(distances[best])
        value, mask = int(query_hex, 16), (1 << self.bits) - 1
        keys = np.array(
            [(value >> (_BITS - (t + 1) * self.bits)) & mask for t in range(self.tables)],
            dtype=np.int64,
        )
        probes = keys[:, None] ^ self._masks[None, :]  # tables × probes
        starts = self._starts[self._rows, probes].ravel()
        lengths = self._starts[self._rows, probes + 1].ravel() - starts
        hit = lengths > 0
        if not hit.any():
            return None
        starts, lengths = starts[hit], lengths[hit]
        total = int(lengths.sum())
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        candidates = self._positions[offsets + np.arange(total)]
        # A code seen in several tables is simply scored several times: cheaper than de-duping.
        found = candidates
        query_words = query.view(">u8").astype(np.uint64)[0]
        distances = np.bitwise_count(self._words[found] ^ query_words).sum(axis=1)
        best = int(np.argmin(distances))
        if distances[best] > self.max_distance:
            return None
        return int(found[best]), int(distances[best])
