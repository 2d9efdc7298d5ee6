"""Faces in an image and their 128-number descriptors, from dlib's public-domain models.

The pipeline is dlib's: a HOG frontal-face detector finds faces, a 5-point landmark model aligns
each one, and a ResNet turns the aligned face into a descriptor whose Euclidean distance to
another face's descriptor says whether the two are the same person (below 0.6 on dlib's LFW
benchmark). The two model files come from the ``face_recognition_models`` package (the optional
``faces`` extra) and are checked against pinned SHA-256 digests before use; the package's
68-point landmark model is never opened (its training data's terms exclude commercial use).
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from safestack.errors import ArtifactError
from safestack.media import DecodedImage

__all__ = [
    "DESCRIPTOR_SIZE",
    "FACE_MODELS",
    "REFERENCE_MIN_SCORE",
    "Face",
    "FaceEmbedder",
    "FaceModelFile",
]

#: Numbers in one face descriptor.
DESCRIPTOR_SIZE = 128
#: Detector score a reference photo's face needs. Weak detections (a mission patch on the
#: astronaut's suit scores 0.1, her face 1.6) are ignored when counting a reference photo's
#: faces; matching still compares every detection, since a false face matches nobody.
REFERENCE_MIN_SCORE = 0.5
_EXTRA_HINT = "pip install 'safestack[faces]' (installs face_recognition_models==0.3.0)"


@dataclass(frozen=True, slots=True)
class FaceModelFile:
    """One model file of the ``face_recognition_models`` package, pinned by its digest."""

    filename: str
    sha256: str
    role: str


#: The only files used; ``shape_predictor_68_face_landmarks.dat`` (non-commercial terms) is not.
FACE_MODELS = (
    FaceModelFile(
        "shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        "5-point landmarks that align a face for the descriptor network",
    ),
    FaceModelFile(
        "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        "ResNet face descriptor network (128 numbers per face)",
    ),
)


@dataclass(frozen=True, slots=True)
class Face:
    """A face found in one frame: where it is, how sure the detector was, its descriptor.

    ``box`` is ``(left, top, right, bottom)`` in the frame's own pixels (after EXIF orientation),
    clipped to the frame. ``score`` is the HOG detector's margin: above 0 is a detection, and
    larger values are more face-like.
    """

    frame: int
    box: tuple[int, int, int, int]
    score: float
    descriptor: NDArray[np.float32]


def _models_dir() -> Path:
    """Where ``face_recognition_models`` keeps its files, found without importing it.

    Importing the package would import ``pkg_resources``, which warns (and is gone from recent
    setuptools); only the data files are needed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            f"face matching needs the dlib face models, which are not installed: {_EXTRA_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _verified(directory: Path, model: FaceModelFile) -> str:
    path = directory / model.filename
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read face model {path}: {exc}; {_EXTRA_HINT}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise ArtifactError(
            f"face model {path} has SHA-256 {digest}, expected {model.sha256}: a different or "
            f"corrupted file; reinstall with {_EXTRA_HINT}"
        )
    return str(path)


@dataclass(frozen=True, slots=True)
class _Models:
    detector: Any
    landmarks: Any
    descriptor: Any


