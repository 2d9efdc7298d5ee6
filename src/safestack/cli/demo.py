"""``safestack demo``: the main job on the embedded defaults, offline, in under a minute.

It judges a few real prompts and responses (shipped with the package, see
``demo_samples.SOURCES.md``) with the three embedded classifiers, then prints the quality each of
them measured on held-out data when it was trained.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from typing import Annotated, Any

import typer
from rich.table import Table

from safestack.cli._common import console, err_console, user_errors


def _samples() -> list[dict[str, Any]]:
    text = resources.files("safestack.cli").joinpath("demo_samples.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Classify real prompts and responses offline and show each classifier's measured quality."""
    with user_errors():
        from safestack.classify import (
            EmbeddedOutputClassifier,
            EmbeddedPromptClassifier,
            Exchange,
            RefusalDetector,
        )
        from safestack.classify.embedded import HEADS_DIR
        from safestack.classify.training.card import quality_rows

        samples = _samples()
        prompts = [s for s in samples if s["kind"] == "prompt"]
        exchanges = [s for s in samples if s["kind"] == "exchange"]
        with err_console.status("loading the embedded classifiers (first use loads the model)…"):
            prompt_v = EmbeddedPromptClassifier().classify([s["text"] for s in prompts])
            pairs = [Exchange(s["prompt"], s["response"]) for s in exchanges]
            refusal_v = RefusalDetector().classify(pairs)
            output_v = EmbeddedOutputClassifier().classify(pairs)
        metrics = json.loads((HEADS_DIR / "metrics.json").read_text())

    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "prompts": [
                        {
                            "text": s["text"],
                            "expected": s["expected"],
                            **v.model_dump(include={"flagged", "categories", "scores"}),
                        }
                        for s, v in zip(prompts, prompt_v, strict=True)
                    ],
                    "exchanges": [
                        {
                            "prompt": s["prompt"],
                            "expected": s["expected"],
                            "refusal": r.label,
                            "harmful": o.flagged,
                            "categories": o.categories,
                        }
                        for s, r, o in zip(exchanges, refusal_v, output_v, strict=True)
                    ],
                    "quality": quality_rows(metrics),
                }
            )
            + "\n"
        )
        return

    table = Table(title="embedded-prompt: real prompts", show_lines=False)
    for col in ("prompt", "expected", "verdict", "categories", "source"):
        table.add_column(col, overflow="fold")
    for s, v in zip(prompts, prompt_v, strict=True):
        verdict = "[red]flagged[/]" if v.flagged else "[green]allowed[/]"
        table.add_row(
            s["text"][:70], s["expected"], verdict, ", ".join(v.categories) or "-", s["source"]
        )
    console.print(table)

    table = Table(title="refusal + embedded-output: real responses")
    for col in ("prompt", "response", "expected", "refusal", "harmful?", "source"):
        table.add_column(col, overflow="fold")
    for s, r, o in zip(exchanges, refusal_v, output_v, strict=True):
        table.add_row(
            s["prompt"][:40],
            s["response"][:60].replace("\n", " "),
            s["expected"],
            str(r.label),
            "[red]yes[/]" if o.flagged else "[green]no[/]",
            s["source"],
        )
    console.print(table)

    table = Table(title=f"Measured on held-out data at training time ({metrics['trained_at']})")
    for col in ("classifier", "held-out set", "n", "precision", "recall", "F1", "AUPRC", "FPR"):
        table.add_column(col)
    for row in quality_rows(metrics):
        table.add_row(
            *("–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)
        )
    console.print(table)
    console.print(
        "Details, baselines and cross-domain numbers: src/safestack/classify/heads/CARD.md"
    )
