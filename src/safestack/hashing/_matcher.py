"""Matching an image's hashes against the enabled banks, from an in-memory index.

The matcher loads every enabled bank's entries from the store once and rebuilds when the store's
banks version changes (checked at most every ``check_every_s`` seconds), so replicas sharing a
database pick up an import or a disabled bank within seconds and lookups never touch the
database. It fails closed: if the index cannot be (re)built, :meth:`HashMatcher.match` raises,
and the caller refuses the image — it never answers "no match" on an error.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from safestack.hashing._index import PDQIndex, pdq_codes
from safestack.hashing._types import (
    PDQ_MATCH_DISTANCE,
    PDQ_MIN_QUALITY,
    Action,
    HashType,
    ImageHashes,
    Match,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from safestack.store import BankEntry, Store

__all__ = ["HashMatcher"]


@dataclass(frozen=True)
class _Bank:
    id: str
    name: str
    actions: frozenset[Action]


@dataclass
class _Snapshot:
    version: tuple[int, str]
    exact: dict[tuple[str, str], tuple[_Bank, str]] = field(default_factory=dict)
    pdq_banks: list[_Bank] = field(default_factory=list)
    pdq_values: list[str] = field(default_factory=list)
    index: PDQIndex | None = None

    @property
    def size(self) -> int:
        return len(self.exact) + len(self.pdq_values)


class HashMatcher:
    """Known-bad media lookups over the store's enabled banks.

    Exact SHA-256 and MD5 first (a dictionary lookup); then PDQ over every frame whose quality is
    at least ``min_quality``, within ``max_distance`` (31 by default, PDQ's published operating
    point). Frames below the quality floor (near-flat images, whose PDQ says little) are matched
    by their exact hashes only. Thread-safe: lookups read an immutable snapshot.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_distance: int = PDQ_MATCH_DISTANCE,
        min_quality: int = PDQ_MIN_QUALITY,
        check_every_s: float = 2.0,
    ) -> None:
        self.store = store
        self.max_distance = max_distance
        self.min_quality = min_quality
        self.check_every_s = check_every_s
        self._snapshot: _Snapshot | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        size = self._snapshot.size if self._snapshot else "not loaded"
        return f"HashMatcher(entries={size}, max_distance={self.max_distance})"

    def refresh(self, *, force: bool = False) -> None:
        """Rebuild the index if the banks changed (or ``force``); raises if the store fails."""
        with self._lock:
            version = self.store.hash_banks_version()
            self._checked_at = time.monotonic()
            if not force and self._snapshot is not None and self._snapshot.version == version:
                return
            self._snapshot = _build(version, self.store.enabled_hash_entries(), self.max_distance)

    def invalidate(self) -> None:
        """Check the store's banks version at the next lookup (after a change made here)."""
        self._checked_at = float("-inf")

    def _current(self) -> _Snapshot:
        if self._snapshot is None or time.monotonic() - self._checked_at >= self.check_every_s:
            self.refresh()
        assert self._snapshot is not None
        return self._snapshot

    def match(self, hashes: ImageHashes) -> Match | None:
        """The first bank entry ``hashes`` match (exact before perceptual), or None."""
        snapshot = self._current()
        exact: tuple[tuple[HashType, str], ...] = (
            ("sha256", hashes.sha256),
            ("md5", hashes.md5),
        )
        for hash_type, value in exact:
            found = snapshot.exact.get((hash_type, value))
            if found is not None:
                bank, stored = found
                return Match(bank.name, bank.id, hash_type, stored, None, bank.actions)
        if snapshot.index is None:
            return None
        frames = hashes.frame_pdq or ((hashes.pdq, hashes.quality),)
        best: tuple[int, int] | None = None
        for pdq, quality in frames:
            if quality < self.min_quality:
                continue
            hit = snapshot.index.nearest(pdq)
            if hit is not None and (best is None or hit[1] < best[1]):
                best = hit
        if best is None:
            return None
        position, distance = best
        bank = snapshot.pdq_banks[position]
        return Match(
            bank.name, bank.id, "pdq", snapshot.pdq_values[position], distance, bank.actions
        )


def _build(version: tuple[int, str], entries: Iterable[BankEntry], max_distance: int) -> _Snapshot:
    snapshot = _Snapshot(version)
    banks: dict[str, _Bank] = {}
    for entry in entries:
        bank = banks.get(entry.bank_id)
        if bank is None:
            actions = frozenset(Action(a) for a in entry.actions)
            bank = banks[entry.bank_id] = _Bank(entry.bank_id, entry.bank, actions)
        if entry.hash_type == "pdq":
            snapshot.pdq_banks.append(bank)
            snapshot.pdq_values.append(entry.value)
        else:
            snapshot.exact.setdefault((entry.hash_type, entry.value), (bank, entry.value))
    if snapshot.pdq_values:
        snapshot.index = PDQIndex(pdq_codes(snapshot.pdq_values), max_distance=max_distance)
    return snapshot
