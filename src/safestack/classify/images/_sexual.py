"""``image-sexual``: is an image sexually explicit? Yahoo's open_nsfw score, per frame.

open_nsfw (BSD-2-Clause) is a ResNet-50 trained by Yahoo on pornographic vs safe-for-work
photographs; its NSFW probability becomes the ``sexual`` score. Every distinct frame of an
animation is scored and the highest score is the image's: one explicit frame is enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from safestack.classify._protocol import ClassifierInput, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.classify.images._backbone import OPEN_NSFW_SHA256, Backbone
from safestack.classify.images._frames import distinct_frames, judge_each_image
from safestack.media import DecodedImage

__all__ = ["SEXUAL_THRESHOLD", "SexualContentImageClassifier"]

#: open_nsfw's authors read scores under 0.2 as safe and over 0.8 as NSFW; 0.5, in between, is
#: also the default policy's adult threshold for ``sexual`` (the policy's own per-audience
#: thresholds apply again in the stack).
SEXUAL_THRESHOLD = 0.5
VERSION = "1.0"


@register_classifier("image-sexual")
class SexualContentImageClassifier:
    """Scores ``sexual`` with open_nsfw; flags at ``threshold``.

    The model loads on first use and is shared safely by worker threads. On a model failure for
    one image its verdict is ``Verdict.fail_closed(..., categories=["sexual"])``; a missing or
    tampered model file raises :class:`~safestack.errors.ArtifactError`.
    """

    registry_name: ClassVar[str] = "image-sexual"
    input_kind: ClassVar[InputKind] = "image"

    def __init__(
        self,
        *,
        threshold: float = SEXUAL_THRESHOLD,
        backbone: Backbone | None = None,
        policy: object = None,  # accepted from configuration like every classifier; unused
        audience: object = None,
    ) -> None:
        self.threshold = threshold
        self.backbone = backbone or Backbone()

    @property
    def spec(self) -> ClassifierSpec:
        return ClassifierSpec(
            name=self.registry_name,
            version=VERSION,
            artifact_sha256=OPEN_NSFW_SHA256,
            args={"threshold": self.threshold},
        )

    def load(self) -> None:
        """Load the model now (a server calls this before its first request)."""
        self.backbone.load()

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        spec = self.spec

        def judge(image: DecodedImage) -> Verdict:
            score = max(o.nsfw for o in self.backbone.run(distinct_frames(image)))
            return Verdict.from_scores({"sexual": score}, {"sexual": self.threshold}, spec)

        return judge_each_image(items, spec, judge, fail_categories=["sexual"])
