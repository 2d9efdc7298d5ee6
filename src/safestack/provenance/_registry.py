"""The registry of released images, and its in-memory lookup indexes.

Records live in the store (one row per image, any number of replicas writing); lookups by exact
SHA-256 and by manifest label are indexed database queries. The two near-match signals are
searched in memory:

* PDQ hashes through :class:`~safestack.hashing.PDQIndex`, the same binary nearest-neighbour
  index as the known-bad hash banks (exact multi-index hashing from 200,000 records on), plus a
  small linear *tail* of records added since the index was built, rebuilt into it when it grows;
* watermark payloads (64 or 32 bits) by a vectorised popcount over all of them, which stays
  around a millisecond at a million records.

Before every lookup the registry reads the rows after the last one it has seen (an indexed range
query that is usually empty), so an image registered by another replica is found at once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from safestack.hashing import PDQ_MATCH_DISTANCE, PDQ_MIN_QUALITY, PDQIndex, pdq_codes
from safestack.store import NewProvenanceRecord, ProvenanceIndexEntry, ProvenanceRecord, Store

__all__ = ["Registry"]

log = logging.getLogger("safestack.provenance")

#: Records kept in the linear tail before it is folded into a rebuilt PDQ index.
#: The tail is scanned linearly: at 20,000 it cost 8–13 ms per lookup against 2–4.5 ms for the
#: index (BENCHMARKS.md); 5,000 keeps it near the index's cost without rebuilding too often.
_TAIL_LIMIT = 5_000


@dataclass
class _Payloads:
    """The watermark payloads of one method, as integers beside their record positions."""

    seqs: list[int] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    _array: NDArray[np.uint64] | None = None

    def add(self, seq: int, value: int) -> None:
        self.seqs.append(seq)
        self.values.append(value)
        self._array = None

    def nearest(self, value: int) -> tuple[int, int] | None:
        if not self.values:
            return None
        if self._array is None:
            self._array = np.array(self.values, dtype=np.uint64)
        distances = np.bitwise_count(self._array ^ np.uint64(value))
        best = int(np.argmin(distances))
        return self.seqs[best], int(distances[best])


class Registry:
    """Records released images and finds them again by hash, manifest, watermark or PDQ.

    ``pdq_max_distance`` is the PDQ radius of a perceptual match (31 of 256 bits, PDQ's
    published operating point). Thread-safe.
    """

    def __init__(self, store: Store, *, pdq_max_distance: int = PDQ_MATCH_DISTANCE) -> None:
        self.store = store
        self.pdq_max_distance = pdq_max_distance
        self._lock = threading.Lock()
        self._last_seq = 0
        self._pdq_index: PDQIndex | None = None
        self._pdq_seqs: list[int] = []  # the record of each position of the index
        self._index_codes = b""  # the index's codes, 32 bytes each, to rebuild it
        self._tail_codes: list[bytes] = []
        self._tail_seqs: list[int] = []
        self._tail_words: NDArray[np.uint64] | None = None
        self._payloads: dict[str, _Payloads] = {}
        self._loaded = False
        self._folding: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Registry(store={self.store.url!r}, last_seq={self._last_seq})"

    # -- writing ----------------------------------------------------------------------------------

    def register(self, record: NewProvenanceRecord) -> ProvenanceRecord:
        """Store ``record`` (raising if the store cannot) and index it at once."""
        stored = self.store.register_image(record)
        with self._lock:
            if self._loaded:
                self._catch_up()
        return stored

    # -- reading ----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Index the records other processes registered since the last call."""
        with self._lock:
            self._catch_up()

    def _catch_up(self) -> None:
        for entry in self.store.provenance_index_entries(after_seq=self._last_seq):
            self._add(entry)
        self._loaded = True
        if len(self._tail_seqs) > _TAIL_LIMIT and self._folding is None:
            # Building the index takes seconds at a million records (BENCHMARKS.md): it happens
            # in the background while lookups keep using the old index and the whole tail.
            snapshot = self._snapshot()
            self._folding = threading.Thread(
                target=self._fold, args=snapshot, name="provenance-index", daemon=True
            )
            self._folding.start()

    def _add(self, entry: ProvenanceIndexEntry) -> None:
        self._last_seq = max(self._last_seq, entry.seq)
        if entry.pdq is not None and (entry.pdq_quality or 0) >= PDQ_MIN_QUALITY:
            self._tail_codes.append(bytes.fromhex(entry.pdq))
            self._tail_seqs.append(entry.seq)
            self._tail_words = None
        if entry.watermark_method and entry.watermark_payload:
            payloads = self._payloads.setdefault(entry.watermark_method, _Payloads())
            payloads.add(entry.seq, int(entry.watermark_payload, 16))

    def _snapshot(self) -> tuple[bytes, list[int], int]:
        """The codes and records of a new index (the old one's plus the tail's), and how many
        tail entries it takes in; called under the lock."""
        codes = self._index_codes + b"".join(self._tail_codes)
        return codes, self._pdq_seqs + self._tail_seqs, len(self._tail_seqs)

    def _fold(self, codes: bytes, seqs: list[int], folded: int) -> None:
        """Build an index over ``codes`` and swap it in, dropping the tail entries it covers."""
        try:
            array = np.frombuffer(codes, dtype=np.uint8).reshape(-1, 32)
            index = PDQIndex(array, max_distance=self.pdq_max_distance)
        except Exception:  # the old index and the tail stay correct; the next refresh retries
            log.exception("rebuilding the provenance PDQ index failed")
            with self._lock:
                self._folding = None
            return
        with self._lock:
            if len(seqs) - folded == len(self._pdq_seqs):  # else another fold got there first
                self._pdq_index, self._index_codes, self._pdq_seqs = index, codes, seqs
                del self._tail_codes[:folded], self._tail_seqs[:folded]
                self._tail_words = None
            self._folding = None

    def _rebuild(self) -> None:
        """Fold the whole tail into the index now, in this thread (benchmarks and tests)."""
        with self._lock:
            snapshot = self._snapshot()
        self._fold(*snapshot)

    def by_sha256(self, sha256: str) -> ProvenanceRecord | None:
        return self.store.find_provenance(sha256=sha256)

    def by_manifest_label(self, label: str) -> ProvenanceRecord | None:
        return self.store.find_provenance(manifest_label=label)

    def by_seq(self, seq: int) -> ProvenanceRecord | None:
        return self.store.find_provenance(seq=seq)

    def by_id(self, record_id: str) -> ProvenanceRecord | None:
        return self.store.find_provenance(record_id=record_id)

    def watermark_population(self, method: str) -> int:
        """How many records carry a payload of ``method`` (what chance matches scale with)."""
        with self._lock:
            payloads = self._payloads.get(method)
            return 0 if payloads is None else len(payloads.values)

    def watermark_methods(self) -> list[str]:
        with self._lock:
            return sorted(self._payloads)

    def nearest_watermark(self, method: str, payload: int) -> tuple[int, int] | None:
        """``(seq, bit distance)`` of the registered ``method`` payload closest to ``payload``."""
        with self._lock:
            payloads = self._payloads.get(method)
            return None if payloads is None else payloads.nearest(payload)

    def nearest_pdq(self, hashes: list[str]) -> tuple[int, int] | None:
        """``(seq, distance)`` of the closest registered PDQ within the radius, over ``hashes``."""
        best: tuple[int, int] | None = None
        with self._lock:
            for value in hashes:
                hit = self._nearest_one(value)
                if hit is not None and (best is None or hit[1] < best[1]):
                    best = hit
        return best

    def _nearest_one(self, value: str) -> tuple[int, int] | None:
        best: tuple[int, int] | None = None
        if self._pdq_index is not None:
            found = self._pdq_index.nearest(value)
            if found is not None:
                best = (self._pdq_seqs[found[0]], found[1])
        if self._tail_codes:
            if self._tail_words is None:
                joined = np.frombuffer(b"".join(self._tail_codes), dtype=np.uint8)
                self._tail_words = joined.reshape(-1, 32).view(">u8").astype(np.uint64)
            query = pdq_codes([value]).view(">u8").astype(np.uint64)[0]
            distances = np.bitwise_count(self._tail_words ^ query).sum(axis=1)
            position = int(np.argmin(distances))
            distance = int(distances[position])
            if distance <= self.pdq_max_distance and (best is None or distance < best[1]):
                best = (self._tail_seqs[position], distance)
        return best
