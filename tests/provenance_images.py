"""Test images: public-domain photographs from scikit-image, encoded in any format."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import skimage.data
from PIL import Image, ImageDraw


def encode(pixels: np.ndarray | Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(name: str = "astronaut") -> np.ndarray:
    """A public-domain photograph shipped with scikit-image (skimage.data)."""
    return np.asarray(getattr(skimage.data, name)())


def scene(seed: int, size: tuple[int, int] = (512, 384)) -> np.ndarray:
    """A synthetic picture: smooth colour fields and shapes, different for every seed."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    field = sum(
        np.sin(2 * np.pi * (fx * x + fy * y) + phase)[..., None] * rng.uniform(20, 50, 3)
        for fx, fy, phase in rng.uniform(0.3, 3.0, (4, 3))
    )
    image = Image.fromarray(np.clip(field + 128, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        radius = int(rng.integers(15, 80))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    noise = rng.normal(0, 6, (height, width, 3))
    return np.clip(np.asarray(image, dtype=float) + noise, 0, 255).astype(np.uint8)
