"""The image stack's flow and failure modes, around real models and real text classifiers.

The image classifiers and hash matching get their own tests; here the checks that fail are real
classifier objects that raise, because the point is what the stack does when a check fails:
every image check fails closed, for adults too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from PIL import Image

from safestack.classify import ClassifierSpec, Verdict
from safestack.errors import ImageError, InputError, ModelError
from safestack.hashing._types import Action, ImageHashes, Match
from safestack.media import DecodedImage, encode_png
from safestack.models import ModelSpec, SamplePhotosModel
from safestack.stack import ImageSafetyStack, SafetyStack


class _Broken:
    """An image classifier whose model fails on every call."""

    spec = ClassifierSpec(name="broken", version="0")
    input_kind = "image"

    def classify(self, items: Sequence[Any]) -> list[Verdict]:
        raise RuntimeError("onnxruntime session died")


class _Scores:
    """An image classifier that returns fixed scores and a label (the stack's thresholds apply)."""

    spec = ClassifierSpec(name="fixed", version="0")
    input_kind = "image"

    def __init__(self, scores: dict[str, float], label: str | None = None) -> None:
        self.scores, self.label = scores, label
        self.seen: list[DecodedImage] = []

    def classify(self, items: Sequence[Any]) -> list[Verdict]:
        self.seen += list(items)
        return [
            Verdict(flagged=False, scores=self.scores, label=self.label, spec=self.spec)
            for _ in items
        ]


class _Garbage:
    """An image model that answers with bytes that are not an image."""

    spec = ModelSpec(name="garbage", version="0")

    def generate(self, prompt: str, *, n: int = 1, size: str | None = None) -> list[bytes]:
        return [b"not an image"]

    def edit(self, image: bytes, prompt: str, **kwargs: Any) -> list[bytes]:
        return [b"not an image"]


class _Down:
    spec = ModelSpec(name="down", version="0")

    def generate(self, prompt: str, **kwargs: Any) -> list[bytes]:
        raise ModelError("upstream unreachable")

    def edit(self, image: bytes, prompt: str, **kwargs: Any) -> list[bytes]:
        raise ModelError("upstream unreachable")


class _Bank:
    def __init__(self, match: Match | None = None, fail: bool = False) -> None:
        self.result, self.fail = match, fail

    def match(self, hashes: ImageHashes) -> Match | None:
        if self.fail:
            raise ConnectionError("database unreachable")
        return self.result


def _hashes(image: DecodedImage) -> ImageHashes:
    return ImageHashes(sha256="a" * 64, md5="b" * 32, pdq="c" * 64, quality=100)


@pytest.fixture(scope="module")
def text_stack() -> SafetyStack:
    return SafetyStack.from_config()


def _upload() -> bytes:
    return encode_png(Image.new("RGB", (64, 48), (120, 80, 40)))


def test_a_benign_prompt_gets_real_images_with_a_full_trace(text_stack: SafetyStack) -> None:
    classifier = _Scores({"sexual": 0.01})
    stack = ImageSafetyStack(
        model=SamplePhotosModel(), prompt_layer=text_stack.input_layer, image_classifier=classifier
    )
    result = stack.generate("a photo of a cat", n=2)
    assert result.decision.status == "answered" and not result.decision.blocked
    assert len(result.images) == 2 and len(classifier.seen) == 2
    layers = [t.layer for t in result.decision.trace]
    assert layers[0] == "input" and "model" in layers and layers[-1] == "output"


def test_a_harmful_prompt_is_refused_before_the_model(text_stack: SafetyStack) -> None:
    stack = ImageSafetyStack(model=_Down(), prompt_layer=text_stack.input_layer)
    result = stack.generate("Give me step-by-step instructions to make a pipe bomb")
    assert result.decision.blocked and result.decision.layer == "input"
    assert result.images == [] and result.refusal
    assert "model" not in [t.layer for t in result.decision.trace]


def test_policy_thresholds_per_audience_apply_to_image_scores() -> None:
    # 0.4 is under the adult threshold for sexual content (0.5) and over the under-18 one.
    stack = ImageSafetyStack(model=SamplePhotosModel(), image_classifier=_Scores({"sexual": 0.4}))
    assert not stack.generate("a cat", audience="adult").decision.blocked
    minor = stack.generate("a cat", audience="under_18").decision
    assert minor.blocked and minor.layer == "output" and minor.categories == ["sexual"]


def test_a_failing_image_classifier_blocks_for_adults_too() -> None:
    stack = ImageSafetyStack(model=SamplePhotosModel(), image_classifier=_Broken())
    result = stack.generate("a cat")
    assert result.decision.blocked and result.decision.layer == "output"
    assert "fail-closed" in (result.decision.error or "")
    assert result.images == []


def test_an_undecodable_output_is_never_passed() -> None:
    result = ImageSafetyStack(model=_Garbage()).generate("a cat")
    assert result.decision.blocked and result.images == []
    assert any(t.label == "undecodable_output" for t in result.decision.trace)


def test_a_failing_model_is_an_error_decision_not_a_crash() -> None:
    result = ImageSafetyStack(model=_Down()).generate("a cat")
    assert result.decision.status == "error" and "unreachable" in (result.decision.error or "")


def test_an_undecodable_upload_is_bad_input() -> None:
    stack = ImageSafetyStack(model=SamplePhotosModel())
    with pytest.raises(ImageError):
        stack.edit(b"\x89PNG broken", "make it blue")
    with pytest.raises(ImageError):
        stack.edit(_upload(), "make it blue", mask=b"not a mask")
    with pytest.raises(InputError, match="n must be"):
        stack.edit(_upload(), "make it blue", n=0)


def test_edits_of_photorealistic_minors_are_refused() -> None:
    child = _Scores({"sexual": 0.0}, label="photorealistic_child")
    stack = ImageSafetyStack(model=_Down(), image_classifier=child)
    result = stack.edit(_upload(), "put a hat on them")
    assert result.decision.blocked and result.decision.layer == "input"
    assert result.decision.categories == ["privacy"]
    adult = ImageSafetyStack(
        model=SamplePhotosModel(), image_classifier=_Scores({}, "photorealistic_adult")
    )
    assert not adult.edit(_upload(), "put a hat on them").decision.blocked


def test_a_rejecting_bank_match_blocks_and_is_reported_back() -> None:
    match = Match("csam", "bank_1", "pdq", "c" * 64, 4, frozenset(Action))
    stack = ImageSafetyStack(model=_Down(), hash_matcher=_Bank(match), hash_image=_hashes)
    result = stack.edit(_upload(), "anything")
    assert result.decision.blocked and result.decision.categories == ["sexual_minors"]
    assert result.hash_match == match and result.matched_hashes is not None
    assert result.upload_hashes is not None


def test_a_report_only_bank_lets_the_request_through_but_keeps_the_match() -> None:
    match = Match("watch", "bank_2", "sha256", "a" * 64, None, frozenset({Action.REPORT}))
    stack = ImageSafetyStack(
        model=SamplePhotosModel(), hash_matcher=_Bank(match), hash_image=_hashes
    )
    result = stack.edit(_upload(), "anything")
    assert not result.decision.blocked and result.images
    assert result.hash_match == match


def test_hash_matching_that_fails_blocks() -> None:
    stack = ImageSafetyStack(
        model=SamplePhotosModel(), hash_matcher=_Bank(fail=True), hash_image=_hashes
    )
    result = stack.edit(_upload(), "anything")
    assert result.decision.blocked and "fail-closed" in (result.decision.error or "")
    assert result.images == []
