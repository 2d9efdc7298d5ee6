"""How much traffic the review queue would receive, and which reason sends it there.

The gateway queues a decision for a person when it is a blocked under-18 request, a
disagreement between the policy monitor and the output classifier, or a top score near its
threshold (``review.near_threshold``, ±15 % by default). Queue volume is people's time: this
runs the packaged ``real_world`` mix (600 everyday requests, 5 % harmful) and the single-turn
manual red-team prompts through the default gateway stack, for each audience, and counts the
share of requests each reason would queue — at several ``near_threshold`` settings.

The recorded model answers only the requests it has recordings for; unanswered requests still
carry the input layer's decision (the output layer and the monitor need an answer), so the
monitor-disagreement share is a lower bound.

    python bench/review_queue.py                    # print
    python bench/review_queue.py --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import Counter
from pathlib import Path

SECTION = "## Review queue volume"
NEAR = (0.05, 0.15, 0.30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None, help="at most N samples per task")
    args = parser.parse_args()

    from safestack.evals.datasets import load_task_samples
    from safestack.policy import Audience
    from safestack.stack import SafetyStack, review_reasons

    stack = SafetyStack.from_config("system_mitigations_and_model_refusals")
    tasks = {
        "real_world": load_task_samples("real_world", seed=0),
        "manual_redteam (single-turn)": [
            s for s in load_task_samples("manual_redteam", seed=0) if len(s.messages) == 1
        ],
    }
    rows = []
    started = time.perf_counter()
    for task, samples in tasks.items():
        samples = samples[: args.limit] if args.limit else samples
        for audience in Audience:
            decisions = [
                stack.run(s.messages, audience=audience).decision for s in samples
            ]
            queued: Counter[str] = Counter()
            for near in NEAR:
                for decision in decisions:
                    reasons = review_reasons(decision, stack.policy, near_threshold=near)
                    if reasons:
                        queued[f"any@{near}"] += 1
                    for reason in reasons:
                        queued[f"{reason}@{near}"] += 1
            n = len(decisions)
            rows.append((task, audience.value, n, sum(d.blocked for d in decisions), queued))
            print(task, audience.value, n, dict(queued), flush=True)
    elapsed = time.perf_counter() - started

    def share(count: int, n: int) -> str:
        return f"{100 * count / n:.1f} %"

    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} "
        f"({elapsed:.0f} s for every request; `python bench/review_queue.py`). Stack "
        "`system_mitigations_and_model_refusals` (the gateway's default) around the recorded "
        "model. Share of requests the gateway would queue for review, by reason "
        "(a request can have several), at the default `near_threshold` 0.15 and at 0.05 / 0.30:",
        "",
        "| requests | audience | n | blocked | under-18 block | monitor disagreement "
        "| near threshold 0.15 | queued 0.05 | **queued 0.15** | queued 0.30 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, audience, n, blocked, queued in rows:
        lines.append(
            f"| {task} | {audience} | {n} | {share(blocked, n)} | "
            f"{share(queued['under_18_block@0.15'], n)} | "
            f"{share(queued['monitor_disagreement@0.15'], n)} | "
            f"{share(queued['near_threshold@0.15'], n)} | "
            f"{share(queued['any@0.05'], n)} | **{share(queued['any@0.15'], n)}** | "
            f"{share(queued['any@0.3'], n)} |"
        )
    lines += [
        "",
        "Everyday traffic (real_world, adult) is what sizes the reviewer team; the red-team rows "
        "show how much of an attack wave would land in the queue. Red teamers' own traffic is "
        "never queued. Under-18 blocks are queued by default (`review.under_18_blocks`).",
    ]
    print("\n".join(lines))
    if args.out:
        sys.path.insert(0, str(Path(__file__).parent))
        from stack import write_section  # bench/stack.py

        write_section(args.out, SECTION, lines)


if __name__ == "__main__":
    main()
