"""An invisible watermark that carries a registry payload in the pixels (``invisible-watermark``).

Metadata is the first thing a re-upload loses; a watermark in the pixels is not. Two methods of
the ``invisible-watermark`` package (the one Stable Diffusion's reference scripts use):

* ``dwtDctSvd`` (default): no model, ~0.25 s to embed in 512×512; a 64-bit payload survives
  re-encoding (read in ~95 % of images after JPEG quality 75, ~50 % at 50) but not resizing,
  cropping or rotation, which move its block grid. PDQ covers resizing and rotation.
* ``rivaGan``: a small bundled ONNX network with a fixed 32-bit payload; survives crops and a
  screenshot frame, at ~1.5 s to embed and ~1.8 s to read per image on two cores, and does not
  take on some flat, synthetic pictures (the read-back check then drops it).

A payload is a random integer stored in the registry. Reading one back gives bits that may have
flipped; a registry payload within ``max_bit_errors`` of them is a match, and
:meth:`Watermarker.chance_matches` is the number of matches that many registered payloads would
produce by chance at that distance (what the confidence of a watermark match is derived from).
Payloads are drawn with balanced ones and zeros, because an unmarked flat image reads back as
runs of equal bits.

``invisible-watermark`` declares an unpinned ``torch`` and the GUI build of OpenCV as
dependencies; safestack installs it with ``--no-deps`` (its real needs, PyWavelets, OpenCV
headless and onnxruntime, are safestack dependencies already). See docs/provenance.md.
"""

from __future__ import annotations

import math
import secrets
import threading
from typing import Any, Literal, get_args

import cv2
import numpy as np
import pywt
from numpy.typing import NDArray

from safestack.errors import ConfigError, ProvenanceError

__all__ = ["MIN_WATERMARK_PIXELS", "WATERMARK_METHODS", "WatermarkMethod", "Watermarker"]

WatermarkMethod = Literal["dwtDctSvd", "rivaGan"]
WATERMARK_METHODS: tuple[str, ...] = get_args(WatermarkMethod)
#: Below this many pixels the methods have too few blocks to carry a payload (the package's own
#: limit): such images are registered without a watermark.
MIN_WATERMARK_PIXELS = 256 * 256
_BITS: dict[str, int] = {"dwtDctSvd": 64, "rivaGan": 32}
#: Default tolerance. At JPEG quality 75 the measured flips average about 2 of 64 (2–3 of 50
#: images exceeded 8) and under 1 of 32 (BENCHMARKS.md); PDQ still finds what exceeds it.
_MAX_BIT_ERRORS: dict[str, int] = {"dwtDctSvd": 8, "rivaGan": 3}
_INSTALL_HINT = (
    "the invisible watermark needs the 'invisible-watermark' package, installed without its "
    "declared dependencies: pip install --no-deps invisible-watermark==0.2.0 (or set "
    "provenance.watermark: none)"
)
_riva_lock = threading.Lock()


def _library() -> Any:
    try:
        import imwatermark
    except ImportError as exc:
        raise ConfigError(f"{_INSTALL_HINT} ({exc})") from None
    return imwatermark


