"""What every image classifier shares: check its items, judge each, skip repeated frames."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from PIL import Image

from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.errors import ArtifactError, InputError
from safestack.media import DecodedImage

__all__ = ["as_decoded", "distinct_frames", "judge_each_image"]


def as_decoded(items: Sequence[object]) -> list[DecodedImage]:
    """The items as decoded images; anything else is a caller's bug, said plainly.

    Image classifiers take :class:`DecodedImage` only: decoding (and rejecting what cannot be
    decoded safely) happens once, upstream, in :func:`safestack.media.decode_image`.
    """
    out: list[DecodedImage] = []
    for i, item in enumerate(items):
        if not isinstance(item, DecodedImage):
            raise InputError(
                f"item {i}: image classifiers take DecodedImage (safestack.media.decode_image), "
                f"got {type(item).__name__}"
            )
        out.append(item)
    return out


def judge_each_image(
    items: Sequence[object],
    spec: ClassifierSpec,
    judge: Callable[[DecodedImage], Verdict],
    *,
    fail_categories: list[str],
) -> list[Verdict]:
    """One verdict per image, fail-closed per image.

    A model that fails on one image (an odd size, a numerical error) gives that image a flagged
    verdict in ``fail_categories`` and the others are still judged: an image nobody could check
    is never passed. Missing or corrupted weights are the deployment's fault, not the image's,
    so :class:`ArtifactError` propagates.
    """
    verdicts: list[Verdict] = []
    for image in as_decoded(items):
        try:
            verdicts.append(judge(image))
        except ArtifactError:
            raise
        except Exception as exc:
            message = f"{spec.name} failed: {type(exc).__name__}: {exc}"
            verdicts.append(Verdict.fail_closed(spec, message, categories=fail_categories))
    return verdicts


def distinct_frames(image: DecodedImage) -> list[Image.Image]:
    """Every frame whose pixels differ from all earlier ones: an animation of repeated frames
    costs one frame, and no distinct frame is skipped."""
    seen: set[bytes] = set()
    frames: list[Image.Image] = []
    for frame in image.frames:
        key = hashlib.sha256(frame.tobytes()).digest() + repr(frame.size).encode()
        if key not in seen:
            seen.add(key)
            frames.append(frame)
    return frames
