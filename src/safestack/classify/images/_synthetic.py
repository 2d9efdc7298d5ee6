"""Images that are certainly not photographs, drawn here with Pillow and numpy.

The photorealism head needs negatives, and no licensed corpus of drawings ships offline. These
renders stand in for the kinds of non-photographic images a generator or a user produces: flat
vector shapes, cartoon faces and figures, comic-style outlines, user-interface and text renders,
gradients, posterised "painted" noise, and cartoonised photographs. They are seeded, so the
training set (and the tests that use a drawn face) are reproducible.

They are a thin stand-in: real illustrations, anime, 3-D renders and paintings are far more
varied, and the image card says so.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["RENDER_KINDS", "cartoon_face", "cartoonise", "render"]

Size = tuple[int, int]


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _skin(rng: random.Random) -> tuple[int, int, int]:
    tones = [(255, 224, 189), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36)]
    r, g, b = rng.choice(tones)
    j = rng.randrange(-15, 16)
    return (max(0, min(255, r + j)), max(0, min(255, g + j)), max(0, min(255, b + j)))


def _background(rng: random.Random, size: Size) -> Image.Image:
    w, h = size
    if rng.random() < 0.5:
        return Image.new("RGB", size, _colour(rng))
    a, b = np.array(_colour(rng), float), np.array(_colour(rng), float)
    t = np.linspace(0.0, 1.0, h)[:, None, None] if rng.random() < 0.5 else None
    if t is None:
        t = np.linspace(0.0, 1.0, w)[None, :, None]
    grad = a + (b - a) * t
    return Image.fromarray(np.broadcast_to(grad, (h, w, 3)).astype(np.uint8))


def _shapes(rng: random.Random, size: Size) -> Image.Image:
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    w, h = size
    outline = (0, 0, 0) if rng.random() < 0.5 else None
    for _ in range(rng.randrange(3, 25)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(5, w // 2), y0 + rng.randrange(5, h // 2)
        kind = rng.randrange(4)
        width = rng.randrange(1, 6)
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=_colour(rng), outline=outline, width=width)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=_colour(rng), outline=outline, width=width)
        elif kind == 2:
            pts = [(rng.randrange(w), rng.randrange(h)) for _ in range(rng.randrange(3, 7))]
            draw.polygon(pts, fill=_colour(rng), outline=outline)
        else:
            draw.line((x0, y0, x1, y1), fill=_colour(rng), width=width)
    return img


def cartoon_face(seed: int = 0, size: Size = (512, 512)) -> Image.Image:
    """A drawn face: head, eyes, brows, nose, mouth, hair, on a flat or gradient background."""
    rng = random.Random(seed)
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    w, h = size
    cx, cy = (
        w // 2 + rng.randrange(-w // 8, w // 8 + 1),
        h // 2 + rng.randrange(-h // 10, h // 10 + 1),
    )
    r = int(min(w, h) * rng.uniform(0.22, 0.4))
    line = (0, 0, 0) if rng.random() < 0.7 else None
    skin = _skin(rng)
    draw.rectangle(
        (cx - r // 2, cy + r - 5, cx + r // 2, h), fill=_colour(rng), outline=line, width=3
    )
    draw.ellipse(
        (cx - r, cy - int(r * 1.15), cx + r, cy + int(r * 1.15)), fill=skin, outline=line, width=3
    )
    draw.chord((cx - r, cy - int(r * 1.25), cx + r, cy + int(r * 0.3)), 180, 360, fill=_colour(rng))
    ex, ey, er = int(r * 0.4), cy - int(r * 0.1), max(3, int(r * rng.uniform(0.1, 0.22)))
    for sx in (-1, 1):
        draw.ellipse(
            (cx + sx * ex - er, ey - er, cx + sx * ex + er, ey + er),
            fill=(255, 255, 255),
            outline=line,
            width=2,
        )
        pr = max(2, er // 2)
        draw.ellipse((cx + sx * ex - pr, ey - pr, cx + sx * ex + pr, ey + pr), fill=_colour(rng))
        draw.line(
            (cx + sx * ex - er, ey - er - 8, cx + sx * ex + er, ey - er - 12),
            fill=(40, 30, 20),
            width=4,
        )
    draw.line(
        (cx, cy, cx - r // 10, cy + r // 4, cx + r // 12, cy + r // 4), fill=(90, 60, 40), width=3
    )
    mw = int(r * rng.uniform(0.3, 0.6))
    draw.arc(
        (cx - mw, cy + r // 4, cx + mw, cy + int(r * 0.7)), 20, 160, fill=(150, 30, 40), width=5
    )
    return img


def _figures(rng: random.Random, size: Size) -> Image.Image:
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(rng.randrange(1, 5)):
        x, y = rng.randrange(w // 8, w - w // 8), rng.randrange(h // 6, h // 2)
        s = rng.randrange(h // 12, h // 5)
        col, skin = _colour(rng), _skin(rng)
        draw.ellipse((x - s // 2, y - s, x + s // 2, y), fill=skin, outline=(0, 0, 0), width=2)
        draw.rectangle((x - s // 2, y, x + s // 2, y + 2 * s), fill=col, outline=(0, 0, 0), width=2)
        draw.line((x - s // 4, y + 2 * s, x - s // 3, y + 3 * s), fill=(0, 0, 0), width=4)
        draw.line((x + s // 4, y + 2 * s, x + s // 3, y + 3 * s), fill=(0, 0, 0), width=4)
        draw.line((x - s // 2, y + s // 3, x - s, y + s), fill=skin, width=5)
        draw.line((x + s // 2, y + s // 3, x + s, y + s), fill=skin, width=5)
    return img


def _ui(rng: random.Random, size: Size) -> Image.Image:
    img = Image.new("RGB", size, (rng.randrange(200, 256),) * 3)
    draw = ImageDraw.Draw(img)
    w, h = size
    y = 10
    while y < h - 20:
        if rng.random() < 0.3:
            draw.rectangle((10, y, w - 10, y + 30), fill=_colour(rng))
            y += 40
        else:
            words = " ".join(
                "".join(rng.choice("abcdefghijklmnoprstuvw") for _ in range(rng.randrange(2, 9)))
                for _ in range(6)
            )
            draw.text((12, y), words, fill=(rng.randrange(80),) * 3)
            y += 16
    return img


def _painted_noise(rng: random.Random, size: Size) -> Image.Image:
    w, h = size
    gen = np.random.default_rng(rng.randrange(2**31))
    small = gen.random((max(2, h // 32), max(2, w // 32), 3))
    img = Image.fromarray((small * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(1, 6)))
    return img.quantize(rng.randrange(4, 24)).convert("RGB")


def cartoonise(photo: Image.Image, seed: int = 0) -> Image.Image:
    """A photograph turned into a flat-colour drawing: few colours, dark outlines, no noise."""
    rng = random.Random(seed)
    smooth = (
        photo.convert("RGB").filter(ImageFilter.MedianFilter(5)).filter(ImageFilter.GaussianBlur(2))
    )
    flat = smooth.quantize(rng.randrange(4, 12)).convert("RGB")
    edges = np.asarray(photo.convert("L").filter(ImageFilter.FIND_EDGES)) > rng.randrange(40, 90)
    arr = np.array(flat)
    arr[edges] = 0
    return Image.fromarray(arr)


def _cartoon(rng: random.Random, size: Size) -> Image.Image:
    return cartoon_face(rng.randrange(2**31), size)


#: Every kind of render, by name; the photorealism head is measured leaving each kind out.
RENDER_KINDS: dict[str, Callable[[random.Random, Size], Image.Image]] = {
    "shapes": _shapes,
    "cartoon_face": _cartoon,
    "figures": _figures,
    "ui_text": _ui,
    "painted_noise": _painted_noise,
}


def render(kind: str, seed: int, size: Size = (320, 320)) -> Image.Image:
    """One seeded render of ``kind`` (a key of :data:`RENDER_KINDS`)."""
    return RENDER_KINDS[kind](random.Random(f"{kind}:{seed}"), size)
