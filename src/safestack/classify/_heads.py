"""Small trained heads over sentence embeddings, stored as hash-checked ``.npz`` artefacts.

A head is a stack of dense layers (ReLU between them) ending in a sigmoid (one output: binary) or
a softmax (several: one class each). Inference is plain numpy, so serving needs no scikit-learn
and no pickle: an artefact holds only arrays and a JSON header, and a corrupted or swapped file
fails its SHA-256 check instead of being unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from safestack.errors import ArtifactError

__all__ = ["Head", "HeadBundle", "file_sha256"]

FORMAT = "safestack-heads/1"


@dataclass(frozen=True)
class Head:
    """Dense layers ending in sigmoid (binary) or softmax (``classes`` with 2+ entries)."""

    weights: tuple[NDArray[np.float32], ...]
    biases: tuple[NDArray[np.float32], ...]
    classes: tuple[str, ...]

    @classmethod
    def from_sklearn(cls, model: Any, classes: list[str] | None = None) -> Head:
        """Copy the learned arrays out of a fitted LogisticRegression or MLPClassifier."""
        if hasattr(model, "coefs_"):  # MLPClassifier
            weights = tuple(np.asarray(w, dtype=np.float32) for w in model.coefs_)
            biases = tuple(np.asarray(b, dtype=np.float32) for b in model.intercepts_)
            if getattr(model, "activation", "relu") != "relu":
                raise ValueError("only ReLU hidden layers are supported")
        else:  # LogisticRegression
            weights = (np.asarray(model.coef_, dtype=np.float32).T,)
            biases = (np.asarray(model.intercept_, dtype=np.float32),)
        names = classes if classes is not None else [str(c) for c in model.classes_]
        return cls(weights, biases, tuple(names))

    def predict_proba(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Binary heads: P(positive) per row. Multi-class heads: one column per class."""
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        if h.shape[1] == 1:
            out: NDArray[np.float32] = (1.0 / (1.0 + np.exp(-h[:, 0]))).astype(np.float32)
            return out
        e = np.exp(h - h.max(axis=1, keepdims=True))
        probs: NDArray[np.float32] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return probs


@dataclass
class HeadBundle:
    """The heads of one classifier plus the metadata needed to trust them."""

    heads: dict[str, Head]
    meta: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None  # of the file it was loaded from or saved to

    def to_bytes(self) -> bytes:
        arrays: dict[str, NDArray[Any]] = {}
        layout: dict[str, Any] = {}
        for name, head in self.heads.items():
            layout[name] = {"layers": len(head.weights), "classes": list(head.classes)}
            for i, (w, b) in enumerate(zip(head.weights, head.biases, strict=True)):
                arrays[f"{name}.w{i}"] = w
                arrays[f"{name}.b{i}"] = b
        header = {"format": FORMAT, "heads": layout, "meta": self.meta}
        arrays["__header__"] = np.frombuffer(
            json.dumps(header, sort_keys=True).encode(), dtype=np.uint8
        )
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    def save(self, path: str | Path) -> str:
        """Write the bundle and return its SHA-256 (record it in the manifest)."""
        data = self.to_bytes()
        Path(path).write_bytes(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        return self.sha256

    @classmethod
    def load(cls, path: str | Path, *, sha256: str | None = None) -> HeadBundle:
        """Read a bundle, refusing it if its hash differs from ``sha256``."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactError(
                f"head file {path} is missing; rebuild it with `safestack train` or reinstall"
            ) from None
        except OSError as exc:
            raise ArtifactError(f"cannot read head file {path}: {exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and digest != sha256:
            raise ArtifactError(
                f"head file {path} fails its hash check (sha256 {digest[:12]}…, expected "
                f"{sha256[:12]}…): it is corrupted or was replaced; rebuild it with "
                "`safestack train` or reinstall safestack"
            )
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                header = json.loads(bytes(archive["__header__"]).decode())
                if header.get("format") != FORMAT:
                    raise ArtifactError(f"{path}: unknown head format {header.get('format')!r}")
                heads = {}
                for name, spec in header["heads"].items():
                    n = int(spec["layers"])
                    heads[name] = Head(
                        tuple(archive[f"{name}.w{i}"] for i in range(n)),
                        tuple(archive[f"{name}.b{i}"] for i in range(n)),
                        tuple(spec["classes"]),
                    )
        except ArtifactError:
            raise
        except Exception as exc:  # zip, JSON and key errors all mean one thing: unreadable
            raise ArtifactError(f"head file {path} is unreadable: {exc}") from exc
        return cls(heads, header.get("meta", {}), digest)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
