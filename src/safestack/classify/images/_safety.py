"""``image-default``: the one image classifier the stack calls — sexual content, people, and the
rule that joins them.

Sexual content (open_nsfw score at or above ``sexual_threshold``) flags ``sexual``. Sexual
content in an image labelled ``photorealistic_child`` — which includes every ambiguous case:
young-looking faces, faces too small to estimate, bodies without a face — flags
``sexual_minors``, the most severe category, at the lower ``minor_sexual_threshold``: for this
category a missed case costs far more than a false alarm. The verdict's label is the person
label, so the stack's "no edits of photorealistic minors" rule reads it from the same verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from safestack.classify._protocol import ClassifierInput, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.classify.images._backbone import OPEN_NSFW_SHA256
from safestack.classify.images._frames import judge_each_image
from safestack.classify.images._people import DetectorOptions
from safestack.classify.images._person import (
    CHILD,
    CHILD_AGE,
    FACE_IS_PHOTO_SCORE,
    PHOTOREAL_THRESHOLD,
    ImageFindings,
    PersonImageClassifier,
)
from safestack.classify.images._sexual import SEXUAL_THRESHOLD
from safestack.media import DecodedImage

__all__ = ["MINOR_SEXUAL_THRESHOLD", "ImageSafetyClassifier", "combine"]

#: The default policy's adult threshold for ``sexual_minors``; lower than ``sexual``'s on purpose.
MINOR_SEXUAL_THRESHOLD = 0.3
VERSION = "1.0"


def combine(
    findings: ImageFindings,
    spec: ClassifierSpec,
    *,
    sexual_threshold: float,
    minor_sexual_threshold: float,
) -> Verdict:
    """The combination rule as a pure function of what was measured.

    ``sexual_minors`` scores the sexual score when the image may show a child, else 0, so the
    policy's own ``sexual_minors`` threshold (applied again by the stack) acts on the same number.
    """
    minor = findings.label == CHILD
    scores = {
        "sexual": findings.sexual,
        "sexual_minors": findings.sexual if minor else 0.0,
        "photorealism": findings.photorealism,
    }
    thresholds = {"sexual": sexual_threshold}
    if minor:
        thresholds["sexual_minors"] = minor_sexual_threshold
    verdict = Verdict.from_scores(
        scores, thresholds, spec, label=findings.label, rationale=findings.describe()
    )
    if "sexual_minors" in verdict.categories:  # the most severe category is listed first
        rest = [c for c in verdict.categories if c != "sexual_minors"]
        verdict = verdict.model_copy(update={"categories": ["sexual_minors", *rest]})
    return verdict


@register_classifier("image-default")
class ImageSafetyClassifier:
    """Runs the sexual-content and person judgements in one pass and applies the rule above.

    Failures: a model failing on one image gives ``Verdict.fail_closed(...,
    categories=["sexual_minors"])`` for that image (the stack then blocks it, whatever the
    audience); a missing or tampered model file raises :class:`~safestack.errors.ArtifactError`.
    """

    registry_name: ClassVar[str] = "image-default"
    input_kind: ClassVar[InputKind] = "image"

    def __init__(
        self,
        *,
        sexual_threshold: float = SEXUAL_THRESHOLD,
        minor_sexual_threshold: float = MINOR_SEXUAL_THRESHOLD,
        child_age: float = CHILD_AGE,
        photoreal_threshold: float = PHOTOREAL_THRESHOLD,
        face_is_photo_score: float = FACE_IS_PHOTO_SCORE,
        detector: DetectorOptions | None = None,
        policy: object = None,  # accepted from configuration like every classifier; unused
        audience: object = None,
    ) -> None:
        self.sexual_threshold = sexual_threshold
        self.minor_sexual_threshold = minor_sexual_threshold
        self.person = PersonImageClassifier(
            child_age=child_age,
            photoreal_threshold=photoreal_threshold,
            face_is_photo_score=face_is_photo_score,
            detector=detector,
        )

    @property
    def spec(self) -> ClassifierSpec:
        person = self.person.spec
        return ClassifierSpec(
            name=self.registry_name,
            version=VERSION,
            artifact_sha256=person.artifact_sha256,
            args={
                "sexual_threshold": self.sexual_threshold,
                "minor_sexual_threshold": self.minor_sexual_threshold,
                "open_nsfw_sha256": OPEN_NSFW_SHA256,
                **person.args,
            },
        )

    def load(self) -> None:
        """Load every model now (a server calls this before its first request)."""
        self.person.load()

    def analyse(self, image: DecodedImage) -> ImageFindings:
        """The findings behind a verdict: scores, ages, counts, label."""
        return self.person.analyse(image)

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        spec = self.spec

        def judge(image: DecodedImage) -> Verdict:
            return combine(
                self.person.analyse(image),
                spec,
                sexual_threshold=self.sexual_threshold,
                minor_sexual_threshold=self.minor_sexual_threshold,
            )

        return judge_each_image(items, spec, judge, fail_categories=["sexual_minors"])
