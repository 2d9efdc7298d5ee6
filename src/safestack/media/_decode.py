"""Decoding untrusted images once, safely, for every check that needs their pixels.

Uploads and model outputs are decoded here and nowhere else, so the classifiers, the hash matcher
and the gateway agree on what an image *is*: the same frames, in the same orientation, under the
same limits. The limits are checked before pixels are allocated (a 40 000 × 40 000 PNG of a few
kilobytes is rejected from its header), and every failure is an
:class:`~safestack.errors.ImageError` with a stable ``code``: a caller that cannot decode an image
must reject it, never pass it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from safestack.errors import ImageError, ImageTooLargeError

__all__ = ["DEFAULT_LIMITS", "DecodedImage", "ImageLimits", "decode_image", "encode_png"]


_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF"})


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be before it is decoded.

    The defaults admit what image APIs accept (OpenAI's edits take PNG, JPEG and WebP up to
    tens of megabytes) and refuse what only an attack needs: more than 40 megapixels per frame
    (Pillow's own bomb warning starts near 89), or more than 64 frames in an animation. Every
    frame of an animation is decoded and checked; a longer animation is refused rather than
    sampled, because an unchecked frame is an unchecked image.
    """

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_frames: int = 64
    formats: frozenset[str] = field(
        default_factory=lambda: frozenset({"PNG", "JPEG", "WEBP", "GIF"})
    )


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """An image as received (``data``) and as seen (``frames``: RGB, EXIF orientation applied)."""

    data: bytes
    format: str
    frames: tuple[Image.Image, ...]

    @property
    def image(self) -> Image.Image:
        """The first (for a still image, the only) frame."""
        return self.frames[0]

    @property
    def animated(self) -> bool:
        return len(self.frames) > 1

    @property
    def size(self) -> tuple[int, int]:
        """Width and height of the first frame, after orientation."""
        return self.image.size

    @cached_property
    def pixels(self) -> NDArray[np.uint8]:
        """The first frame as an ``H × W × 3`` uint8 array."""
        return np.asarray(self.image, dtype=np.uint8)

    def __repr__(self) -> str:
        width, height = self.size
        return (
            f"DecodedImage(format={self.format!r}, size={width}x{height}, "
            f"frames={len(self.frames)}, bytes={len(self.data)})"
        )


def decode_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> DecodedImage:
    """Decode ``data`` under ``limits``, or raise :class:`~safestack.errors.ImageError`.

    Transparent images are composited onto white (a classifier given black transparent pixels
    sees a different picture than a person does), and EXIF orientation is applied, so a photo
    taken sideways is judged and hashed the way it is displayed.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(f"an image must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(
            f"the image is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes"
        )
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    with warnings.catch_warnings():
        # The limit below is ours; Pillow's own bomb warning must not become an error elsewhere.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(
                f"not a readable image (allowed formats: {_allowed(limits)})",
                code="image_unsupported",
            ) from None
        except Image.DecompressionBombError as exc:
            raise ImageError(
                f"the image has too many pixels (decompression-bomb guard): {exc}",
                code="image_too_many_pixels",
            ) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"the image cannot be read: {exc}") from None
        with opened:
            image_format = (opened.format or "").upper()
            if image_format not in limits.formats:
                raise ImageError(
                    f"image format {image_format or 'unknown'} is not accepted; "
                    f"allowed: {_allowed(limits)}",
                    code="image_unsupported",
                )
            n_frames = int(getattr(opened, "n_frames", 1))
            if n_frames > limits.max_frames:
                raise ImageError(
                    f"the animation has {n_frames} frames; at most {limits.max_frames} are "
                    "checked, and an unchecked frame is never passed",
                    code="image_too_many_frames",
                )
            width, height = opened.size
            if width <= 0 or height <= 0:
                raise ImageError(f"the image has no pixels ({width}x{height})")
            if width * height > limits.max_pixels:
                raise ImageError(
                    f"the image is {width}x{height} = {width * height:,} pixels; the limit is "
                    f"{limits.max_pixels:,} (decompression-bomb guard)",
                    code="image_too_many_pixels",
                )
            frames = tuple(_frame(opened, index) for index in range(n_frames))
    return DecodedImage(data=data, format=image_format, frames=frames)


def encode_png(image: Image.Image) -> bytes:
    """``image`` as PNG bytes (lossless: what the gateway hands back is what was checked)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _refuse_truncated_images() -> None:
    """Make Pillow raise on a truncated file again, whoever switched that off.

    ``ImageFile.LOAD_TRUNCATED_IMAGES`` is process-wide, and some libraries set it at import
    (WeasyPrint, which the system cards use, does). With it set, Pillow pads a truncated upload
    with grey and the classifiers would judge pixels the uploader never sent; safestack never
    wants that, so the decoder resets it before every load.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def _frame(opened: Image.Image, index: int) -> Image.Image:
    _refuse_truncated_images()
    try:
        opened.seek(index)
        opened.load()
        frame = ImageOps.exif_transpose(opened.copy())
    except (OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError) as exc:
        where = f"frame {index + 1}" if index else "the image"
        raise ImageError(f"{where} cannot be decoded (broken or truncated?): {exc}") from None
    if frame.mode in {"RGBA", "LA", "PA"} or (frame.mode == "P" and "transparency" in frame.info):
        rgba = frame.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return frame.convert("RGB")


def _allowed(limits: ImageLimits) -> str:
    return ", ".join(sorted(limits.formats))
