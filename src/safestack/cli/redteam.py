"""``safestack redteam``: generate attacks and benign look-alikes; keep what broke the stack."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from safestack.cli._common import console, emit_json, user_errors

__all__ = ["ATTACKER_KEY_ENV", "app"]

#: The environment variable the attacker model's API key is read from (never a flag).
ATTACKER_KEY_ENV = "SAFESTACK_ATTACKER_KEY"

app = typer.Typer(
    help="Automated red teaming: adversarial prompts from the policy; a regression set.",
    no_args_is_help=True,
)


@app.command("generate")
def generate(
    per_category: Annotated[
        int, typer.Option("--per-category", help="Attacks (and look-alikes) per category.", min=1)
    ] = 5,
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="A policy YAML file (default: built-in).")
    ] = None,
    strategies: Annotated[
        str | None, typer.Option(help="Comma-separated strategies (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same samples.")] = 0,
    out: Annotated[Path, typer.Option(help="Where the JSONL samples are written.")] = Path(
        "redteam.jsonl"
    ),
    benign: Annotated[
        bool, typer.Option("--benign/--no-benign", help="Add benign look-alikes.")
    ] = True,
    datasets: Annotated[
        bool,
        typer.Option("--datasets/--no-datasets", help="Seed from dataset behaviours as well."),
    ] = True,
    attacker_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL of an attacker model.")
    ] = None,
    attacker_model: Annotated[str | None, typer.Option(help="The attacker model's name.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: out, n, per_category.")
    ] = False,
) -> None:
    """Generate attacks per policy category (and benign look-alikes) into a JSONL task file.

    The file is what ``safestack eval run FILE.jsonl`` reads. With ``--attacker-url`` and
    ``--attacker-model`` an attacker model writes the single-turn attacks (key from
    $SAFESTACK_ATTACKER_KEY); it falls back to the offline templates when it fails. Exit code
    0 on success, 2 on a usage, policy or data error.
    """
    with user_errors():
        from safestack.errors import InputError
        from safestack.models import OpenAICompatibleModel
        from safestack.policy import load_policy
        from safestack.redteam import generate_samples, write_samples_jsonl

        names = None
        if strategies is not None:
            names = [s.strip() for s in strategies.split(",") if s.strip()]
        if (attacker_url is None) != (attacker_model is None):
            raise InputError("give both --attacker-url and --attacker-model, or neither")
        attacker = None
        if attacker_url is not None and attacker_model is not None:
            key = os.environ.get(ATTACKER_KEY_ENV) or None
            attacker = OpenAICompatibleModel(attacker_url, attacker_model, api_key=key)
        policy = load_policy(policy_file) if policy_file is not None else None
        samples = generate_samples(
            policy,
            per_category=per_category,
            seed=seed,
            strategies=names,
            attacker=attacker,
            benign=benign,
            use_datasets=datasets,
        )
        write_samples_jsonl(samples, out)
    counts: Counter[tuple[str, str, str]] = Counter(
        (s.category or "", str(s.metadata["strategy"]), s.expected) for s in samples
    )
    per_cat: dict[str, dict[str, int]] = {}
    for (category, _, expected), n in counts.items():
        kind = "attacks" if expected == "should_refuse" else "benign"
        per_cat.setdefault(category, {"attacks": 0, "benign": 0})[kind] += n
    if as_json:
        emit_json({"out": str(out), "n": len(samples), "per_category": per_cat})
        return
    used = list(dict.fromkeys(str(s.metadata["strategy"]) for s in samples))
    table = Table(title=f"red-team samples ({len(samples)}): attacks per category × strategy")
    table.add_column("category")
    for name in used:
        table.add_column(name, justify="right")
    table.add_column("benign", justify="right")
    for category, kinds in per_cat.items():
        cells = [str(counts[(category, name, "should_refuse")]) for name in used]
        table.add_row(category, *cells, str(kinds["benign"]))
    console.print(table)
    console.print(f"written: {escape(str(out))}")


@app.command("keep")
def keep(
    run_log: Annotated[Path, typer.Argument(help="The run log of `safestack eval run`.")],
    task_file: Annotated[
        Path, typer.Option("--task-file", help="The JSONL task file the run evaluated.")
    ],
    out: Annotated[Path, typer.Option(help="Where the regression set is written.")] = Path(
        "regression.jsonl"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Keep the samples that broke the stack (judged unsafe under any configuration).

    The kept samples are written with their original ids, so the regression set evaluates like
    the task file did. Exit code 0 (also when nothing broke), 2 on a usage or data error.
    """
    with user_errors():
        from safestack.evals.datasets import load_jsonl_samples
        from safestack.redteam import breaking_samples, write_samples_jsonl

        samples = load_jsonl_samples(task_file)
        kept = breaking_samples(run_log, samples)
        prefix = f"{task_file.stem}:"
        write_samples_jsonl(
            [s.model_copy(update={"id": s.id.removeprefix(prefix)}) for s in kept], out
        )
    if as_json:
        emit_json({"out": str(out), "n": len(kept), "of": len(samples)})
        return
    console.print(f"kept {len(kept)} of {len(samples)} samples that broke the stack")
    console.print(f"written: {escape(str(out))}")
