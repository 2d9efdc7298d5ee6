"""The hashes of one image: exact (SHA-256, MD5 of the bytes) and perceptual (PDQ of the pixels).

PDQ hex follows the convention of Meta's ThreatExchange tooling (python-threatexchange, HMA): the
256 bits of ``pdqhash.compute`` in the order returned, most significant first, as 64 lower-case
hex digits. Hashes exported by those tools therefore compare with ours bit for bit.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image

from safestack.hashing._types import ImageHashes
from safestack.media import DEFAULT_LIMITS, DecodedImage, ImageLimits, decode_image

__all__ = [
    "bits_from_hex",
    "hash_bytes",
    "hash_image",
    "hex_from_bits",
    "pdq_dihedral_of",
    "pdq_of",
]

#: PDQ works on a 64×64 luminance grid after downsampling; the reference hashers resize larger
#: images to at most 512 px first, which changes the hash by a few bits at most and bounds time.
_PDQ_MAX_SIDE = 512


def hex_from_bits(bits: NDArray[np.integer]) -> str:
    """256 bits (most significant first) as 64 lower-case hex digits."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def bits_from_hex(value: str) -> NDArray[np.uint8]:
    """The inverse of :func:`hex_from_bits`."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(value), dtype=np.uint8))


def _pdq_pixels(frame: Image.Image) -> NDArray[np.uint8]:
    if max(frame.size) > _PDQ_MAX_SIDE:
        frame = frame.copy()
        frame.thumbnail((_PDQ_MAX_SIDE, _PDQ_MAX_SIDE), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(frame.convert("RGB"), dtype=np.uint8))


def pdq_of(frame: Image.Image) -> tuple[str, int]:
    """PDQ hash (hex) and quality (0–100) of one RGB frame."""
    bits, quality = pdqhash.compute(_pdq_pixels(frame))
    return hex_from_bits(bits), int(quality)


def pdq_dihedral_of(frame: Image.Image) -> tuple[list[str], int]:
    """The PDQ hashes of ``frame`` in its eight rotations and flips (itself first), and quality.

    PDQ computes all eight from one DCT, so this costs about one hash: a lookup that tries
    them finds an image that was rotated by 90° or mirrored.
    """
    vectors, quality = pdqhash.compute_dihedral(_pdq_pixels(frame))
    return [hex_from_bits(v) for v in vectors], int(quality)


def hash_image(image: DecodedImage) -> ImageHashes:
    """Every hash matching needs: of the bytes as received, and of every frame's pixels.

    Identical consecutive frames (common in animations) are hashed once.
    """
    frames: list[tuple[str, int]] = []
    previous: bytes | None = None
    for frame in image.frames:
        raw = frame.tobytes()
        if raw == previous:
            continue
        previous = raw
        frames.append(pdq_of(frame))
    first_pdq, first_quality = frames[0]
    return ImageHashes(
        sha256=hashlib.sha256(image.data).hexdigest(),
        md5=hashlib.md5(image.data, usedforsecurity=False).hexdigest(),
        pdq=first_pdq,
        quality=first_quality,
        frame_pdq=tuple(frames),
    )


def hash_bytes(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> ImageHashes:
    """Decode, then hash; an image that cannot be decoded raises (it is never passed)."""
    return hash_image(decode_image(data, limits))
