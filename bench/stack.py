"""Latency the safety stack adds to one request, beside the bare model call.

Requests are real XSTest prompts (safe and unsafe, in a fixed shuffled order) answered by the
recorded Mistral-7B-Instruct completions, so the output layer judges real answers of real length.
Each configuration runs on the same requests; the embedder's cache of recent texts is emptied
before each configuration, so a configuration never profits from the one before it (within a
request the layers do share embeddings, as in production). Writes a "Safety stack" section into
BENCHMARKS.md (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SECTION = "## Safety stack: added latency per request"


def _requests(n: int) -> list[str]:
    from safestack.models import RecordedModel

    prompts = sorted(p for p in RecordedModel("mistralinstruct").prompts())
    rng = np.random.default_rng(0)
    return [prompts[i] for i in rng.permutation(len(prompts))[:n]]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def write_section(path: Path, heading: str, lines: list[str]) -> None:
    """Put ``heading`` + ``lines`` into the Markdown report, replacing that section if present."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = "\n".join([heading, "", *lines]).rstrip() + "\n"
    if heading in text:
        start = text.index(heading)
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + block + ("" if nxt == -1 else text[nxt + 1 :])
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=150, help="requests per configuration")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()

    from safestack.classify._embedding import default_embedder
    from safestack.stack import SafetyStack, stack_config_from_yaml

    configs = {
        "input + output, monitor off (system_mitigations)": (
            "preset: system_mitigations\noutput: {monitor: {enabled: false}}\n",
            "adult",
        ),
        "input + model-refusal check + output, monitor off": (
            "preset: system_mitigations_and_model_refusals\noutput: {monitor: {enabled: false}}\n",
            "adult",
        ),
        "input + output, monitor when uncertain (default, adult)": (
            "preset: system_mitigations\n",
            "adult",
        ),
        "input + output, monitor always": (
            "preset: system_mitigations\noutput: {monitor: {when_adult: always}}\n",
            "adult",
        ),
        "default stack, under_18 (stricter thresholds, monitor always)": (
            "preset: system_mitigations_and_model_refusals\n",
            "under_18",
        ),
    }
    requests = _requests(args.n)
    embedder = default_embedder()
    rows = []
    model_ms: list[float] = []
    for label, (text, audience) in configs.items():
        stack = SafetyStack.from_config(stack_config_from_yaml(text))
        stack.warm_up(audience)
        stack.run("Hello there, how are you today?", audience=audience)
        embedder._recent.clear()
        added: list[float] = []
        layers: dict[str, list[float]] = {}
        blocked = 0
        for request in requests:
            decision = stack.run(request, audience=audience).decision
            timings = decision.timings_ms
            if "model" not in timings:  # blocked before the model: only the input layer ran
                continue
            added.append(timings["added"])
            model_ms.append(timings["model"])
            for name in ("input", "model_refusal", "output", "monitor"):
                if name in timings:
                    layers.setdefault(name, []).append(timings[name])
            blocked += decision.blocked
        rows.append((label, audience, added, layers, blocked))
        print(label, f"p50 {_pct(added, 50):.1f} ms")

    answers = [len(t) for t in requests]
    lines = [
        f"`bench/stack.py`: {len(requests)} XSTest prompts "
        f"(median {statistics.median(answers):.0f} characters) answered by recorded "
        "Mistral-7B-Instruct completions; only requests that "
        "reached the model are timed (a request blocked at the input costs the input layer only). "
        "`added` = every safety layer on the request's path (input, refusal check, output, "
        "monitor), wall clock, batch 1, this machine (2 cores). Numbers from one run.",
        "",
        "| configuration | audience | n | added p50 ms | added p99 ms | input p50 | output p50 "
        "| monitor runs | monitor p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, audience, added, layers, _blocked in rows:
        monitor = layers.get("monitor", [])
        lines.append(
            f"| {label} | {audience} | {len(added)} | {_pct(added, 50):.1f} | "
            f"{_pct(added, 99):.1f} | {_pct(layers['input'], 50):.1f} | "
            f"{_pct(layers['output'], 50):.1f} | {len(monitor)} | "
            f"{_pct(monitor, 50) if monitor else 0.0:.1f} |"
        )
    lines += [
        "",
        f"Bare model call (recorded replay, a dictionary lookup): p50 {_pct(model_ms, 50):.2f} ms. "
        "A live model adds its own generation time; the stack's cost is the `added` column.",
        "",
        "Target: ≤ 10 ms p50 added with the monitor off. **Met by the input layer, not by the "
        "output layer.** The output layer embeds the answer (its first 1,000 characters, ~250 "
        "word pieces, and every later window) once — shared by the output judge, the refusal "
        "detector and the monitor — and that MiniLM forward pass on two CPU cores (~40 ms per "
        "1,000 characters) is the added time. Tried: dynamic int8 quantisation of the ONNX model "
        "was only 1.4x faster at 200 tokens (not worth re-validating the heads for). The way to "
        "hide it is streaming: judging each window as it is generated leaves only the last "
        "window's cost after the model finishes (the gateway's job).",
    ]
    write_section(args.out, SECTION, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
