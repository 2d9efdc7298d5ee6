"""Throughput of the evaluation harness, and the wall time of the demo evaluation.

The model is a local OpenAI-compatible server on 127.0.0.1 that answers every request instantly
with the same short text, so what is timed is the harness and the stack (input classification,
the output judge, the refusal detector, logging), not a model. The samples are real XSTest and
real-world prompts. Writes an "Evaluation harness" section into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SECTION = "## Evaluation harness"
ANSWER = "Here is a short, general answer to your question."


class _Instant(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "model": "instant",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": ANSWER},
                        "finish_reason": "stop",
                    }
                ],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=400, help="samples per configuration")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()

    from safestack.cli.eval import task_samples
    from safestack.evals import EvalRun
    from stack import write_section  # bench/stack.py

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Instant)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    samples = task_samples(["manual_redteam", "real_world"], args.n // 2, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        stack_file = Path(tmp) / "stack.yaml"
        stack_file.write_text(
            "preset: system_mitigations\n"
            f"model: {{name: openai, args: {{base_url: '{url}', model: instant}}}}\n"
        )
        warm = EvalRun("warm", samples[:8], [str(stack_file)], Path(tmp) / "warm.jsonl")
        warm.run()
        start = time.perf_counter()
        EvalRun(
            "bench",
            samples,
            [str(stack_file)],
            Path(tmp) / "bench.jsonl",
            concurrency=args.concurrency,
        ).run()
        harness_s = time.perf_counter() - start

        # What `make demo` runs after its request tables: the evaluation (every answerable
        # sample × the four presets, plus the classifier reports), then the scorecard and the
        # system card from those logs.
        from safestack.cli.demo import _card_section, _eval_section
        from safestack.stack import PRESETS

        out = Path(tmp) / "demo-output"
        start = time.perf_counter()
        evaluation = _eval_section(out, None, quiet=True)
        demo_s = time.perf_counter() - start
        start = time.perf_counter()
        published = _card_section(evaluation, out, quiet=True)
        card_s = time.perf_counter() - start
        pdf_kb = published["files"]["pdf"].stat().st_size // 1024
    server.shutdown()

    rate = len(samples) / harness_s
    lines = [
        f"`bench/evals.py`: {len(samples)} real prompts (manual red team + real-world mixture) "
        "through `system_mitigations` (input classifier, output judge, refusal detector, "
        f"logging with fsync) around a local server that answers instantly; concurrency "
        f"{args.concurrency}, 2 cores.",
        "",
        "| what | result |",
        "|---|---|",
        f"| harness throughput | {rate:.0f} samples/s ({harness_s:.1f} s for {len(samples)}) |",
        f"| demo evaluation ({evaluation['n_samples']} samples × {len(PRESETS)} "
        "configurations, recorded models, plus the classifier-quality and bias reports) "
        f"| {demo_s:.1f} s |",
        f"| demo scorecard + system card (Markdown, HTML, PDF of {pdf_kb} KB, plots) from "
        f"those logs | {card_s:.1f} s |",
        "",
        "Target: ≥ 200 samples/s. "
        + (
            "Met."
            if rate >= 200
            else "Not met: every sample embeds its prompt (and, when it reaches the model, the "
            "answer) with MiniLM on two CPU cores; the classifiers, not the harness, are the "
            "bottleneck (see the stack latency table above)."
        ),
    ]
    write_section(args.out, SECTION, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
