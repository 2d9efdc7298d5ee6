"""What every image classifier does first: check its items, and skip repeated frames."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from PIL import Image

from safestack.errors import InputError
from safestack.media import DecodedImage

__all__ = ["as_decoded", "distinct_frames"]


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
