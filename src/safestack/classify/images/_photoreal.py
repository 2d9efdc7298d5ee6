"""Is an image photorealistic? A small logistic head over the open_nsfw embedding plus flatness.

Two cues, learned together by one logistic regression:

* the 1024-d open_nsfw embedding (computed anyway for the sexual-content score), which knows
  photographic texture, lighting and skin from the network's training on photographs;
* *flatness*, the fraction of pixels whose right and lower neighbours are exactly equal. Drawings,
  renders, logos and user-interface images are made of exactly flat regions; photographs, even
  smooth or compressed ones, rarely are (sensor noise, grain and shading break exact equality).

The training set is tiny and honest about it: about twenty public-domain / CC0 / CC BY
photographs from scikit-image and scikit-learn (augmented by crops, flips, grey conversion and
JPEG), against renders drawn here (see ``_synthetic``) and cartoonised copies of the same
photographs. The head is measured leaving one source out at a time (``measure_loso``); the card
reports those numbers. Because the photorealism gate decides whether a detected face can make an
image "photorealistic child", its default threshold is set low (err on photorealistic).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from safestack.classify._heads import Head, HeadBundle
from safestack.errors import ArtifactError

__all__ = [
    "PHOTOREAL_DIR",
    "PhotorealTraining",
    "fit_photoreal_head",
    "flatness",
    "packaged_photoreal_head",
    "photoreal_features",
    "photoreal_score",
]

PHOTOREAL_DIR = Path(__file__).parent
HEAD_FILE = "photoreal.npz"
MANIFEST = "manifest.json"
#: Side of the image flatness is measured on (nearest-neighbour downscale keeps flat regions flat).
FLATNESS_SIDE = 512


def flatness(image: Image.Image) -> float:
    """Fraction of pixels equal, in all three channels, to their right and lower neighbours."""
    img = image.convert("RGB")
    if max(img.size) > FLATNESS_SIDE:
        img = img.copy()
        img.thumbnail((FLATNESS_SIDE, FLATNESS_SIDE), Image.Resampling.NEAREST)
    a = np.asarray(img, dtype=np.int16)
    if a.shape[0] < 2 or a.shape[1] < 2:
        return 1.0
    same_x = (np.diff(a, axis=1) == 0).all(axis=2)[:-1, :]
    same_y = (np.diff(a, axis=0) == 0).all(axis=2)[:, :-1]
    return float((same_x & same_y).mean())


def photoreal_features(embedding: NDArray[np.float32], image: Image.Image) -> NDArray[np.float32]:
    """One training row: the embedding followed by flatness."""
    return np.concatenate([embedding, [flatness(image)]]).astype(np.float32)


def packaged_photoreal_head() -> tuple[dict[str, Head], str]:
    """The committed heads and their SHA-256, hash-checked against the manifest beside them."""
    manifest = PHOTOREAL_DIR / MANIFEST
    try:
        entry = json.loads(manifest.read_text())["photoreal"]
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{manifest} has no valid 'photoreal' entry: {exc}") from exc
    bundle = HeadBundle.load(PHOTOREAL_DIR / entry["file"], sha256=entry["sha256"])
    return bundle.heads, entry["sha256"]


# --- training ---------------------------------------------------------------------------------


@dataclass
class PhotorealTraining:
    """The training set: feature rows, labels (1 = photograph) and the source each came from."""

    x: NDArray[np.float32]
    y: NDArray[np.int64]
    groups: list[str] = field(default_factory=list)


def _augment(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    s = rng.uniform(0.4, 1.0)
    cw, ch = max(32, int(w * s)), max(32, int(h * s))
    x, y = rng.randrange(w - cw + 1), rng.randrange(h - ch + 1)
    out = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    if rng.random() < 0.3:
        out = out.convert("L").convert("RGB")
    if rng.random() < 0.5:
        with io.BytesIO() as buffer:
            out.save(buffer, format="JPEG", quality=rng.randrange(40, 95))
            buffer.seek(0)
            with Image.open(buffer) as jpeg:
                out = jpeg.convert("RGB")
    return out


def build_training_set(
    embed: Callable[[list[Image.Image]], list[NDArray[np.float32]]],
    *,
    crops_per_photo: int = 15,
    toons_per_photo: int = 4,
    renders_per_kind: int = 40,
    seed: int = 0,
) -> PhotorealTraining:
    """Photographs (augmented) against renders and cartoonised photographs, with source groups."""
    from safestack.classify.images._corpus import SAMPLES
    from safestack.classify.images._synthetic import RENDER_KINDS, cartoonise, render

    rng = random.Random(seed)
    rows: list[NDArray[np.float32]] = []
    labels: list[int] = []
    groups: list[str] = []

    def add(images: list[Image.Image], label: int, group: str) -> None:
        for img, emb in zip(images, embed(images), strict=True):
            rows.append(photoreal_features(emb, img))
            labels.append(label)
            groups.append(group)

    for sample in SAMPLES:
        if not sample.train:
            continue
        base = sample.load()
        add([base] + [_augment(base, rng) for _ in range(crops_per_photo)], 1, sample.name)
        toons = [cartoonise(_augment(base, rng), seed=i) for i in range(toons_per_photo)]
        add(toons, 0, sample.name)
    for kind in RENDER_KINDS:
        renders = [render(kind, i) for i in range(renders_per_kind)]
        add([r if i % 2 == 0 else _augment(r, rng) for i, r in enumerate(renders)], 0, kind)
    return PhotorealTraining(np.stack(rows), np.asarray(labels, dtype=np.int64), groups)


def _fit(x: NDArray[np.float32], y: NDArray[np.int64], c: float, seed: int) -> Head:
    """Logistic regression on standardised features, folded back into one linear layer."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, max_iter=5000, random_state=seed)
    model.fit((x - mean) / std, y)
    w = (model.coef_[0] / std).astype(np.float32)[:, None]
    b = np.asarray([model.intercept_[0] - float((model.coef_[0] * mean / std).sum())], np.float32)
    return Head((w,), (b,), ("photo",))


