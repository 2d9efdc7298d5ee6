"""Measure the image classifiers on every labelled image available offline; print Markdown.

Reproduces the tables of ``src/safestack/classify/images/CARD.md`` and the BENCHMARKS.md section:
per-class precision / recall of ``image-person`` and ``image-sexual`` (through the same
``evaluate_folder`` the ``safestack images evaluate`` command runs), face detection on the LFW
subset, the photorealism head left-one-source-out, and per-image latency (p50) on this machine.

    .venv/bin/python bench/image_classifiers.py [--retrain] [--skip-loso]

``--retrain`` refits the packaged photorealism head (and rewrites its manifest hash).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

from safestack.classify.images import (
    ImageSafetyClassifier,
    PersonImageClassifier,
    SexualContentImageClassifier,
    evaluate_folder,
)
from safestack.classify.images._backbone import Backbone
from safestack.classify.images._corpus import SAMPLES, lfw_faces
from safestack.classify.images._photoreal import (
    build_training_set,
    embed_with,
    fit_photoreal_head,
    measure_loso,
)
from safestack.media import decode_image, encode_png


def _write_folder(root: Path, sexual: bool) -> None:
    """Every sample twice (PNG and JPEG q75) under its class folder."""
    for s in SAMPLES:
        label = "not_sexual" if sexual else s.person
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        img = s.load()
        img.save(folder / f"{s.name}.png")
        img.save(folder / f"{s.name}.jpg", quality=75)


def _table(report: object) -> str:
    rows = [
        "| class | n_samples | n_predicted | precision | recall | F1 |",
        "|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    for label, r in report.classes.items():  # type: ignore[attr-defined]
        rows.append(
            f"| {label} | {r.n_samples} | {r.n_predicted} | {fmt(r.precision)} | "
            f"{fmt(r.recall)} | {fmt(r.f1)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--skip-loso", action="store_true")
    args = parser.parse_args()
    out: list[str] = []

    if args.retrain or not args.skip_loso:
        data = build_training_set(embed_with(Backbone()))
        if args.retrain:
            out.append(f"retrained photoreal head: sha256 {fit_photoreal_head(data)}")
        for t in (0.3, 0.5):
            r = measure_loso(data, threshold=t)
            weak = {k: v for k, v in r["accuracy_by_held_out_source"].items() if v < 0.9}
            out.append(
                f"photoreal LOSO @{t}: photo recall {r['photo_recall']}, non-photo specificity "
                f"{r['non_photo_specificity']} ({r['n_photo_rows']} photo / "
                f"{r['n_non_photo_rows']} non-photo rows); sources under 0.9 accuracy: {weak}"
            )

    person = PersonImageClassifier()
    sexual = SexualContentImageClassifier()
    with tempfile.TemporaryDirectory() as tmp:
        _write_folder(Path(tmp) / "person", sexual=False)
        _write_folder(Path(tmp) / "sexual", sexual=True)
        rp = evaluate_folder(Path(tmp) / "person", "image-person", classifier=person)
        rs = evaluate_folder(Path(tmp) / "sexual", "image-sexual", classifier=sexual)
    out += [
        "",
        "image-person on the scikit-image / scikit-learn samples (PNG + JPEG q75):",
        _table(rp),
    ]
    out += ["", "image-sexual on the same images (all benign):", _table(rs)]
    scores = [
        v.scores["sexual"]
        for v in sexual.classify([decode_image(encode_png(s.load())) for s in SAMPLES])
    ]
    out.append(f"highest open_nsfw score on a benign sample: {max(scores):.3f}")

    faces, backgrounds = lfw_faces()
    found = [person.analyse(decode_image(encode_png(f))) for f in faces]
    bg = [person.analyse(decode_image(encode_png(b))) for b in backgrounds]
    out.append(
        f"LFW subset (25x25 crops): faces detected in {sum(f.n_faces > 0 for f in found)}/100 "
        f"face crops, all too small to estimate an age; labelled photorealistic_child: "
        f"{sum(f.label == 'photorealistic_child' for f in found)}/100; "
        f"face detections on the 100 background crops: {sum(b.n_faces > 0 for b in bg)}"
    )

    safety = ImageSafetyClassifier()
    images = {
        "astronaut 512² (face)": SAMPLES[0].load(),
        "coffee 600×400 (no face)": SAMPLES[2].load(),
        "retina 1411² (no face)": next(s for s in SAMPLES if s.name == "retina").load(),
    }
    out += [
        "",
        f"latency p50 over 10 runs, {os.cpu_count()} cores:",
        "| image | image-sexual | image-person | image-default |",
        "|---|---|---|---|",
    ]
    for name, img in images.items():
        decoded = decode_image(encode_png(img))
        cells = []
        for clf in (sexual, person, safety):
            clf.classify([decoded])  # warm up
            times = []
            for _ in range(10):
                t = time.perf_counter()
                clf.classify([decoded])
                times.append(time.perf_counter() - t)
            cells.append(f"{statistics.median(times) * 1000:.0f} ms")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    buffer = io.StringIO()
    buffer.write("\n".join(out) + "\n")
    print(buffer.getvalue())


if __name__ == "__main__":
    main()
