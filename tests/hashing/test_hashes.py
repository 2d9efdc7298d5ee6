"""Hashing one image: exact hashes of the bytes, PDQ of every frame, and its hex convention."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from _images import distance, encode, scene
from PIL import Image

from safestack.errors import ImageError
from safestack.hashing import PDQ_MIN_QUALITY, bits_from_hex, hash_bytes, hex_from_bits


def test_exact_hashes_are_those_of_the_bytes_as_received() -> None:
    data = encode(scene(1), "JPEG", quality=90)
    hashes = hash_bytes(data)
    assert hashes.sha256 == hashlib.sha256(data).hexdigest()
    assert hashes.md5 == hashlib.md5(data).hexdigest()


def test_pdq_hex_is_msb_first_lower_case_and_round_trips() -> None:
    first_bit = np.zeros(256, dtype=np.uint8)
    first_bit[0] = 1
    assert hex_from_bits(first_bit) == "80" + "00" * 31
    bits = np.random.default_rng(0).integers(0, 2, 256).astype(np.uint8)
    value = hex_from_bits(bits)
    assert len(value) == 64 and value == value.lower()
    assert np.array_equal(bits_from_hex(value), bits)
    assert hex_from_bits(bits_from_hex("0f" * 32)) == "0f" * 32


def test_hashing_is_deterministic_and_pdq_depends_on_pixels_not_bytes() -> None:
    image = scene(2)
    small, large = encode(image, compress_level=9), encode(image, compress_level=0)
    assert hash_bytes(small) == hash_bytes(small)
    a, b = hash_bytes(small), hash_bytes(large)
    assert a.sha256 != b.sha256  # other bytes
    assert (a.pdq, a.quality) == (b.pdq, b.quality)  # same pixels
    assert a.quality >= PDQ_MIN_QUALITY and len(a.pdq) == 64
    assert a.frame_pdq == ((a.pdq, a.quality),)


def test_large_images_are_hashed_like_their_512_px_version() -> None:
    big = scene(3, size=1024)
    assert (
        distance(hash_bytes(encode(big)).pdq, hash_bytes(encode(big.resize((512, 512)))).pdq) <= 8
    )


def test_a_flat_image_has_low_quality() -> None:
    flat = hash_bytes(encode(Image.new("RGB", (128, 128), (120, 130, 140))))
    assert flat.quality < PDQ_MIN_QUALITY


def test_every_distinct_frame_of_an_animation_is_hashed_once() -> None:
    # Quantised to 256 colours so that GIF stores these pixels exactly.
    a, b = (scene(seed).quantize(256).convert("RGB") for seed in (4, 5))
    gif = encode(a, "GIF", save_all=True, append_images=[a, b, b], duration=80, loop=0)
    hashes = hash_bytes(gif)
    frame_a, frame_b = hash_bytes(encode(a)), hash_bytes(encode(b))
    assert hashes.frame_pdq == (
        (frame_a.pdq, frame_a.quality),
        (frame_b.pdq, frame_b.quality),
    )
    assert (hashes.pdq, hashes.quality) == (frame_a.pdq, frame_a.quality)


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", encode(scene(6))[:200], b"\x89PNG\r\n\x1a\n" + b"\0" * 64],
    ids=["empty", "text", "truncated-png", "png-signature-only"],
)
def test_bytes_that_do_not_decode_raise_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        hash_bytes(data)
