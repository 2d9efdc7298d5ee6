"""Latency and throughput of the embedded prompt classifier, beside the raw embedding model.

Writes BENCHMARKS.md. Texts are real prompts (XSTest, SimpleSafetyTests, JBB, Self-Instruct
lengths) when the datasets are present, else the demo samples repeated. The "raw forward" column
is the transformer alone on pre-tokenised input, so the gap to it is the cost of our code
(tokenisation, windowing, heads, verdict objects).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _texts(n: int) -> list[str]:
    from safestack.classify.training.sources import load_texts
    from safestack.datasets_dir import find_datasets_dir
    from safestack.errors import DataError

    try:
        root = find_datasets_dir()
        pool = [
            r.text
            for r in load_texts(
                root, ["xstest", "simplesafetytests", "jbb_behaviours", "self_instruct"]
            )
        ]
    except DataError:
        import json
        from importlib import resources

        raw = resources.files("safestack.cli").joinpath("demo_samples.jsonl").read_text()
        pool = [json.loads(x).get("text") or json.loads(x)["prompt"] for x in raw.splitlines()]
    rng = np.random.default_rng(0)
    return [pool[i] for i in rng.integers(0, len(pool), n)]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300, help="texts timed at batch 1")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()

    import torch

    from safestack.classify import EmbeddedPromptClassifier
    from safestack.classify._embedding import MiniLMEmbedder, default_embedder

    texts = _texts(max(args.n, 32 * 20))
    clf = EmbeddedPromptClassifier()
    start = time.perf_counter()
    clf.classify(["warm up"])
    load_s = time.perf_counter() - start
    emb = default_embedder()
    runtime = emb.active_runtime
    eager = MiniLMEmbedder(runtime="torch")
    eager.embed(["warm up"])

    def encode(batch: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        enc = emb._tokenizer(
            batch, truncation=True, max_length=256, padding=True, return_tensors="np"
        )
        return (
            enc["input_ids"].astype(np.int64),
            enc["attention_mask"].astype(np.int64),
            enc["token_type_ids"].astype(np.int64),
        )

    for t in texts[:20]:  # warm caches
        clf.classify([t])

    # Each path is timed in its own pass: interleaving ONNX Runtime and PyTorch calls makes
    # their thread pools compete for the two cores and inflates both.
    sample = texts[: args.n]
    encoded_one = [encode([t]) for t in sample]

    def timed(fn: Callable[[int], object]) -> list[float]:
        out = []
        for i in range(len(sample)):
            s = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - s)
        return out

    ours = timed(lambda i: clf.classify([sample[i]]))
    raw = timed(lambda i: emb._forward(*encoded_one[i]))
    raw_eager = timed(lambda i: eager._forward(*encoded_one[i]))

    batches = [texts[i : i + 32] for i in range(0, 32 * 20, 32)]
    s = time.perf_counter()
    for b in batches:
        clf.classify(b)
    ours_tput = 32 * len(batches) / (time.perf_counter() - s)
    encoded = [encode(b) for b in batches]
    s = time.perf_counter()
    for ids, mask, types in encoded:
        emb._forward(ids, mask, types)
    raw_tput = 32 * len(batches) / (time.perf_counter() - s)
    s = time.perf_counter()
    for ids, mask, types in encoded:
        eager._forward(ids, mask, types)
    eager_tput = 32 * len(batches) / (time.perf_counter() - s)

    lengths = [len(t) for t in texts[: args.n]]
    rows = [
        (
            "embedded-prompt `classify([text])` (tokenise, embed, heads, verdict)",
            _pct(ours, 50),
            _pct(ours, 99),
            ours_tput,
        ),
        (
            f"raw MiniLM forward, {runtime} (pre-tokenised; what we serve with)",
            _pct(raw, 50),
            _pct(raw, 99),
            raw_tput,
        ),
        (
            "raw MiniLM forward, PyTorch eager (for reference)",
            _pct(raw_eager, 50),
            _pct(raw_eager, 99),
            eager_tput,
        ),
    ]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/classify.py`); numbers from one run, not asserted "
        "by any test.",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).isoformat(timespec='minutes')}",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__} (CPU, "
        f"{torch.get_num_threads()} threads)",
        f"- Texts: {args.n} real prompts, median {statistics.median(lengths):.0f} characters "
        f"(max {max(lengths)}); model load + first call {load_s:.1f} s",
        "",
        "## Prompt classifier",
        "",
        "| what | p50 ms / text (batch 1) | p99 ms / text (batch 1) "
        "| texts / s (32 at a time; raw rows: one batch padded to its longest text) |",
        "|---|---|---|---|",
        *[f"| {name} | {p50:.2f} | {p99:.2f} | {tput:.0f} |" for name, p50, p99, tput in rows],
        "",
        f"Overhead of our code above the raw forward pass at batch 1: "
        f"{rows[0][1] - rows[1][1]:.2f} ms (p50). Target: p50 ≤ 5 ms per text at batch 1.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
