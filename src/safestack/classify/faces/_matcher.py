"""Matching faces against the reference faces of people who opted out, and its classifier.

A match is the nearest reference descriptor within ``threshold`` (Euclidean distance) of any face
in any frame. See ``CARD.md`` beside this file for the threshold, what was measured and what
could not be.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from safestack.classify._protocol import ClassifierInput
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.classify.faces._embedder import FACE_MODELS, Face, FaceEmbedder
from safestack.errors import ClassifierError
from safestack.media import DecodedImage

if TYPE_CHECKING:
    from safestack.store import Store

__all__ = [
    "DEFAULT_THRESHOLD",
    "FaceMatch",
    "FaceReference",
    "OptOutFaceClassifier",
    "OptOutFaceMatcher",
    "default_embedder",
]

#: Stricter than dlib's 0.6, which is a 1:1 verification point on LFW: matching searches every
#: face against every opted-out person (1:N), so false matches grow with the registry. On the
#: LFW crops in CARD.md, 6.4% of face pairs fall below 0.6 and 0.3% below 0.5; edited copies of
#: one photograph stay below 0.27. Pass ``threshold=0.6`` for dlib's point (more recall).
DEFAULT_THRESHOLD = 0.5
CATEGORY = "privacy"
LABEL = "opted_out_person"
#: The verdict score at which the classifier flags (score 0.5 is distance == threshold).
_SCORE_THRESHOLD = 0.5

FaceReference = tuple[str, str, Sequence[Sequence[float]]]
"""``(opt_out_id, name, descriptors)``, as :meth:`safestack.store.Store.list_opt_out_faces`."""

_DEFAULT_EMBEDDER: FaceEmbedder | None = None
_DEFAULT_EMBEDDER_LOCK = threading.Lock()


def default_embedder() -> FaceEmbedder:
    """The process's shared embedder (its models load on first use, once per process)."""
    global _DEFAULT_EMBEDDER
    with _DEFAULT_EMBEDDER_LOCK:
        if _DEFAULT_EMBEDDER is None:
            _DEFAULT_EMBEDDER = FaceEmbedder()
        return _DEFAULT_EMBEDDER


@dataclass(frozen=True, slots=True)
class FaceMatch:
    """A face in an image that matches an opted-out person's reference face.

    ``distance`` is the Euclidean distance between the descriptors (0 is identical; the match
    threshold is 0.5 by default); ``frame`` and ``box`` locate the face in the image.
    """

    opt_out_id: str
    name: str
    distance: float
    frame: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Index:
    """Reference descriptors stacked into one matrix, with the opt-out each row belongs to."""

    matrix: NDArray[np.float32]  # n × 128
    owners: tuple[tuple[str, str], ...]  # (opt_out_id, name) per row

    @classmethod
    def build(cls, references: Iterable[FaceReference]) -> _Index:
        rows: list[NDArray[np.float32]] = []
        owners: list[tuple[str, str]] = []
        for opt_out_id, name, descriptors in references:
            for descriptor in descriptors:
                vector = np.asarray(descriptor, dtype=np.float32)
                if vector.ndim != 1 or (rows and vector.shape != rows[0].shape):
                    raise ValueError(
                        f"reference face of opt-out {opt_out_id!r} has shape {vector.shape}; "
                        f"expected {rows[0].shape if rows else '(n,)'}"
                    )
                rows.append(vector)
                owners.append((opt_out_id, name))
        matrix = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        return cls(matrix=matrix, owners=tuple(owners))


class OptOutFaceMatcher:
    """Compares the faces of an image with the reference faces of opted-out people.

    ``references`` are ``(opt_out_id, name, descriptors)``; :meth:`replace` swaps them for new
    ones atomically, so a matcher can be shared by threads while the registry changes.
    """

    def __init__(
        self,
        references: Iterable[FaceReference] = (),
        *,
        threshold: float = DEFAULT_THRESHOLD,
        embedder: FaceEmbedder | None = None,
    ) -> None:
        if not 0.0 < threshold < 2.0:
            raise ValueError(f"threshold={threshold} is not a descriptor distance in (0, 2)")
        self.threshold = threshold
        self.embedder = embedder or default_embedder()
        self._index = _Index.build(references)

    def __repr__(self) -> str:
        return f"OptOutFaceMatcher(references={self.n_references}, threshold={self.threshold})"

    @property
    def n_references(self) -> int:
        """Reference descriptors held (an opt-out may have several)."""
        return len(self._index.owners)

    def replace(self, references: Iterable[FaceReference]) -> None:
        """Use ``references`` from now on (built aside, then swapped in one assignment)."""
        self._index = _Index.build(references)

    def match(self, image: DecodedImage) -> FaceMatch | None:
        """The closest match of any face in any frame of ``image``, or ``None``.

        With no references, no face is searched for at all.
        """
        if not self.n_references:
            return None
        return self.match_faces(self.embedder.faces(image))

    def match_faces(self, faces: Sequence[Face]) -> FaceMatch | None:
        """The closest match among ``faces`` already found, or ``None``."""
        best, _ = self.nearest(faces)
        return best

    def nearest(self, faces: Sequence[Face]) -> tuple[FaceMatch | None, float | None]:
        """The match (if within the threshold) and the smallest distance seen (if any)."""
        index = self._index  # one read: a concurrent replace() does not mix two indexes
        if not faces or not index.owners:
            return None, None
        descriptors = np.stack([face.descriptor for face in faces])
        distances = np.linalg.norm(descriptors[:, None, :] - index.matrix[None, :, :], axis=2)
        face_at, row = np.unravel_index(int(np.argmin(distances)), distances.shape)
        distance = float(distances[face_at, row])
        if distance >= self.threshold:
            return None, distance
        face = faces[int(face_at)]
        opt_out_id, name = index.owners[int(row)]
        return FaceMatch(opt_out_id, name, distance, face.frame, face.box), distance