def _combiner_input(flat: NDArray[np.float32], logit: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.stack([flat, np.clip(logit, -20.0, 20.0) / 10.0], axis=1).astype(np.float32)


def _logit(p: NDArray[np.float32]) -> NDArray[np.float32]:
    q = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q)).astype(np.float32)


def photoreal_score(
    heads: dict[str, Head], embeddings: NDArray[np.float32], flat: NDArray[np.float32]
) -> NDArray[np.float32]:
    """P(photograph) per row from the two packaged heads (embedding, then combiner)."""
    logit = _logit(heads["embedding"].predict_proba(embeddings))
    return heads["combine"].predict_proba(_combiner_input(flat, logit))


def _out_of_fold_logits(data: PhotorealTraining, c: float, seed: int) -> NDArray[np.float32]:
    groups = np.asarray(data.groups)
    logits = np.zeros(len(data.y), dtype=np.float32)
    for group in sorted(set(data.groups)):
        held = groups == group
        head = _fit(data.x[~held, :-1], data.y[~held], c, seed)
        logits[held] = _logit(head.predict_proba(data.x[held, :-1]))
    return logits


def measure_loso(
    data: PhotorealTraining, *, c: float = 1.0, threshold: float = 0.5, seed: int = 0
) -> dict[str, Any]:
    """Leave one source out: each photograph's crops, or each render kind, scored unseen.

    The embedding head's logits are out-of-fold (each source scored by a head that never saw
    it); the two-parameter combiner is then also fitted leaving each source out.
    """
    groups = np.asarray(data.groups)
    z = _combiner_input(data.x[:, -1], _out_of_fold_logits(data, c, seed))
    scores = np.zeros(len(data.y), dtype=np.float32)
    for group in sorted(set(data.groups)):
        held = groups == group
        scores[held] = _fit(z[~held], data.y[~held], 1e3, seed).predict_proba(z[held])
    predicted = scores >= threshold
    photo = data.y == 1
    per_group = {
        g: round(float((predicted[groups == g] == (data.y[groups == g] == 1)).mean()), 3)
        for g in sorted(set(data.groups))
    }
    return {
        "threshold": threshold,
        "photo_recall": round(float(predicted[photo].mean()), 3),
        "non_photo_specificity": round(float((~predicted[~photo]).mean()), 3),
        "n_photo_rows": int(photo.sum()),
        "n_non_photo_rows": int((~photo).sum()),
        "accuracy_by_held_out_source": per_group,
    }


def fit_photoreal_head(
    data: PhotorealTraining, out_dir: Path = PHOTOREAL_DIR, *, c: float = 1.0, seed: int = 0
) -> str:
    """Fit both heads, write them and their manifest entry; return the SHA-256."""
    embedding = _fit(data.x[:, :-1], data.y, c, seed)
    z = _combiner_input(data.x[:, -1], _out_of_fold_logits(data, c, seed))
    combine = _fit(z, data.y, 1e3, seed)
    bundle = HeadBundle(
        {"embedding": embedding, "combine": combine},
        meta={
            "c": c,
            "seed": seed,
            "n_rows": len(data.y),
            "n_photo_rows": int((data.y == 1).sum()),
            "features": "open_nsfw penultimate (1024) -> logit; [flatness, logit/10] -> P(photo)",
        },
    )
    digest = bundle.save(out_dir / HEAD_FILE)
    manifest = {"photoreal": {"file": HEAD_FILE, "sha256": digest, "version": "1.0"}}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return digest


def embed_with(backbone: Any) -> Callable[[Sequence[Image.Image]], list[NDArray[np.float32]]]:
    """Adapt a :class:`Backbone` to the ``embed`` callable the training set builder wants."""
    return lambda images: [o.embedding for o in backbone.run(list(images))]
