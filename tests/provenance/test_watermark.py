"""The invisible watermark: payload round trip, what it survives, and what it refuses."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from provenance_images import encode, photo
from safestack.errors import ConfigError, ProvenanceError
from safestack.provenance import Watermarker


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    data = encode(pixels, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return 10 * np.log10(255**2 / mse)


def test_dwtdctsvd_carries_64_bits_through_jpeg() -> None:
    marker = Watermarker("dwtDctSvd")
    assert marker.bits == 64
    original = photo("astronaut")
    payload = marker.new_payload()
    marked = marker.embed(original, payload)
    assert marked.shape == original.shape and marked.dtype == np.uint8
    assert _psnr(original, marked) > 30  # invisible: well above visible-artefact levels
    assert marker.extract(marked) == payload
    for quality in (95, 90):
        read = marker.extract(_jpeg(marked, quality))
        assert read is not None
        assert (read ^ payload).bit_count() <= marker.max_bit_errors
    unmarked = marker.extract(original)
    assert unmarked is not None and (unmarked ^ payload).bit_count() > marker.max_bit_errors


def test_rivagan_carries_32_bits() -> None:
    marker = Watermarker("rivaGan")
    assert marker.bits == 32
    original = photo("coffee")
    payload = marker.new_payload()
    marked = marker.embed(original, payload)
    read = marker.extract(_jpeg(marked, 75))
    assert read is not None and (read ^ payload).bit_count() <= marker.max_bit_errors


def test_payloads_are_balanced_and_chance_matches_grow_with_distance() -> None:
    marker = Watermarker()
    for _ in range(50):
        ones = marker.new_payload().bit_count()
        assert 24 <= ones <= 40
    assert marker.chance_matches(0, 1_000_000) < 1e-13
    assert marker.chance_matches(0, 1) < marker.chance_matches(8, 1) < marker.chance_matches(8, 10)


def test_small_images_and_bad_settings_are_refused() -> None:
    marker = Watermarker()
    small = photo("astronaut")[:200, :200]
    assert marker.extract(small) is None
    with pytest.raises(ProvenanceError, match="too small"):
        marker.embed(small, marker.new_payload())
    with pytest.raises(ConfigError, match="unknown watermark method"):
        Watermarker("lsb")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_bit_errors"):
        Watermarker(max_bit_errors=40)


def test_the_fast_dwtdctsvd_reader_votes_exactly_as_the_package_does() -> None:
    """safestack reads dwtDctSvd marks with one batched SVD; the package's decoder is the oracle."""
    import imwatermark

    from safestack.provenance._watermark import _read_dwt_dct_svd

    marker = Watermarker("dwtDctSvd")
    decoder = imwatermark.WatermarkDecoder("bits", 64)
    cases = []
    for name in ("astronaut", "chelsea", "coffee"):  # square, and odd sizes (451×300, 600×400)
        original = photo(name)
        marked = marker.embed(original, marker.new_payload())
        cases += [original, marked, _jpeg(marked, 75), _jpeg(marked, 50), marked[3:-5, 7:-2]]
    for pixels in cases:
        fast = _read_dwt_dct_svd(pixels, 64)
        reference = decoder.decode(np.ascontiguousarray(pixels[:, :, ::-1]), "dwtDctSvd")
        assert np.array_equal(fast, np.asarray(reference, dtype=bool))