class OptOutFaceClassifier:
    """The opt-out face matcher as a classifier of images (registry name ``opt-out-faces``).

    Flags ``privacy`` with label ``opted_out_person`` when a face in an upload or an output is
    within ``threshold`` of a reference face of someone in the opt-out registry. The score is
    ``1 - distance / (2 * threshold)`` clipped to [0, 1], so 0.5 is the threshold: a monotone
    similarity, not a probability. The rationale names the opt-out by id, never by name, so that
    logs and refusals do not reveal who is in the registry.

    Built from the store with :meth:`from_store`; :meth:`refresh` re-reads the references (one
    query), and with ``max_age_s`` set, :meth:`classify` refreshes by itself when the references
    are older than that, so every replica sees a new opt-out face within ``max_age_s``.
    """

    def __init__(
        self,
        matcher: OptOutFaceMatcher,
        *,
        store: Store | None = None,
        max_age_s: float | None = None,
    ) -> None:
        self.matcher = matcher
        self._store = store
        self.max_age_s = max_age_s
        self._loaded_at = time.monotonic()
        self._refresh_lock = threading.Lock()

    @classmethod
    def from_store(
        cls,
        store: Store,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        embedder: FaceEmbedder | None = None,
        max_age_s: float | None = 30.0,
    ) -> OptOutFaceClassifier:
        """A classifier over the store's opt-out faces, re-read every ``max_age_s`` seconds."""
        matcher = OptOutFaceMatcher(
            store.list_opt_out_faces(), threshold=threshold, embedder=embedder
        )
        return cls(matcher, store=store, max_age_s=max_age_s)

    def refresh(self) -> None:
        """Re-read the reference faces from the store (no-op for a classifier built without)."""
        if self._store is None:
            return
        with self._refresh_lock:
            self.matcher.replace(self._store.list_opt_out_faces())
            self._loaded_at = time.monotonic()

    @property
    def spec(self) -> ClassifierSpec:
        embedder = self.matcher.embedder
        return ClassifierSpec(
            name="opt-out-faces",
            version="dlib-resnet-v1",
            artifact_sha256=FACE_MODELS[-1].sha256,
            args={
                "threshold": self.matcher.threshold,
                "detector": "dlib-hog-frontal",
                "landmarks_sha256": FACE_MODELS[0].sha256,
                "max_side": embedder.max_side,
                "upsample_below": embedder.upsample_below,
            },
        )

    @property
    def input_kind(self) -> Literal["image"]:
        return "image"

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        """One verdict per image: flagged when a face matches an opted-out person.

        A model that cannot be loaded raises (:class:`~safestack.errors.ClassifierError`): a
        stack configured with face matching must not run without it.
        """
        if self.max_age_s is not None and time.monotonic() - self._loaded_at >= self.max_age_s:
            self.refresh()
        spec = self.spec
        verdicts = []
        for image in items:
            if not isinstance(image, DecodedImage):
                raise ClassifierError(
                    f"opt-out-faces classifies decoded images, got {type(image).__name__}; "
                    "decode uploads with safestack.media.decode_image"
                )
            if not self.matcher.n_references:
                verdicts.append(Verdict.from_scores({CATEGORY: 0.0}, {}, spec))
                continue
            match, distance = self.matcher.nearest(self.matcher.embedder.faces(image))
            score = 0.0 if distance is None else 1.0 - distance / (2 * self.matcher.threshold)
            thresholds = {CATEGORY: _SCORE_THRESHOLD}
            if match is None:
                verdicts.append(Verdict.from_scores({CATEGORY: score}, thresholds, spec))
                continue
            rationale = (
                f"a face (frame {match.frame}, box {list(match.box)}) matches a reference face "
                f"of opt-out {match.opt_out_id} (distance {match.distance:.3f} < "
                f"{self.matcher.threshold})"
            )
            verdicts.append(
                Verdict.from_scores(
                    {CATEGORY: max(score, _SCORE_THRESHOLD)},
                    thresholds,
                    spec,
                    label=LABEL,
                    rationale=rationale,
                )
            )
        return verdicts


@register_classifier("opt-out-faces")
def _create(
    *,
    store: Store | None = None,
    database_url: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_age_s: float | None = 30.0,
) -> OptOutFaceClassifier:
    """Registry factory: the store given, or one at ``database_url`` (default: the gateway's)."""
    if store is None:
        from safestack.store import Store

        store = Store(database_url)
    return OptOutFaceClassifier.from_store(store, threshold=threshold, max_age_s=max_age_s)
