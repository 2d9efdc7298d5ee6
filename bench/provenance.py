"""Provenance robustness: which signal still finds a released image after it was changed.

Every image the gateway releases is watermarked, signed (C2PA manifest) and registered (SHA-256
and PDQ of the final bytes). This measures, on real photographs and seeded synthetic images:

- for each transformation a re-uploaded image may have been through (metadata stripped, JPEG,
  resize, crop, rotation, screenshot, colour change), whether ``Provenance.lookup`` still says
  "made by us" *and names the right record*, which signal answered, and which signals would have
  found it on their own (the ``evidence`` of each lookup) — for the ``dwtDctSvd`` watermark on
  the whole set and ``rivaGan`` on a smaller subset (it is ~10× slower);
- false matches: images never stamped (and their transformations) looked up in the registry;
- the watermark's cost in image quality (PSNR against the original pixels) and its bit errors;
- the time to stamp an image (watermark embed, read-back check, C2PA signing, registry insert)
  and to look one up;
- the registry's in-memory near-match search (``Registry.nearest_pdq``, ``nearest_watermark``)
  at 100k and 1M synthetic records.

Real images are the RGB photographs shipped with scikit-image (public domain or CC0 by their
docstrings, except the two Middlebury stereo views, whose licence scikit-image does not state);
synthetic images are seeded gradients, shapes and noise textures. Watermark payloads and record
ids are random by design (``secrets``), so watermark numbers vary slightly from run to run.

Usage::

    python bench/provenance.py                 # full run (~15 min on 2 cores), writes BENCHMARKS.md
    python bench/provenance.py --quick         # a few images, 50k records; prints, never writes
    python bench/provenance.py --from-json r.json   # rewrite the section from saved results
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageEnhance
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

SECTION = "## Provenance: what survives, false matches, cost"
SIGNALS = ("manifest", "watermark", "pdq", "sha256")
SEED = 20261123
Pixels = NDArray[np.uint8]

# -- image sets ------------------------------------------------------------------------------------

#: scikit-image RGB photographs of at least 256×256, with the licence their docstrings give.
REAL = {
    "astronaut": "public domain (NASA)",
    "coffee": "CC0 (Rachel Michetti)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "rocket": "public domain (SpaceX)",
    "motorcycle_left": "Middlebury 2014 stereo set; licence not stated by scikit-image",
    "motorcycle_right": "Middlebury 2014 stereo set; licence not stated by scikit-image",
    "hubble_deep_field": "public domain (NASA)",
    "immunohistochemistry": "no known copyright restrictions",
    "retina": "CC0 (Häggström, Wikimedia)",
    "colorwheel": "scikit-image sample graphic; no licence stated",
}
#: Greyscale scikit-image photographs (as RGB): never stamped, the false-match set.
UNRELATED_REAL = {
    "camera": "CC0",
    "brick": "CC0 (CC0Textures)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
    "moon": "no licence stated",
    "cell": "CC0",
    "coins": "no known copyright restrictions",
    "clock": "public domain",
}
#: rivaGan costs ~1.5 s per 512² operation and grows with the pixel count: its subset keeps to
#: images of at most 768×512.
RIVA_REAL = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
SIZES = ((512, 512), (768, 512), (512, 768), (640, 480), (1024, 768))
KINDS = ("shapes", "texture", "mixed")


@dataclass(frozen=True)
class Sample:
    name: str
    source: str  # "real" or "synthetic"
    pixels: Pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def _skimage(name: str) -> Pixels:
    import skimage.data  # only the image sets need it

    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        image = left if name.endswith("left") else right
    else:
        image = getattr(skimage.data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)


def _smooth_noise(rng: np.random.Generator, width: int, height: int) -> NDArray[np.float64]:
    """Sum of upsampled random grids (three octaves), zero mean, roughly unit range."""
    total = np.zeros((height, width), dtype=np.float64)
    for cells, weight in ((4, 1.0), (16, 0.5), (64, 0.25)):
        grid = rng.random((cells, cells)).astype(np.float32)
        layer = Image.fromarray(grid, mode="F").resize((width, height), Image.Resampling.BICUBIC)
        total += weight * (np.asarray(layer, dtype=np.float64) - 0.5)
    return total


def synthetic_image(seed: int, width: int, height: int, kind: str) -> Pixels:
    """A seeded gradient with random shapes, a smooth-noise texture, or both, plus pixel noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) or 1.0)
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    image = start + (end - start) * ramp[..., None]
    if kind in ("texture", "mixed"):
        for channel in range(3):
            image[..., channel] += rng.uniform(60, 140) * _smooth_noise(rng, width, height)
    if kind in ("shapes", "mixed"):
        canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(6, 20))):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            x0, x1 = sorted(rng.integers(0, width, 2).tolist())
            y0, y1 = sorted(rng.integers(0, height, 2).tolist())
            shape = rng.integers(0, 3)
            if shape == 0:
                draw.ellipse((x0, y0, x1 + 8, y1 + 8), fill=colour)
            elif shape == 1:
                draw.rectangle((x0, y0, x1 + 8, y1 + 8), fill=colour)
            else:
                points = [
                    (int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(3)
                ]
                draw.polygon(points, fill=colour)
        image = np.asarray(canvas, dtype=np.float64)
    image += rng.normal(0, rng.uniform(1.5, 6.0), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def synthetic_set(count: int, seed: int, prefix: str) -> list[Sample]:
    return [
        Sample(
            f"{prefix}{i:02d}-{KINDS[i % 3]}-{w}x{h}",
            "synthetic",
            synthetic_image(seed + i, w, h, KINDS[i % 3]),
        )
        for i in range(count)
        for w, h in [SIZES[i % len(SIZES)]]
    ]


# -- transformations -------------------------------------------------------------------------------


def _rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        return opened.convert("RGB")


def _save(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _crop(share: float) -> Callable[[bytes, np.random.Generator], bytes]:
    def crop(data: bytes, rng: np.random.Generator) -> bytes:
        image = _rgb(data)
        w, h = image.size
        dx, dy = round(w * share / 2), round(h * share / 2)
        return _save(image.crop((dx, dy, w - dx, h - dy)))

    return crop


def _screenshot(data: bytes, rng: np.random.Generator) -> bytes:
    image = _rgb(data)
    w, h = image.size
    small = image.resize((round(w * 0.8), round(h * 0.8)), Image.Resampling.BILINEAR)
    frame = Image.new("RGB", (small.width + 12, small.height + 34), (236, 236, 236))
    frame.paste(small, (6, 28))
    return _save(frame)


def _jitter(data: bytes, rng: np.random.Generator) -> bytes:
    image = _rgb(data)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        factor = 1 + rng.choice([-1, 1]) * rng.uniform(0.10, 0.15)
        image = enhancer(image).enhance(float(factor))
    return _save(image)


Transform = Callable[[bytes, np.random.Generator], bytes]
TRANSFORMS: dict[str, tuple[str, Transform]] = {
    "unchanged": ("the released bytes", lambda d, r: d),
    "strip metadata": (
        "Pillow re-save as PNG: same pixels, manifest dropped",
        lambda d, r: _save(_rgb(d)),
    ),
    "JPEG q90": ("Pillow JPEG, quality 90", lambda d, r: _save(_rgb(d), "JPEG", quality=90)),
    "JPEG q75": ("quality 75", lambda d, r: _save(_rgb(d), "JPEG", quality=75)),
    "JPEG q50": ("quality 50", lambda d, r: _save(_rgb(d), "JPEG", quality=50)),
    "resize 50%": (
        "half the width and height, bicubic, PNG",
        lambda d, r: _save(
            (im := _rgb(d)).resize((im.width // 2, im.height // 2), Image.Resampling.BICUBIC)
        ),
    ),
    "crop 10%": (
        "centre crop removing 10% of each side's length (5% off each edge; 81% of the area "
        "kept), PNG",
        _crop(0.10),
    ),
    "crop 25%": ("removing 25% of each side's length (56% of the area kept), PNG", _crop(0.25)),
    "rotate 90°": ("PNG", lambda d, r: _save(_rgb(d).transpose(Image.Transpose.ROTATE_90))),
    "screenshot-like": (
        "scaled to 0.8× (bilinear) inside a 28-px title bar and 6-px grey frame, PNG",
        _screenshot,
    ),
    "rescale 0.8 + JPEG q85": (
        "the screenshot's scaling without its frame: 0.8× bilinear, JPEG quality 85",
        lambda d, r: _save(
            (im := _rgb(d)).resize(
                (round(im.width * 0.8), round(im.height * 0.8)), Image.Resampling.BILINEAR
            ),
            "JPEG",
            quality=85,
        ),
    ),
    "colour jitter": (
        "brightness, contrast and saturation each ×(1 ± 0.10–0.15), seeded, PNG",
        _jitter,
    ),
}


# -- measuring -------------------------------------------------------------------------------------


class _Probe:
    """Times the parts of ``stamp`` and catches the payload each watermark read returned.

    Wraps bound methods of one live :class:`Provenance` (its watermarker, signer and registry):
    the real code runs, only a clock and a note of the result are added around it.
    """

    def __init__(self, provenance: Any) -> None:
        self.ms: dict[str, float] = {}
        self.last_read: int | None = None
        parts = {
            "embed": (provenance.watermarker, "embed"),
            "read-back": (provenance.watermarker, "extract"),
            "sign": (provenance.signer, "sign"),
            "register": (provenance.registry, "register"),
        }
        for key, (owner, name) in parts.items():
            setattr(owner, name, self._wrap(key, getattr(owner, name)))

    def _wrap(self, key: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            finally:
                self.ms[key] = self.ms.get(key, 0.0) + (time.perf_counter() - start) * 1000
            if key == "read-back":
                self.last_read = result
            return result

        return timed

    def reset(self) -> None:
        self.ms, self.last_read = {}, None


def _png(pixels: Pixels) -> bytes:
    return _save(Image.fromarray(pixels))


def _psnr(a: Pixels, b: Pixels) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _per_signal(result: Any, truth: str | None) -> dict[str, str]:
    """For each signal: 'right' (matched the true record), 'wrong' (another record) or 'no'."""
    verdict = dict.fromkeys(SIGNALS, "no")
    for evidence in result.evidence:
        if not evidence.matched:
            continue
        right = truth is not None and evidence.record_id == truth
        if right or verdict[evidence.signal] == "no":
            verdict[evidence.signal] = "right" if right else "wrong"
    return verdict


@contextmanager
def _provenance(method: str) -> Iterator[Any]:
    """A Provenance with its own temporary SQLite registry and development credentials."""
    from safestack.provenance import Provenance, ProvenanceConfig
    from safestack.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAFESTACK_PROVENANCE_DIR"] = tmp
        with Store(f"sqlite:///{tmp}/registry.db") as store:
            store.migrate()
            yield Provenance.from_config(ProvenanceConfig(watermark=method), store)  # type: ignore[arg-type]


def run_method(
    method: str, stamped_set: list[Sample], unrelated: list[Sample], progress: Progress
) -> dict[str, Any]:
    """Stamp ``stamped_set``, look up every transformation of it and of ``unrelated``."""
    stamps: list[dict[str, Any]] = []
    lookups: list[dict[str, Any]] = []
    false: list[dict[str, Any]] = []
    with _provenance(method) as provenance:
        probe = _Probe(provenance)
        task = progress.add_task(f"{method}: stamp", total=len(stamped_set))
        released = []
        for i, sample in enumerate(stamped_set):
            probe.reset()
            start = time.perf_counter()
            stamped = provenance.stamp(
                _png(sample.pixels), model="bench", prompt=f"bench {i}", request_id=f"req-{i}"
            )
            total = (time.perf_counter() - start) * 1000
            record = stamped.record
            marked = record.watermark_method is not None
            pixels = np.asarray(_rgb(stamped.data))
            stamps.append(
                {
                    "image": sample.name,
                    "source": sample.source,
                    "size": sample.size,
                    "watermarked": marked,
                    "psnr": _psnr(sample.pixels, pixels) if marked else None,
                    "stamp_ms": total,
                    **{f"{k}_ms": v for k, v in probe.ms.items()},
                }
            )
            payload = int(record.watermark_payload, 16) if marked else None
            released.append((sample, stamped.data, record.id, payload))
            progress.advance(task)

        task = progress.add_task(f"{method}: look up", total=len(released) * len(TRANSFORMS))
        for i, (sample, data, record_id, payload) in enumerate(released):
            for j, (name, (_, transform)) in enumerate(TRANSFORMS.items()):
                changed = transform(data, np.random.default_rng([SEED, i, j]))
                probe.reset()
                start = time.perf_counter()
                result = provenance.lookup(changed)
                elapsed = (time.perf_counter() - start) * 1000
                read = probe.last_read
                lookups.append(
                    {
                        "image": sample.name,
                        "source": sample.source,
                        "transform": name,
                        "made_by_us": result.made_by_us,
                        "correct": result.made_by_us and result.record_id == record_id,
                        "signal": result.signal,
                        "per_signal": _per_signal(result, record_id),
                        "bit_errors": None
                        if payload is None or read is None
                        else (read ^ payload).bit_count(),
                        "pdq_distance": next(
                            (
                                e.distance
                                for e in result.evidence
                                if e.signal == "pdq" and e.matched
                            ),
                            None,
                        ),
                        "lookup_ms": elapsed,
                        "watermark_read_ms": probe.ms.get("read-back"),
                    }
                )
                progress.advance(task)

        task = progress.add_task(f"{method}: unrelated", total=len(unrelated) * len(TRANSFORMS))
        for i, sample in enumerate(unrelated):
            original = _png(sample.pixels)
            for j, (name, (_, transform)) in enumerate(TRANSFORMS.items()):
                result = provenance.lookup(
                    transform(original, np.random.default_rng([SEED, 99, i, j]))
                )
                false.append(
                    {
                        "image": sample.name,
                        "source": sample.source,
                        "transform": name,
                        "made_by_us": result.made_by_us,
                        "signal": result.signal,
                        "per_signal": _per_signal(result, None),
                    }
                )
                progress.advance(task)
    return {
        "method": method,
        "bits": provenance.watermarker.bits,
        "max_bit_errors": provenance.watermarker.max_bit_errors,
        "stamps": stamps,
        "lookups": lookups,
        "unrelated": false,
    }


CROP_SHARES = (0.02, 0.04, 0.06, 0.10)


def pdq_crop_curve(samples: list[Sample]) -> list[dict[str, Any]]:
    """PDQ distance from each image to its centre crops and to it inside a screenshot frame.

    Plain ``pdq_of`` on the original pixels (no watermark, no registry): how far a crop or a
    frame moves the hash, against the match radius.
    """
    from safestack.hashing import pdq_of

    rows = []
    for sample in samples:
        image = Image.fromarray(sample.pixels)
        reference, _ = pdq_of(image)

        def distance(changed: Image.Image, reference: str = reference) -> int:
            return (int(reference, 16) ^ int(pdq_of(changed)[0], 16)).bit_count()

        w, h = image.size
        row: dict[str, Any] = {"image": sample.name}
        for share in CROP_SHARES:
            dx, dy = round(w * share / 2), round(h * share / 2)
            row[f"crop {share:.0%}"] = distance(image.crop((dx, dy, w - dx, h - dy)))
        frame = Image.new("RGB", (w + 12, h + 34), (236, 236, 236))
        frame.paste(image, (6, 28))
        row["frame"] = distance(frame)
        rows.append(row)
    return rows


def _timed_p50(call: Callable[[Any], Any], make: Callable[[], Any], queries: int) -> float:
    """p50 ms of ``call(make())`` over ``queries`` calls (only ``call`` timed), after 5 warm-ups."""
    for _ in range(5):
        call(make())
    times = []
    for _ in range(queries):
        argument = make()
        start = time.perf_counter()
        call(argument)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def registry_scale(n: int, queries: int, progress: Progress) -> dict[str, Any]:
    """Latency of the registry's in-memory near-match search over ``n`` random records.

    Records go in through ``Registry._add`` (what :meth:`Registry.refresh` does with each row it
    reads from the store), then the PDQ tail is folded into the index as ``refresh`` would. The
    database read at start-up is not part of this.
    """
    from safestack.hashing import PDQ_MATCH_DISTANCE
    from safestack.provenance import Registry
    from safestack.provenance._registry import _TAIL_LIMIT
    from safestack.store import ProvenanceIndexEntry, Store

    rng = np.random.default_rng([SEED, n])
    codes = rng.integers(0, 256, (n + _TAIL_LIMIT, 32), dtype=np.uint8)
    dwt = rng.integers(0, 2**63, n + _TAIL_LIMIT, dtype=np.int64)
    riva = rng.integers(0, 2**32, n, dtype=np.int64)

    def entry(seq: int, code: int | None, method: str, payload: int) -> ProvenanceIndexEntry:
        return ProvenanceIndexEntry(
            seq=seq,
            pdq=None if code is None else codes[code].tobytes().hex(),
            pdq_quality=None if code is None else 100,
            watermark_method=method,
            watermark_payload=f"{payload:x}",
        )

    def random_hashes() -> list[str]:
        return [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(8)]

    def near_hashes() -> list[str]:
        code = np.unpackbits(codes[int(rng.integers(0, n))])
        code[rng.choice(256, int(rng.integers(0, PDQ_MATCH_DISTANCE + 1)), replace=False)] ^= 1
        return [np.packbits(code).tobytes().hex(), *random_hashes()[:7]]

    task = progress.add_task(f"registry: {n:,} records", total=2 * n + _TAIL_LIMIT)
    with tempfile.TemporaryDirectory() as tmp, Store(f"sqlite:///{tmp}/r.db") as store:
        registry = Registry(store)
        start = time.perf_counter()
        for i in range(n):
            registry._add(entry(i + 1, i, "dwtDctSvd", int(dwt[i])))
            if i % 10_000 == 9_999:
                progress.advance(task, 10_000)
        for i in range(n):  # rivaGan payloads on records of their own, as in a mixed registry
            registry._add(entry(n + i + 1, None, "rivaGan", int(riva[i])))
            if i % 10_000 == 9_999:
                progress.advance(task, 10_000)
        registry._rebuild()
        row: dict[str, Any] = {
            "n": n,
            "build_s": time.perf_counter() - start,
            "index": repr(registry._pdq_index),
            "pdq_random_ms": _timed_p50(registry.nearest_pdq, random_hashes, queries),
            "pdq_near_ms": _timed_p50(registry.nearest_pdq, near_hashes, queries),
            "dwt_ms": _timed_p50(
                lambda p: registry.nearest_watermark("dwtDctSvd", p),
                lambda: int(rng.integers(0, 2**63)),
                queries,
            ),
            "riva_ms": _timed_p50(
                lambda p: registry.nearest_watermark("rivaGan", p),
                lambda: int(rng.integers(0, 2**32)),
                queries,
            ),
        }
        # The worst moment: a full tail of records registered since the last fold.
        for i in range(n, n + _TAIL_LIMIT):
            registry._add(entry(n + i + 1, i, "dwtDctSvd", int(dwt[i])))
        progress.advance(task, _TAIL_LIMIT)
        row["tail"] = _TAIL_LIMIT
        row["when"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M+00:00")
        row["pdq_random_tail_ms"] = _timed_p50(registry.nearest_pdq, random_hashes, queries)
    return row


# -- report ----------------------------------------------------------------------------------------


def _share(values: list[bool]) -> str:
    return f"{sum(values) / len(values):.0%}" if values else "–"


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _method_table(run: dict[str, Any]) -> list[str]:
    bits = run["bits"]
    lines = [
        f"| transformation | recognised, right record | answered by | manifest | watermark | pdq "
        f"| sha256 | watermark bit errors, mean (of {bits}) | wrong record |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in TRANSFORMS:
        rows = [r for r in run["lookups"] if r["transform"] == name]
        answered = Counter(r["signal"] for r in rows if r["correct"])
        by = ", ".join(f"{s} {c}" for s, c in answered.most_common()) or "–"
        per_signal = [_share([r["per_signal"][s] == "right" for r in rows]) for s in SIGNALS]
        errors = [r["bit_errors"] for r in rows if r["bit_errors"] is not None]
        mean_errors = f"{statistics.mean(errors):.1f} (n={len(errors)})" if errors else "–"
        wrong = sum(
            (r["made_by_us"] and not r["correct"]) or "wrong" in r["per_signal"].values()
            for r in rows
        )
        lines.append(
            f"| {name} | {_share([r['correct'] for r in rows])} | {by} | "
            f"{' | '.join(per_signal)} | {mean_errors} | {wrong} |"
        )
    return lines


def _survives(run: dict[str, Any], signal: str, at_least: float) -> list[str]:
    """Transformations after which ``signal`` alone found ``at_least`` of the images it could.

    For the watermark, "could" means the images it took on at stamping.
    """
    marked = {s["image"] for s in run["stamps"] if s["watermarked"]}
    kept = []
    for name in TRANSFORMS:
        rows = [
            r
            for r in run["lookups"]
            if r["transform"] == name and (signal != "watermark" or r["image"] in marked)
        ]
        if rows and sum(r["per_signal"][signal] == "right" for r in rows) >= at_least * len(rows):
            kept.append(name)
    return kept


def _recognised(run: dict[str, Any], name: str) -> float:
    rows = [r for r in run["lookups"] if r["transform"] == name]
    return sum(r["correct"] for r in rows) / len(rows) if rows else float("nan")


def section(results: dict[str, Any], command: str) -> list[str]:
    runs = results["runs"]
    machine = results["machine"]
    first = runs[0]
    real = sorted({s["image"] for s in first["stamps"] if s["source"] == "real"})
    n_synth = sum(s["source"] == "synthetic" for s in first["stamps"])
    lines = [
        f"`{command}` ({machine['when']}; {machine['arch']}, {machine['cores']} cores, Python "
        f"{machine['python']}, invisible-watermark {machine['invisible-watermark']}, c2pa-python "
        f"{machine['c2pa-python']}, Pillow {machine['pillow']}; load average "
        f"{machine['load_start']:.2f} at the start, {machine['load_end']:.2f} at the end; "
        f"{machine['wall_min']:.1f} min). Each image is stamped as a PNG by "
        "`Provenance.from_config(ProvenanceConfig(watermark=…), store)` on a fresh SQLite registry "
        "(development credentials), then every transformation of the released bytes is looked up "
        "with `provenance.lookup`. Real images: "
        + ", ".join(f"{name} ({REAL[name]})" for name in real)
        + f" — the scikit-image RGB photographs of at least 256×256 ({len(real)}); synthetic: "
        f"{n_synth} seeded images (gradient + random shapes, smooth-noise texture, or both, plus "
        "pixel noise; 512×512, 768×512, 512×768, 640×480, 1024×768).",
        "",
        "Transformations: "
        + "; ".join(f"**{name}**: {text}" for name, (text, _) in TRANSFORMS.items())
        + ".",
        "",
        "*Recognised* = `made_by_us` and the record is the one stamped. The signal columns say "
        "whether that signal **alone** found the right record (from the lookup's `evidence`), "
        "whatever answered. *Bit errors* = payload bits read back by the lookup that differ from "
        "the stamped payload (images whose mark took and that are still large enough to read). "
        "*Wrong record* = lookups where the answer or any single signal named another record.",
        "",
    ]
    for run in runs:
        stamped = run["stamps"]
        n_real = sum(s["source"] == "real" for s in stamped)
        marked = sum(s["watermarked"] for s in stamped)
        unmarked = [s["image"] for s in stamped if not s["watermarked"]]
        not_on = f" (not on {', '.join(unmarked)})" if unmarked else ""
        lines += [
            f"**{run['method']}** ({len(stamped)} images: {n_real} real, "
            f"{len(stamped) - n_real} synthetic; the watermark took on {marked}{not_on}; a match "
            f"allows {run['max_bit_errors']} of {run['bits']} bits):",
            "",
            *_method_table(run),
            "",
        ]

    lines += [
        "False matches: images never stamped (greyscale scikit-image photographs as RGB: "
        + ", ".join(sorted({r["image"] for r in runs[0]["unrelated"] if r["source"] == "real"}))
        + "; and synthetic images of other seeds), each with every transformation above, looked "
        "up in the registry of the run.",
        "",
        "| registry | records | unrelated images | lookups | made_by_us true | by signal |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        rows = run["unrelated"]
        hits = [r for r in rows if r["made_by_us"]]
        by = ", ".join(f"{s} {c}" for s, c in Counter(r["signal"] for r in hits).most_common())
        lines.append(
            f"| {run['method']} | {len(run['stamps'])} | {len({r['image'] for r in rows})} | "
            f"{len(rows)} | {len(hits)} ({len(hits) / len(rows):.1%}) | {by or '–'} |"
        )
    lines += [
        "",
        "Quality and cost per image (p50 over the set; sizes are mixed, so also the 512×512 "
        "images alone). *Other* = decoding, PNG re-encoding and PDQ hashing, i.e. stamp − the "
        "four timed parts. Lookup = everything `lookup` does (SHA-256 query, manifest read, "
        "watermark read, PDQ of all eight rotations and flips, registry search).",
        "",
        "| method | images | PSNR mean dB | PSNR min dB | bit errors after JPEG q75, mean (max) | "
        "stamp p50 ms | embed | read-back | C2PA sign | register | other | lookup p50 ms | "
        "lookup p90 ms | stamp p50, 512² | lookup p50, 512² |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        stamped = run["stamps"]
        psnr = [s["psnr"] for s in stamped if s["psnr"] is not None]
        q75 = [
            r["bit_errors"]
            for r in run["lookups"]
            if r["transform"] == "JPEG q75" and r["bit_errors"] is not None
        ]
        parts = {
            k: _p([s.get(f"{k}_ms", 0.0) for s in stamped], 50)
            for k in ("embed", "read-back", "sign", "register")
        }
        other = _p(
            [s["stamp_ms"] - sum(s.get(f"{k}_ms", 0.0) for k in parts) for s in stamped],
            50,
        )
        square = {s["image"] for s in stamped if tuple(s["size"]) == (512, 512)}
        lookup_ms = [r["lookup_ms"] for r in run["lookups"]]
        lines.append(
            f"| {run['method']} | {len(stamped)} | "
            f"{statistics.mean(psnr):.1f} | {min(psnr):.1f} | "
            f"{statistics.mean(q75):.2f} ({max(q75)}) of {run['bits']} | "
            f"{_p([s['stamp_ms'] for s in stamped], 50):.0f} | {parts['embed']:.0f} | "
            f"{parts['read-back']:.0f} | {parts['sign']:.0f} | {parts['register']:.1f} | "
            f"{other:.0f} | {_p(lookup_ms, 50):.0f} | {_p(lookup_ms, 90):.0f} | "
            f"{_p([s['stamp_ms'] for s in stamped if s['image'] in square], 50):.0f} | "
            f"{_p([r['lookup_ms'] for r in run['lookups'] if r['image'] in square], 50):.0f} |"
        )
    scale = results["scale"]
    lines += [
        "",
        "Registry search at scale (`Registry.nearest_pdq` with the eight hashes a lookup passes, "
        "`nearest_watermark`), p50 of "
        f"{results['scale_queries']} queries after 5 warm-up ones (measured "
        f"{scale[0].get('when', machine['when'])}). Records are uniformly random "
        "PDQ codes and payloads (seeded), added with `Registry._add` — what `refresh()` does with "
        "each row it reads from the store — and folded into the PDQ index as `refresh()` would; "
        "the same number of rivaGan payloads again on records without PDQ. *Build* is that "
        "in-memory part only: reading the rows from the database at start-up is not timed here. "
        f"*With tail*: the same after {scale[0]['tail']:,} more records, the most the linear "
        "tail holds before it is folded into a rebuilt index (in the background).",
        "",
        "| records | PDQ index | build s | nearest_pdq p50 ms, no match | nearest_pdq p50 ms, "
        f"near-duplicate | nearest_pdq p50 ms, with {scale[0]['tail']:,}-record tail | "
        "nearest_watermark "
        "dwtDctSvd p50 ms | nearest_watermark rivaGan p50 ms |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['n']:,} | `{r['index']}` | {r['build_s']:.1f} | {r['pdq_random_ms']:.2f} | "
            f"{r['pdq_near_ms']:.2f} | {r['pdq_random_tail_ms']:.2f} | {r['dwt_ms']:.2f} | "
            f"{r['riva_ms']:.2f} |"
            for r in scale
        ),
        "",
        "What this means:",
        "",
        *_interpretation(results),
    ]
    return lines


def _rate_bound(hits: int, n: int) -> str:
    """The observed share, and for none the 95% upper bound by the rule of three."""
    if hits:
        return f"{hits} of {n} ({hits / n:.1%})"
    return f"0 of {n} (95% upper bound ≈ {3 / n:.1%})"


def _pdq_notes(results: dict[str, Any]) -> list[str]:
    curve = results.get("pdq_crop") or []
    if not curve:
        return []
    from safestack.hashing import PDQ_MATCH_DISTANCE

    parts = []
    for key in [f"crop {share:.0%}" for share in CROP_SHARES] + ["frame"]:
        distances = [row[key] for row in curve]
        within = sum(d <= PDQ_MATCH_DISTANCE for d in distances)
        parts.append(
            f"{key}: median {statistics.median(distances):.0f} bits, {within} of "
            f"{len(distances)} within {PDQ_MATCH_DISTANCE}"
        )
    return [
        "- PDQ against crops and frames (plain `pdq_of` on the original pixels of the "
        f"{len(curve)} images, distance to the uncropped hash; *crop x%* removes x% of each side's "
        "length; *frame* is the screenshot's 28-px bar and 6-px border without scaling): "
        + "; ".join(parts)
        + ". PDQ hashes the whole picture, so it tolerates only a few per cent of crop and no "
        'frame: "lightly cropped" means a sliver.'
    ]


def _interpretation(results: dict[str, Any]) -> list[str]:
    notes = []
    for run in results["runs"]:
        method = run["method"]
        marked = sum(s["watermarked"] for s in run["stamps"])
        survives = {s: _survives(run, s, 0.9) for s in SIGNALS}
        nothing = [name for name in TRANSFORMS if _recognised(run, name) == 0]
        rotations = [
            r["pdq_distance"]
            for r in run["lookups"]
            if r["transform"] == "rotate 90°" and r.get("pdq_distance") is not None
        ]
        rotated = [r for r in run["lookups"] if r["transform"] == "rotate 90°"]
        notes.append(
            f"- **{method}** registry. Found by the manifest in ≥ 90% of images only after: "
            f"{_list(survives['manifest'])}. By the {method} watermark (≥ 90% of the {marked} "
            f"images it took on) after: {_list(survives['watermark'])}. By PDQ after: "
            f"{_list(survives['pdq'])}. Found by nothing: {_list(nothing)}. A 90° rotation is "
            "found through the eight dihedral hashes, which match a rotated image only "
            "approximately (exactly for some square images): "
            + (f"distances {min(rotations)}–{max(rotations)} bits" if rotations else "no match")
            + f", {len(rotations)} of {len(rotated)} within the radius."
        )
    for run in results["runs"]:
        rows = run["unrelated"]
        hits = sum(r["made_by_us"] for r in rows)
        notes.append(
            f"- False matches, {run['method']} registry of {len(run['stamps'])} images: "
            f"{_rate_bound(hits, len(rows))} lookups of never-stamped images said made_by_us."
        )
    notes[-1] += (
        " These registries are small: PDQ's false-match rate grows with the number of records, "
        "as do the watermark's chance matches (what its confidence is computed from)."
    )
    notes += _pdq_notes(results)
    notes += [
        "- The manifest is metadata: every re-save here drops it (Pillow writes no C2PA data), "
        "so it answers for the bytes as released, and SHA-256 for exactly those bytes. Both "
        "are exact, neither is robust.",
        "- Whatever no signal finds, a re-upload after it is *not* recognised: a lookup that "
        "says made_by_us is evidence; one that does not is no proof the image is not ours.",
    ]
    return notes


def _list(names: list[str]) -> str:
    return ", ".join(names) if names else "no transformation"


# -- main ------------------------------------------------------------------------------------------


def _machine(start: float) -> dict[str, Any]:
    return {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M+00:00"),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "invisible-watermark": version("invisible-watermark"),
        "c2pa-python": version("c2pa-python"),
        "pillow": version("pillow"),
        "load_start": start,
        "load_end": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md",
        help="the Markdown file whose provenance section is rewritten",
    )
    parser.add_argument("--quick", action="store_true", help="a few images; prints, never writes")
    parser.add_argument("--synthetic", type=int, default=40, help="synthetic images to stamp")
    parser.add_argument("--sizes", default="100000,1000000", help="registry sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=500, help="registry queries per kind")
    parser.add_argument("--json", type=Path, default=None, help="also save the raw results")
    parser.add_argument("--from-json", type=Path, default=None, help="rewrite from saved results")
    parser.add_argument(
        "--rescale",
        action="store_true",
        help="with --from-json: measure the registry search again (seconds, not the stamping's "
        "quarter of an hour), keep the rest",
    )
    args = parser.parse_args()

    if args.from_json:
        results = json.loads(args.from_json.read_text())
        if args.rescale:
            sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
            with Progress(TextColumn("{task.description}"), BarColumn()) as progress:
                results["scale"] = [registry_scale(n, args.queries, progress) for n in sizes]
            results["scale_queries"] = args.queries
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
    else:
        started, load = time.perf_counter(), os.getloadavg()[0]
        real_names = list(REAL)[:3] if args.quick else list(REAL)
        synthetic = 5 if args.quick else args.synthetic
        real = [Sample(name, "real", _skimage(name)) for name in real_names]
        everything = real + synthetic_set(synthetic, SEED, "synth")
        riva = [s for s in real if s.name in RIVA_REAL] + [
            s for s in everything if s.source == "synthetic" and s.size[0] * s.size[1] <= 768 * 512
        ][: 2 if args.quick else 5]
        unrelated_real = list(UNRELATED_REAL)[: 2 if args.quick else len(UNRELATED_REAL)]
        unrelated = [Sample(n, "real", _skimage(n)) for n in unrelated_real] + synthetic_set(
            2 if args.quick else 12, SEED + 10_000, "other"
        )
        riva_unrelated = (
            unrelated[:2] + unrelated[-2:] if args.quick else unrelated[:3] + unrelated[-3:]
        )
        sizes = [50_000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
        queries = 50 if args.quick else args.queries
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns) as progress:
            runs = [
                run_method("dwtDctSvd", everything, unrelated, progress),
                run_method("rivaGan", riva, riva_unrelated, progress),
            ]
            scale = [registry_scale(n, queries, progress) for n in sizes]
            crop_curve = pdq_crop_curve(everything)
        machine = _machine(load)
        machine["wall_min"] = (time.perf_counter() - started) / 60
        results = {
            "runs": runs,
            "scale": scale,
            "scale_queries": queries,
            "pdq_crop": crop_curve,
            "machine": machine,
        }
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    command = "python bench/provenance.py" + (" --quick" if args.quick else "")
    lines = section(results, command)
    print("\n".join(lines))
    if args.quick:
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from stack import write_section  # bench/stack.py

    write_section(args.out, SECTION, lines)


if __name__ == "__main__":
    main()