class FaceEmbedder:
    """Finds faces in every frame of an image and describes each with 128 numbers.

    The models load on first use (about 0.5 s and 35 MB), never at construction. dlib's objects
    are not documented as safe to share between threads (the descriptor network keeps its
    working buffers in the object), so one lock serialises the work of an embedder; a process
    that needs more throughput uses several embedders.

    Speed and reach, on the 2-core machine the card was measured on (HOG detection runs at
    roughly 0.2 µs per pixel, each face's descriptor costs about 0.15 s):

    * Frames larger than ``max_side`` pixels on their longer side are scaled down before
      detection: the cost of detection grows with pixels, and the detector needs only about
      80 × 80 pixels per face, so a face that fills less than ``80 / max_side`` of a large
      photo's side is missed.
    * Frames smaller than ``upsample_below`` in which no face was found are searched once more
      at twice the size (three times the cost), which finds faces down to about 40 × 40 pixels.
      Upsampling also finds more false faces (a patch on a sleeve in the astronaut photograph);
      a false face costs a descriptor but matches nobody, so it is tolerable for matching, and
      reference photos with a clear face never reach the second pass.
    """

    def __init__(self, *, max_side: int = 1024, upsample_below: int = 800) -> None:
        if max_side < 160:
            raise ValueError(f"max_side={max_side} is too small to find faces; use at least 160")
        self.max_side = max_side
        self.upsample_below = upsample_below
        self._lock = threading.Lock()
        self._models: _Models | None = None

    def __repr__(self) -> str:
        return f"FaceEmbedder(max_side={self.max_side}, upsample_below={self.upsample_below})"

    def load(self) -> None:
        """Load the models now (otherwise the first image does), e.g. at a server's start."""
        with self._lock:
            self._load()

    def _load(self) -> _Models:
        if self._models is None:
            try:
                import dlib
            except ImportError as exc:
                raise ArtifactError(
                    f"face matching needs dlib, which cannot be imported ({exc}); install the "
                    f"'dlib-bin' wheel and the dlib face models: {_EXTRA_HINT}"
                ) from exc
            directory = _models_dir()
            landmarks, descriptor = (_verified(directory, model) for model in FACE_MODELS)
            self._models = _Models(
                detector=dlib.get_frontal_face_detector(),
                landmarks=dlib.shape_predictor(landmarks),
                descriptor=dlib.face_recognition_model_v1(descriptor),
            )
        return self._models

    def faces(self, image: DecodedImage) -> list[Face]:
        """Every face in every frame of ``image`` (identical consecutive frames once).

        An animated image is searched frame by frame: a face shown in one frame only is a face
        in the image. Frames identical to the one before are skipped (still GIFs saved as
        animations, pauses), and their faces are not repeated.
        """
        found: list[Face] = []
        previous: bytes | None = None
        for index, frame in enumerate(image.frames):
            pixels = np.ascontiguousarray(np.asarray(frame.convert("RGB"), dtype=np.uint8))
            digest = hashlib.blake2b(pixels.tobytes(), digest_size=16).digest()
            if digest == previous:
                continue
            previous = digest
            found.extend(self.frame_faces(pixels, frame=index))
        return found

    def frame_faces(self, pixels: NDArray[np.uint8], *, frame: int = 0) -> list[Face]:
        """The faces of one ``H × W × 3`` uint8 RGB frame."""
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError(
                f"expected an H×W×3 uint8 RGB array, got {pixels.dtype} {pixels.shape}"
            )
        height, width = pixels.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        work = pixels
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            resized = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)
            work = np.ascontiguousarray(np.asarray(resized, dtype=np.uint8))
        with self._lock:
            models = self._load()
            rects, scores, _ = models.detector.run(work, 0, 0.0)
            if not rects and max(height, width) < self.upsample_below:
                rects, scores, _ = models.detector.run(work, 1, 0.0)
            faces = []
            for rect, score in zip(rects, scores, strict=True):
                shape = models.landmarks(work, rect)
                vector = models.descriptor.compute_face_descriptor(work, shape)
                faces.append(
                    Face(
                        frame=frame,
                        box=_box(rect, scale, width, height),
                        score=float(score),
                        descriptor=np.asarray(vector, dtype=np.float32),
                    )
                )
        return faces


def _box(rect: Any, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A dlib rectangle in the detection image as a clipped box in the frame's pixels."""
    left = min(max(0, round(rect.left() / scale)), width)
    top = min(max(0, round(rect.top() / scale)), height)
    right = min(max(0, round((rect.right() + 1) / scale)), width)
    bottom = min(max(0, round((rect.bottom() + 1) / scale)), height)
    return (left, top, right, bottom)
