"""``image-person``: is there a photorealistic person in the image, and could it be a child?

The labels are those of the published image card: ``no_photorealistic_person``,
``photorealistic_adult``, ``photorealistic_child``. The classifier flags nothing by itself (its
verdicts carry a label and scores, never categories): what a child in an image *means* is the
business of the combination rule in ``image-default`` (sexual content + minor → ``sexual_minors``)
and of the stack (no edits of photorealistic minors).

Ambiguity errs on "child", but only in photorealistic images: a face whose estimated age is under
``child_age``, a face too small to estimate, or a body with no detectable face each make the
image ``photorealistic_child``. See the image card for the measurements behind every default.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from safestack.classify._heads import Head
from safestack.classify._protocol import ClassifierInput, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.classify.images._backbone import Backbone, BackboneOutput
from safestack.classify.images._frames import distinct_frames, judge_each_image
from safestack.classify.images._people import DetectorOptions, PeopleDetector, PeopleFindings
from safestack.classify.images._photoreal import flatness, packaged_photoreal_head, photoreal_score
from safestack.media import DecodedImage

__all__ = [
    "ADULT",
    "CHILD",
    "NO_PERSON",
    "PERSON_LABELS",
    "ImageFindings",
    "PersonImageClassifier",
    "person_label",
]

NO_PERSON = "no_photorealistic_person"
ADULT = "photorealistic_adult"
CHILD = "photorealistic_child"
PERSON_LABELS = (NO_PERSON, ADULT, CHILD)
VERSION = "1.0"

#: Defaults, documented (with their reasons) in the image card.
CHILD_AGE = 25.0
PHOTOREAL_THRESHOLD = 0.3
FACE_IS_PHOTO_SCORE = 1.0


def person_label(
    *, photoreal: bool, ages: Sequence[float | None], faceless_bodies: int, child_age: float
) -> str:
    """Fold what was found in an image into one label; every doubt resolves towards "child".

    ``ages`` has one entry per detected face, ``None`` for a face too small to estimate. A
    child anywhere makes the image a child image, even beside adults.

    >>> person_label(photoreal=True, ages=[40.0, 12.0], faceless_bodies=0, child_age=25)
    'photorealistic_child'
    >>> person_label(photoreal=True, ages=[40.0], faceless_bodies=0, child_age=25)
    'photorealistic_adult'
    >>> person_label(photoreal=True, ages=[], faceless_bodies=1, child_age=25)
    'photorealistic_child'
    >>> person_label(photoreal=False, ages=[8.0], faceless_bodies=0, child_age=25)
    'no_photorealistic_person'
    """
    if not photoreal or (not ages and faceless_bodies == 0):
        return NO_PERSON
    if faceless_bodies > 0 or any(a is None or a < child_age for a in ages):
        return CHILD
    return ADULT


@dataclass(frozen=True)
class ImageFindings:
    """Everything the image classifiers measured on one image, over all its distinct frames."""

    sexual: float  # the highest open_nsfw score over the frames
    photorealism: float  # the highest photorealism score over the frames
    photoreal: bool
    ages: tuple[float | None, ...]  # one per face, over all frames
    faceless_bodies: int
    label: str
    frames: int

    @property
    def n_faces(self) -> int:
        return len(self.ages)

    @property
    def min_age_estimate(self) -> float | None:
        known = [a for a in self.ages if a is not None]
        return min(known) if known else None

    def describe(self) -> str:
        """One line a reviewer can read in a decision trace."""
        ages = ", ".join("too small" if a is None else f"{a:.0f}" for a in self.ages) or "none"
        return (
            f"{self.label}: photorealism {self.photorealism:.2f}, {self.n_faces} face(s) "
            f"(estimated ages: {ages}), {self.faceless_bodies} body/bodies without a face, "
            f"sexual {self.sexual:.2f}, {self.frames} distinct frame(s)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "sexual": round(self.sexual, 6),
            "photorealism": round(self.photorealism, 6),
            "photoreal": self.photoreal,
            "n_faces": self.n_faces,
            "ages": list(self.ages),
            "min_age_estimate": self.min_age_estimate,
            "faceless_bodies": self.faceless_bodies,
            "frames": self.frames,
        }


class ImageAnalyser:
    """One backbone pass and one people pass per distinct frame, folded into findings."""

    def __init__(
        self,
        *,
        backbone: Backbone,
        detector: PeopleDetector,
        child_age: float,
        photoreal_threshold: float,
        face_is_photo_score: float,
    ) -> None:
        self.backbone = backbone
        self.detector = detector
        self.child_age = child_age
        self.photoreal_threshold = photoreal_threshold
        self.face_is_photo_score = face_is_photo_score
        self._lock = threading.Lock()
        self._heads: tuple[dict[str, Head], str] | None = None

    def heads(self) -> tuple[dict[str, Head], str]:
        if self._heads is None:
            with self._lock:
                if self._heads is None:
                    self._heads = packaged_photoreal_head()
        return self._heads

    def load(self) -> None:
        self.heads()
        self.backbone.load()
        self.detector.load()

    def sexual_only(self, image: DecodedImage) -> float:
        return max(o.nsfw for o in self.backbone.run(distinct_frames(image)))

    def analyse(self, image: DecodedImage) -> ImageFindings:
        frames = distinct_frames(image)
        outputs: list[BackboneOutput] = self.backbone.run(frames)
        heads, _ = self.heads()
        photo = photoreal_score(
            heads,
            np.stack([o.embedding for o in outputs]),
            np.asarray([flatness(f) for f in frames], dtype=np.float32),
        )
        ages: list[float | None] = []
        bodies = 0
        photoreal = False
        for frame, score in zip(frames, photo, strict=True):
            found: PeopleFindings = self.detector.find(frame)
            ages.extend(f.age for f in found.faces)
            bodies += found.faceless_bodies
            confident_face = any(f.score >= self.face_is_photo_score for f in found.faces)
            photoreal |= bool(score >= self.photoreal_threshold) or confident_face
        label = person_label(
            photoreal=photoreal, ages=ages, faceless_bodies=bodies, child_age=self.child_age
        )
        return ImageFindings(
            sexual=max(o.nsfw for o in outputs),
            photorealism=float(photo.max()),
            photoreal=photoreal,
            ages=tuple(ages),
            faceless_bodies=bodies,
            label=label,
            frames=len(frames),
        )


def analyser_spec_args(
    child_age: float, photoreal_threshold: float, face_is_photo_score: float, opts: DetectorOptions
) -> dict[str, Any]:
    return {
        "child_age": child_age,
        "photoreal_threshold": photoreal_threshold,
        "face_is_photo_score": face_is_photo_score,
        "detect_side": opts.detect_side,
        "face_score": opts.face_score,
        "min_face_px": opts.min_face_px,
        "body_score": opts.body_score,
    }


@register_classifier("image-person")
class PersonImageClassifier:
    """Labels each image no_photorealistic_person / photorealistic_adult / photorealistic_child.

    Verdicts are never flagged on success (label and scores only: ``photorealism`` in [0, 1];
    the counts and ages are in the rationale and in :meth:`analyse`). On a model failure for an
    image the verdict is ``Verdict.fail_closed(..., categories=["sexual_minors"])``: an image
    whose people could not be judged is treated like the worst case, never passed as "no person".
    A missing or tampered model file raises :class:`~safestack.errors.ArtifactError` instead (a
    broken installation, not a property of the image).
    """

    registry_name: ClassVar[str] = "image-person"
    input_kind: ClassVar[InputKind] = "image"

    def __init__(
        self,
        *,
        child_age: float = CHILD_AGE,
        photoreal_threshold: float = PHOTOREAL_THRESHOLD,
        face_is_photo_score: float = FACE_IS_PHOTO_SCORE,
        detector: DetectorOptions | None = None,
        backbone: Backbone | None = None,
        policy: object = None,  # accepted from configuration like every classifier; unused
        audience: object = None,
    ) -> None:
        self.child_age = child_age
        self.photoreal_threshold = photoreal_threshold
        self.face_is_photo_score = face_is_photo_score
        self.detector = detector or DetectorOptions()
        self._analyser = ImageAnalyser(
            backbone=backbone or Backbone(),
            detector=PeopleDetector(self.detector),
            child_age=child_age,
            photoreal_threshold=photoreal_threshold,
            face_is_photo_score=face_is_photo_score,
        )

    @property
    def spec(self) -> ClassifierSpec:
        return ClassifierSpec(
            name=self.registry_name,
            version=VERSION,
            artifact_sha256=self._analyser.heads()[1],
            args=analyser_spec_args(
                self.child_age, self.photoreal_threshold, self.face_is_photo_score, self.detector
            ),
        )

    def load(self) -> None:
        """Load every model now (a server calls this before its first request)."""
        self._analyser.load()

    def analyse(self, image: DecodedImage) -> ImageFindings:
        """The findings behind a verdict: scores, ages, counts, label."""
        return self._analyser.analyse(image)

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        spec = self.spec

        def judge(image: DecodedImage) -> Verdict:
            found = self._analyser.analyse(image)
            return Verdict.from_scores(
                {"photorealism": found.photorealism},
                {},
                spec,
                label=found.label,
                rationale=found.describe(),
            )

        return judge_each_image(items, spec, judge, fail_categories=["sexual_minors"])
