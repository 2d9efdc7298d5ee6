"""``safestack train``: rebuild the embedded heads reproducibly and measure them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from safestack.cli._common import console, emit_json, err_console, user_errors


def train(
    datasets: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the public datasets (default: $SAFESTACK_DATASETS or "
            "../shared/datasets)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the heads (default: the package's own).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and of the heads.")] = 0,
    policy: Annotated[
        Path | None,
        typer.Option(help="Policy whose categories and examples to train on (default: shipped)."),
    ] = None,
    leave_one_out: Annotated[
        bool, typer.Option(help="Also measure cross-domain (one head set per left-out source).")
    ] = True,
    sources: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated text sources to train on (default: all). "
            "For experiments: the shipped heads use every source."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Train the prompt classifier, refusal detector and output judge; write their card."""
    with user_errors():
        from safestack.classify.embedded import HEADS_DIR
        from safestack.classify.training.card import quality_rows
        from safestack.classify.training.train import TrainConfig, train_all
        from safestack.datasets_dir import find_datasets_dir

        config = TrainConfig(
            datasets=find_datasets_dir(datasets),
            out_dir=out or HEADS_DIR,
            seed=seed,
            leave_one_out=leave_one_out,
            policy_file=policy,
            sources=tuple(s.strip() for s in sources.split(",")) if sources else None,
        )
        columns = (
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(
            *columns, console=err_console, disable=not err_console.is_terminal and as_json
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            report = train_all(config, progress)
    if as_json:
        emit_json(report.metrics)
        return
    from rich.table import Table

    table = Table(title="Held-out quality (details: CARD.md)")
    for name in ("classifier", "held-out set", "n", "P", "R", "F1", "AUPRC", "FPR"):
        table.add_column(name)
    for row in quality_rows(report.metrics):
        table.add_row(
            *("–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)
        )
    console.print(table)
    console.print(f"wrote {', '.join(report.files)} to {config.out_dir}")
