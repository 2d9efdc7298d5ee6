"""Re-measure the numbers in ``CARD.md``: ``python -m safestack.classify.faces._measure``.

Only images that ship with installed packages are used (nothing is downloaded): scikit-image's
astronaut photograph (Eileen Collins, NASA, public domain) and its 25 × 25 LFW face crops. What
this measures is robustness to transforms (same photograph, edited) and the distances between
faces of different (or at least different-photo) people; it cannot measure recognising one
person across different photographs. Prints JSON.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from safestack.classify.faces._embedder import FaceEmbedder
from safestack.media import decode_image, encode_png

__all__ = ["TRANSFORMS", "lfw_faces", "measure"]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return decode_image(buffer.getvalue()).image


def _face_crop_lowres(image: Image.Image) -> Image.Image:
    """The astronaut's face cut and shrunk to LFW's 25 × 25, then enlarged as LFW crops are."""
    face = image.crop((170, 70, 275, 185)).convert("L").resize((25, 25), Image.Resampling.BICUBIC)
    return face.resize((100, 100), Image.Resampling.BICUBIC).convert("RGB")


#: Edits of one photograph that must still match it (name → transform of an RGB image).
TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg_q50": lambda im: _jpeg(im, 50),
    "jpeg_q20": lambda im: _jpeg(im, 20),
    "resize_50pct": lambda im: im.resize(
        (im.width // 2, im.height // 2), Image.Resampling.BILINEAR
    ),
    "crop_face_region": lambda im: im.crop((90, 0, 370, 300)),
    "rotate_5deg": lambda im: im.rotate(5, resample=Image.Resampling.BILINEAR, fillcolor="white"),
    "rotate_15deg": lambda im: im.rotate(15, resample=Image.Resampling.BILINEAR, fillcolor="white"),
    "brighter_1.4": lambda im: ImageEnhance.Brightness(im).enhance(1.4),
    "darker_0.6": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "mirrored": ImageOps.mirror,
    "upscaled_2x": lambda im: im.resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC),
    "lfw_like_25px_face": _face_crop_lowres,
}


def _sample(name: str) -> np.ndarray:
    """One of scikit-image's bundled sample images (its loaders are untyped)."""
    import skimage.data

    loader: Callable[[], np.ndarray] = getattr(skimage.data, name)
    return loader()


def lfw_faces() -> list[np.ndarray]:
    """scikit-image's 100 LFW face crops (25 × 25 grey), enlarged to 100 × 100 RGB for dlib."""
    crops = _sample("lfw_subset")[:100]
    out = []
    for crop in crops:
        grey = Image.fromarray(np.round(crop * 255).astype(np.uint8))
        big = grey.resize((100, 100), Image.Resampling.BICUBIC).convert("RGB")
        out.append(np.ascontiguousarray(np.asarray(big, dtype=np.uint8)))
    return out


def measure(threshold: float = 0.6) -> dict[str, object]:
    """Distances of transformed astronauts and of other faces to the astronaut's face."""
    embedder = FaceEmbedder()
    astronaut = Image.fromarray(_sample("astronaut"))
    reference = embedder.frame_faces(np.asarray(astronaut))
    assert len(reference) == 1, f"expected one face in the astronaut photo, got {len(reference)}"
    anchor = reference[0].descriptor
    same: dict[str, float | None] = {}
    for name, transform in TRANSFORMS.items():
        edited = decode_image(encode_png(transform(astronaut)))
        faces = embedder.faces(edited)
        same[name] = (
            round(min(float(np.linalg.norm(f.descriptor - anchor)) for f in faces), 4)
            if faces
            else None
        )
    lfw = [embedder.frame_faces(pixels) for pixels in lfw_faces()]
    descriptors = [faces[0].descriptor for faces in lfw if faces]
    to_astronaut = sorted(float(np.linalg.norm(d - anchor)) for d in descriptors)
    stacked = np.stack(descriptors)
    pairwise = np.linalg.norm(stacked[:, None] - stacked[None], axis=2)
    upper = pairwise[np.triu_indices(len(descriptors), k=1)]
    camera = np.stack([_sample("camera")] * 3, axis=-1)
    return {
        "threshold": threshold,
        "astronaut_transforms_distance": same,
        "lfw_detected": f"{len(descriptors)}/100",
        "lfw_to_astronaut": {
            "n": len(to_astronaut),
            "min": round(to_astronaut[0], 4),
            "median": round(float(np.median(to_astronaut)), 4),
            "below_threshold": sum(d < threshold for d in to_astronaut),
        },
        "lfw_pairwise": {
            "pairs": int(upper.size),
            "min": round(float(upper.min()), 4),
            "p01": round(float(np.percentile(upper, 1)), 4),
            "median": round(float(np.median(upper)), 4),
            **{f"below_{t}": int((upper < t).sum()) for t in (0.4, 0.5, 0.55, threshold)},
        },
        "faces_in_camera_photo": len(embedder.frame_faces(np.ascontiguousarray(camera))),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
