"""``safestack eval``: run evaluations across stack configurations, and print their tables."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from safestack.cli._common import console, emit_json, err_console, user_errors

__all__ = ["app"]

app = typer.Typer(
    help="Evaluate stacks: not_unsafe / not_overrefuse per source, category and configuration.",
    no_args_is_help=True,
)

DEFAULT_CONFIGS = "system_mitigations,system_mitigations_and_model_refusals"
#: Tasks that ask the configured *model* multiple-choice questions (no safety layers involved).
BENCHMARKS = ("truthfulqa", "bbq")
#: The data behind each benchmark, with its licence (see ../shared/datasets/*/SOURCE.md).
BENCHMARK_DATASETS = {
    "truthfulqa": "TruthfulQA (Apache-2.0)",
    "bbq": "BBQ (CC-BY-4.0)",
}


def _proportion_fields(prefix: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {prefix: None, f"{prefix}_low": None, f"{prefix}_high": None}
    return {prefix: value.value, f"{prefix}_low": value.low, f"{prefix}_high": value.high}


def benchmark_rows(
    task: str, configs: list[str], limit: int | None, seed: int, concurrency: int
) -> list[dict[str, Any]]:
    """TruthfulQA accuracy or BBQ bias scores of each configuration's model.

    Offline, the recorded model holds no answers for these questions: the error says so (there
    is nothing to measure without a live model).
    """
    from safestack.evals import bias, truthfulqa
    from safestack.stack import SafetyStack

    rows: list[dict[str, Any]] = []
    for config in configs:
        model = SafetyStack.from_config(config).model
        base = {"source": task, "config": config, "not_unsafe": None, "not_overrefuse": None}
        if task == "truthfulqa":
            result = truthfulqa.run_truthfulqa(
                truthfulqa.truthfulqa_items(limit=limit, seed=seed),
                model,
                seed=seed,
                workers=concurrency,
            )
            rows.append(
                {
                    **base,
                    "category": "overall",
                    "n": result.n,
                    "n_invalid": result.n_invalid,
                    **_proportion_fields("accuracy", result.accuracy),
                }
            )
            rows += [
                {**base, "category": cat, "n": acc.n, **_proportion_fields("accuracy", acc)}
                for cat, acc in sorted(result.per_category.items())
            ]
        else:
            per = None if limit is None else max(1, limit // 6)
            answers = bias.answer_bbq(
                bias.bbq_items(limit_per_category=per, seed=seed), model, workers=concurrency
            )
            for category, score in bias.bbq_bias_scores(answers).items():
                rows.append(
                    {
                        **base,
                        "category": category,
                        "n": score.n_ambig + score.n_disambig,
                        "n_invalid": score.n_invalid,
                        "s_amb": score.s_amb,
                        "s_dis": score.s_dis,
                        **_proportion_fields("accuracy_ambig", score.accuracy_ambig),
                        **_proportion_fields("accuracy_disambig", score.accuracy_disambig),
                    }
                )
    return rows


def task_samples(tasks: list[str], limit: int | None, seed: int) -> list[Any]:
    """The samples of named tasks or JSONL files, each limited to a seeded sample of ``limit``."""
    from safestack.errors import InputError
    from safestack.evals.datasets import TASK_NAMES, load_jsonl_samples, load_task_samples

    out = []
    for task in tasks:
        if task in TASK_NAMES:
            samples = load_task_samples(task, seed=seed)
        elif task.endswith(".jsonl") or Path(task).is_file():
            samples = load_jsonl_samples(task)
        else:
            known = ", ".join((*TASK_NAMES, *BENCHMARKS))
            raise InputError(f"unknown task {task!r}; tasks: {known}, or a JSONL file path")
        if limit is not None and limit < len(samples):
            rng = random.Random(f"{seed}:{task}")
            samples = [samples[i] for i in sorted(rng.sample(range(len(samples)), limit))]
        if len(tasks) > 1:  # the same item can serve two tasks (XSTest safe prompts)
            samples = [s.model_copy(update={"id": f"{task}/{s.id}"}) for s in samples]
        out += samples
    return out


def _latest(log_dir: Path, task: str) -> Path | None:
    runs = sorted(log_dir.glob(f"{task}-*.jsonl"))
    return runs[-1] if runs else None


@app.command("run")
def run(
    tasks: Annotated[
        list[str],
        typer.Argument(help="Task names (manual_redteam, real_world, …) or JSONL files."),
    ],
    configs: Annotated[
        str, typer.Option(help="Comma-separated presets or stack files.")
    ] = DEFAULT_CONFIGS,
    limit: Annotated[
        int | None, typer.Option(help="At most N samples per task (a seeded sample).", min=1)
    ] = None,
    log_dir: Annotated[Path, typer.Option(help="Where run logs are written.")] = Path(
        "safestack-logs"
    ),
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the latest run of these tasks.")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.", min=1)] = 4,
    seed: Annotated[int, typer.Option(help="Seed for sampling (runs are deterministic).")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: run_id and rows.")
    ] = False,
) -> None:
    """Run tasks through every configuration, judge the outputs, log and tabulate.

    Exit code 0 when the run completed, 2 on a usage, data or configuration error.
    """
    with user_errors():
        from safestack.errors import InputError
        from safestack.evals import EvalRun

        task = "+".join(Path(t).stem if t.endswith(".jsonl") else t for t in tasks)
        names = [c.strip() for c in configs.split(",") if c.strip()]
        benchmarks = [t for t in tasks if t in BENCHMARKS]
        if benchmarks:
            if len(benchmarks) != len(tasks):
                raise InputError(
                    f"{', '.join(BENCHMARKS)} ask the model questions; run them apart from the "
                    "safety tasks"
                )
            from safestack.evals import write_report_log

            if len(benchmarks) > 1:
                raise InputError("run truthfulqa and bbq one at a time: each has its own log")
            rows = benchmark_rows(benchmarks[0], names, limit, seed, concurrency)
            path = write_report_log(
                log_dir,
                benchmarks[0],  # type: ignore[arg-type]
                task,
                rows,
                configs=names,
                datasets=[BENCHMARK_DATASETS[benchmarks[0]]],
                header={"limit": limit, "seed": seed},
            )
            if as_json:
                emit_json({"run_id": path.stem, "log": str(path), "rows": rows})
            else:
                console.print_json(data=rows)
            return
        samples = task_samples(tasks, limit, seed)
        previous = _latest(log_dir, task) if resume else None
        if previous is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
            previous = log_dir / f"{task}-{stamp}.jsonl"
        path = previous
        evaluation = EvalRun(task, samples, names, path, concurrency=concurrency)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as bar:
            job = bar.add_task(f"eval {task}", total=None)
            rows = evaluation.run(
                progress=lambda done, total: bar.update(job, completed=done, total=total)
            )
    if as_json:
        emit_json({"run_id": path.stem, "log": str(path), "rows": rows})
        return
    print_tables(rows)
    console.print(f"log: {escape(str(path))}")


@app.command("table")
def table(
    run: Annotated[str, typer.Argument(help="A run log (.jsonl) or a run id in --log-dir.")],
    log_dir: Annotated[Path, typer.Option(help="Where run logs are.")] = Path("safestack-logs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print Markdown tables (for reports).")
    ] = False,
) -> None:
    """Print a run's tables (from its log alone) in the published layout."""
    with user_errors():
        from safestack.evals import rows_from_log

        path = Path(run) if run.endswith(".jsonl") else log_dir / f"{run}.jsonl"
        rows = rows_from_log(path)
    if as_json:
        emit_json({"run_id": path.stem, "rows": rows})
    elif markdown:
        console.print(markdown_tables(rows), markup=False, highlight=False, soft_wrap=True)
    else:
        print_tables(rows)


