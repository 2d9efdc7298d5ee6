"""A disk cache of embeddings, keyed by embedder revision and text hash.

Training embeds ~20,000 texts (minutes on two cores); the cache makes a re-run, a leave-one-out
sweep or an experiment take seconds. Entries are immutable: a new embedder revision gets a new
folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from safestack.classify._embedding import Embedder, cache_root

__all__ = ["EmbeddingCache", "default_cache_dir", "text_key"]


def default_cache_dir() -> Path:
    return cache_root() / "embeddings"


def text_key(text: str) -> str:
    """A stable identifier of a text (used for the cache and to name held-out sets)."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


class EmbeddingCache:
    """``embed(texts)`` through ``embedder``, re-using every vector computed before."""

    def __init__(self, embedder: Embedder, root: Path | None = None) -> None:
        self.embedder = embedder
        revision = text_key(embedder.revision)[:16]
        self.folder = (root or default_cache_dir()) / revision
        self._index: dict[str, int] = {}
        self._vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        self._load()

    def _load(self) -> None:
        keys, vectors = self.folder / "keys.json", self.folder / "vectors.npy"
        if keys.is_file() and vectors.is_file():
            try:
                names = json.loads(keys.read_text())
                data = np.load(vectors)
            except (ValueError, OSError):
                return  # a broken cache is only a slower run
            if len(names) == len(data):
                self._index = {k: i for i, k in enumerate(names)}
                self._vectors = data

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        names = sorted(self._index, key=self._index.__getitem__)
        tmp = self.folder / "vectors.tmp.npy"
        np.save(tmp, self._vectors)
        tmp.replace(self.folder / "vectors.npy")
        (self.folder / "keys.json").write_text(json.dumps(names))

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> NDArray[np.float32]:
        keys = [text_key(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self._index}.items()
        )
        for start in range(0, len(missing), 512):
            chunk = missing[start : start + 512]
            vectors = self.embedder.embed([t for _, t in chunk], batch_size=batch_size)
            base = len(self._vectors)
            self._vectors = np.vstack([self._vectors, vectors])
            for j, (k, _) in enumerate(chunk):
                self._index[k] = base + j
            self._save()
            if progress is not None:
                progress(len(chunk))
        return self._vectors[[self._index[k] for k in keys]]