class Watermarker:
    """Embeds and reads back a payload of :attr:`bits` bits with one method."""

    def __init__(
        self, method: WatermarkMethod = "dwtDctSvd", *, max_bit_errors: int | None = None
    ) -> None:
        if method not in _BITS:
            raise ConfigError(
                f"unknown watermark method {method!r}; one of {', '.join(WATERMARK_METHODS)}"
            )
        self.method: WatermarkMethod = method
        self.bits = _BITS[method]
        self.max_bit_errors = _MAX_BIT_ERRORS[method] if max_bit_errors is None else max_bit_errors
        if not 0 <= self.max_bit_errors < self.bits // 4:
            raise ConfigError(
                f"max_bit_errors for {method} must be 0–{self.bits // 4 - 1}, "
                f"got {self.max_bit_errors}"
            )
        self._library = _library()
        if method == "rivaGan":
            with _riva_lock:
                self._library.WatermarkEncoder.loadModel()

    def __repr__(self) -> str:
        return (
            f"Watermarker({self.method!r}, bits={self.bits}, max_bit_errors={self.max_bit_errors})"
        )

    def new_payload(self) -> int:
        """A random payload with between 3/8 and 5/8 of its bits set."""
        low, high = 3 * self.bits // 8, 5 * self.bits // 8
        while True:
            payload = secrets.randbits(self.bits)
            if low <= payload.bit_count() <= high:
                return payload

    def fits(self, width: int, height: int) -> bool:
        return width * height >= MIN_WATERMARK_PIXELS

    def embed(self, rgb: NDArray[np.uint8], payload: int) -> NDArray[np.uint8]:
        """``rgb`` (H×W×3) carrying ``payload``; raises if the image is too small."""
        self._check(rgb)
        encoder = self._library.WatermarkEncoder()
        encoder.set_watermark("bits", _bits_of(payload, self.bits))
        try:
            marked = encoder.encode(np.ascontiguousarray(rgb[:, :, ::-1]), self.method)
        except Exception as exc:  # the package raises bare RuntimeErrors and cv2 errors
            raise ProvenanceError(f"the {self.method} watermark failed: {exc}") from None
        return np.ascontiguousarray(np.asarray(marked, dtype=np.uint8)[:, :, ::-1])

    def extract(self, rgb: NDArray[np.uint8]) -> int | None:
        """The payload bits read from ``rgb``, or None if the image is too small to carry one."""
        if not self.fits(rgb.shape[1], rgb.shape[0]):
            return None
        if self.method == "dwtDctSvd":
            bits = _read_dwt_dct_svd(rgb, self.bits)
        else:
            decoder = self._library.WatermarkDecoder("bits", self.bits)
            try:
                bits = decoder.decode(np.ascontiguousarray(rgb[:, :, ::-1]), self.method)
            except Exception as exc:
                raise ProvenanceError(
                    f"reading the {self.method} watermark failed: {exc}"
                ) from None
        value = 0
        for bit in np.asarray(bits).astype(int).tolist():
            value = (value << 1) | (bit & 1)
        return value

    def chance_matches(self, distance: int, population: int) -> float:
        """Expected number of ``population`` random payloads within ``distance`` of any read."""
        within = sum(math.comb(self.bits, k) for k in range(distance + 1))
        return float(population * within / 2**self.bits)

    def _check(self, rgb: NDArray[np.uint8]) -> None:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ProvenanceError(f"a watermark needs H×W×3 uint8 pixels, got {rgb.shape}")
        if not self.fits(rgb.shape[1], rgb.shape[0]):
            raise ProvenanceError(
                f"a {rgb.shape[1]}×{rgb.shape[0]} image is too small for a watermark "
                f"(at least {MIN_WATERMARK_PIXELS:,} pixels)"
            )


def _read_dwt_dct_svd(
    rgb: NDArray[np.uint8], bits: int, *, scale: float = 36.0, block: int = 4
) -> NDArray[np.bool_]:
    """The ``dwtDctSvd`` payload bits, read as the package reads them, all blocks at once.

    The package visits the 4×4 blocks of the U channel's Haar approximation one by one in
    Python, takes each block's DCT and then its largest singular value, and lets every block
    vote on bit ``block number mod bits``. The DCT is orthonormal, so it leaves singular values
    unchanged: the largest singular value of the block itself is the same number, and a batched
    SVD computes all of them in one call (5× faster at 1 megapixel; the votes are identical,
    ``tests/provenance/test_watermark.py`` compares them with the package's own decoder).
    """
    rows, cols = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb[:, :, ::-1]), cv2.COLOR_BGR2YUV)
    approximation, _ = pywt.dwt2(yuv[:rows, :cols, 1], "haar")
    down, across = approximation.shape[0] // block, approximation.shape[1] // block
    blocks = (
        approximation[: down * block, : across * block]
        .reshape(down, block, across, block)
        .swapaxes(1, 2)
        .reshape(-1, block, block)
    )
    largest = np.linalg.svd(blocks, compute_uv=False)[:, 0]
    votes = (largest % scale) > scale * 0.5
    positions = np.arange(len(votes)) % bits
    share = np.bincount(positions, weights=votes, minlength=bits) / np.bincount(
        positions, minlength=bits
    )
    result: NDArray[np.bool_] = share * 255 > 127
    return result


def _bits_of(payload: int, bits: int) -> list[int]:
    return [(payload >> (bits - 1 - i)) & 1 for i in range(bits)]
