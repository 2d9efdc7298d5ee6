"""Decoding untrusted images: every way an upload can be bad gets a clear, coded ImageError."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from safestack.errors import ImageError, ImageTooLargeError, InputError
from safestack.media import ImageLimits, decode_image, encode_png


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _photo_like(width: int = 96, height: int = 64) -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    decoded = decode_image(_encoded(_photo_like(), fmt))
    assert decoded.format == fmt
    assert decoded.image.mode == "RGB" and decoded.size == (96, 64)
    assert decoded.pixels.shape == (64, 96, 3) and decoded.pixels.dtype == np.uint8


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_other_formats_are_refused_by_name(fmt: str) -> None:
    with pytest.raises(ImageError, match="not accepted") as info:
        decode_image(_encoded(_photo_like(32, 32), fmt))
    assert info.value.code == "image_unsupported"


@pytest.mark.parametrize(
    "data", [b"", b"hello, world", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, b"GIF89a"]
)
def test_garbage_is_an_input_error_with_a_code(data: bytes) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert isinstance(info.value, InputError)
    assert info.value.code in {"image_unreadable", "image_unsupported"}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_truncated_file_is_refused_not_half_decoded(fmt: str) -> None:
    data = _encoded(_photo_like(256, 256), fmt)
    with pytest.raises(ImageError, match=r"truncated|cannot be"):
        decode_image(data[: len(data) // 2])


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = _encoded(Image.new("1", (12_000, 12_000)), "PNG")  # 144 Mpx in ~20 KB
    assert len(bomb) < 100_000
    with pytest.raises(ImageError) as info:
        decode_image(bomb)
    assert info.value.code == "image_too_many_pixels"
    small_limit = ImageLimits(max_pixels=1_000)
    with pytest.raises(ImageError) as info:
        decode_image(_encoded(_photo_like(40, 40), "PNG"), small_limit)
    assert info.value.code == "image_too_many_pixels"


def test_too_many_bytes_is_its_own_error() -> None:
    data = _encoded(_photo_like(), "PNG")
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(data, ImageLimits(max_bytes=len(data) - 1))
    assert info.value.code == "image_too_large"


def test_every_frame_of_an_animation_is_decoded() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    data = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = decode_image(data)
    assert decoded.animated and len(decoded.frames) == 2
    assert decoded.frames[1].getpixel((0, 0)) == (0, 255, 0)
    with pytest.raises(ImageError) as info:
        decode_image(data, ImageLimits(max_frames=1))
    assert info.value.code == "image_too_many_frames"


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    decoded = decode_image(_encoded(image, "JPEG", exif=exif.tobytes()))
    assert decoded.size == (20, 40)


def test_transparency_is_composited_on_white() -> None:
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    decoded = decode_image(encode_png(clear))
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)


def test_non_bytes_are_refused() -> None:
    with pytest.raises(ImageError, match="must be bytes"):
        decode_image("a string")  # type: ignore[arg-type]


def test_truncated_files_are_refused_even_after_a_library_allows_them() -> None:
    """WeasyPrint (the system cards) sets Pillow's LOAD_TRUNCATED_IMAGES at import."""
    import weasyprint  # noqa: F401  (the import is the point)
    from PIL import ImageFile

    data = _encoded(Image.new("RGB", (64, 64), (10, 200, 30)), "PNG")
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(ImageError, match=r"truncated|cannot be"):
            decode_image(data[: len(data) // 2])
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