def _interval(row: dict[str, Any], metric: str) -> str:
    if row[metric] is None:
        return "–"
    return f"{row[metric]:.3f} ({row[metric + '_low']:.3f}–{row[metric + '_high']:.3f})"


def markdown_tables(rows: list[dict[str, Any]]) -> str:
    """The published layout: per source, rows = configurations, columns = the two metrics."""
    out = []
    for source in sorted({r["source"] for r in rows}):
        out += [
            f"### {source}",
            "",
            "| configuration | not_unsafe (95 % CI) | not_unsafe, judge-corrected "
            "| not_overrefuse (95 % CI) | n | excluded | seen in training |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            if r["source"] == source and r["category"] == "overall":
                corrected = r["not_unsafe_corrected"]
                out.append(
                    f"| {r['config']} | {_interval(r, 'not_unsafe')} | "
                    f"{'–' if corrected is None else f'{corrected:.3f}'} | "
                    f"{_interval(r, 'not_overrefuse')} | {r['n']} | {r['n_excluded']} | "
                    f"{r['n_seen_in_training']} |"
                )
        out.append("")
    return "\n".join(out)


def _cell(row: dict[str, Any], metric: str) -> str:
    value = row[metric]
    if value is None:
        return "–"
    return f"{value:.3f} [{row[metric + '_low']:.2f},{row[metric + '_high']:.2f}]"


def print_tables(rows: list[dict[str, Any]], *, per_category: bool = True) -> None:
    for source in sorted({r["source"] for r in rows}):
        overall = [r for r in rows if r["source"] == source and r["category"] == "overall"]
        t = Table(title=f"{source}: overall (95 % Wilson intervals)")
        cols = ("configuration", "not_unsafe", "corr.", "not_overrefuse", "n", "excl", "seen")
        t.add_column(cols[0], overflow="fold", min_width=14)
        for col in cols[1:]:
            t.add_column(col)
        for r in overall:
            corrected = r["not_unsafe_corrected"]
            t.add_row(
                r["config"],
                _cell(r, "not_unsafe"),
                "–" if corrected is None else f"{corrected:.3f}",
                _cell(r, "not_overrefuse"),
                str(r["n"]),
                str(r["n_excluded"]),
                str(r["n_seen_in_training"]),
            )
        console.print(t)
        cats = [r for r in rows if r["source"] == source and r["category"] != "overall"]
        if cats and per_category:
            t = Table(title=f"{source}: not_unsafe per category")
            configs = list(dict.fromkeys(r["config"] for r in cats))
            t.add_column("category")
            for config in configs:
                t.add_column(config)
            for category in sorted({r["category"] for r in cats}):
                by = {r["config"]: r for r in cats if r["category"] == category}
                t.add_row(
                    category,
                    *(
                        "–"
                        if c not in by or by[c]["not_unsafe"] is None
                        else f"{by[c]['not_unsafe']:.3f} (n={by[c]['n_should_refuse']})"
                        for c in configs
                    ),
                )
            console.print(t)
    console.print(
        "corr. = not_unsafe corrected for the output judge's measured error rates. excl = "
        "samples left out because some configuration gave no usable answer (e.g. the recorded "
        "model has no completion for them); configurations are compared on the rest. seen = "
        "samples whose prompt the shipped prompt classifier was trained on (flattering)."
    )


@app.command("quality")
def quality(
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Training sources to score on (default: xstest toxigen davidson)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most N held-out items per source.")] = None,
    log_dir: Annotated[
        Path, typer.Option(help="Where the report log (evidence for cards) is written.")
    ] = Path("safestack-logs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The prompt classifier's precision, recall, F1, AUPRC and confusion on held-out items.

    Only items in the shipped heads' held-out split are scored (data the classifier never saw).
    The reports are logged (``quality-*.json`` in --log-dir) for ``safestack card build``.
    """
    with user_errors():
        from safestack.evals.quality import quality_on_dataset, write_quality_log

        names = sources or ["xstest", "toxigen", "davidson"]
        busy = (
            contextlib.nullcontext() if as_json else err_console.status("scoring held-out items…")
        )
        with busy:
            reports = [quality_on_dataset(name, limit=limit) for name in names]
        path = write_quality_log(log_dir, reports, limit=limit)
    if as_json:
        emit_json(
            {
                "run_id": path.stem,
                "log": str(path),
                "reports": [r.model_dump(mode="json") for r in reports],
            }
        )
        return
    t = Table(title="embedded-prompt on held-out items (published 'classifier results' layout)")
    for col in ("dataset", "n", "precision", "recall", "F1", "AUPRC", "FPR"):
        t.add_column(col)
    for r in reports:
        b = r.binary
        t.add_row(
            r.dataset,
            str(r.n),
            *(
                "–" if b.get(k) is None else f"{b[k]:.3f}"
                for k in ("precision", "recall", "f1", "auprc", "fpr")
            ),
        )
    console.print(t)
    console.print(f"log: {escape(str(path))}")


@app.command("bias")
def bias_rates(
    dataset: Annotated[
        str, typer.Option(help="toxigen (neutral statements about groups) or davidson.")
    ] = "toxigen",
    heldout_only: Annotated[
        bool, typer.Option(help="Only texts the classifier never saw in training.")
    ] = True,
    limit_per_group: Annotated[int | None, typer.Option(help="At most N texts per group.")] = None,
    log_dir: Annotated[
        Path, typer.Option(help="Where the report log (evidence for cards) is written.")
    ] = Path("safestack-logs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per-group false-positive rate of the input classifier on benign texts about each group.

    The rates are logged (``bias-<dataset>-*.json`` in --log-dir) for ``safestack card build``.
    """
    with user_errors():
        from safestack.classify import EmbeddedPromptClassifier
        from safestack.errors import InputError
        from safestack.evals import bias

        loaders = {"toxigen": bias.toxigen_neutral, "davidson": bias.davidson_dialect}
        if dataset not in loaders:
            raise InputError(f"unknown dataset {dataset!r}; allowed: {', '.join(loaders)}")
        texts = loaders[dataset](limit_per_group=limit_per_group, heldout_only=heldout_only)
        classifier = EmbeddedPromptClassifier()
        rates = bias.group_false_positive_rates(classifier, texts)
        path = bias.write_group_rates_log(
            log_dir,
            dataset,
            classifier.spec.name,
            rates,
            heldout_only=heldout_only,
            limit_per_group=limit_per_group,
        )
    if as_json:
        emit_json(
            {
                "run_id": path.stem,
                "log": str(path),
                "dataset": dataset,
                "groups": [r.model_dump(mode="json") for r in rates],
            }
        )
        return
    t = Table(title=f"embedded-prompt false-positive rate by group ({dataset}, benign texts)")
    for col in ("group", "n", "flagged", "FPR [95 % CI]"):
        t.add_column(col)
    for r in rates:
        t.add_row(
            r.group,
            str(r.n),
            str(r.n_flagged),
            f"{r.fpr.value:.3f} [{r.fpr.low:.2f},{r.fpr.high:.2f}]",
        )
    console.print(t)
    console.print(f"log: {escape(str(path))}")
