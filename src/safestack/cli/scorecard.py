"""``safestack scorecard``: risk levels from evaluation evidence, and the deploy / develop gate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from safestack.cli._common import console, emit_json, user_errors

if TYPE_CHECKING:
    from safestack.scorecard import Scorecard, ScorecardResult

__all__ = ["app", "print_scorecard", "scorecard_from_option"]

app = typer.Typer(
    help="Preparedness-style scorecard: levels before and after mitigations, and the gate.",
    no_args_is_help=True,
)

_LEVEL_STYLE = {
    "low": "[green]low[/]",
    "medium": "[yellow]medium[/]",
    "high": "[red]high[/]",
    "critical": "[bold red]critical[/]",
}
_DECISION_TEXT = {
    "deploy": "[bold green]deploy[/] — every post-mitigation level is Medium or below",
    "develop_only": "[bold yellow]develop only[/] — a post-mitigation level is High: develop "
    "further, do not deploy",
    "stop": "[bold red]stop[/] — a post-mitigation level is Critical: neither deploy nor develop "
    "further",
}


def scorecard_from_option(path: Path | None) -> tuple[Scorecard, str]:
    """The scorecard a ``--scorecard`` option names (the packaged one when omitted)."""
    from safestack.scorecard import DEFAULT_SCORECARD, default_scorecard, load_scorecard

    if path is None:
        return default_scorecard(), str(DEFAULT_SCORECARD)
    return load_scorecard(path), str(path)


def _basis(category: object) -> str:
    from safestack.scorecard import CategoryResult

    assert isinstance(category, CategoryResult)
    if category.missing_evidence:
        return "[red]missing evidence[/]" + (" + asserted" if category.assessment else "")
    return category.basis


def print_scorecard(result: ScorecardResult) -> None:
    """The gate's table: category, pre, post, measured / asserted; then the decision."""
    table = Table(
        title=f"{escape(result.scorecard)}: pre = {escape(result.pre_config or 'none measured')}, "
        f"post = {escape(result.post_config)} ({result.statistic} bound of 95 % CI)"
    )
    for column in ("category", "framework", "pre", "post", "basis"):
        table.add_column(column)
    for category in result.categories:
        table.add_row(
            escape(category.id),
            category.framework,
            _LEVEL_STYLE[category.pre.value],
            _LEVEL_STYLE[category.post.value],
            _basis(category),
        )
    table.add_section()
    table.add_row(
        "[bold]overall[/]",
        "",
        _LEVEL_STYLE[result.overall_pre.value],
        _LEVEL_STYLE[result.overall_post.value],
        "",
    )
    console.print(table)
    missing = [c.id for c in result.categories if c.missing_evidence]
    if missing:
        console.print(
            f"Missing evidence (counted as critical): {escape(', '.join(missing))}. "
            "`--json` says, per rule, which row was missing or too small."
        )
    console.print(f"Gate: {_DECISION_TEXT[result.decision.value]} (exit {result.exit_code})")


@app.command("gate")
def gate(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Finished run logs (.jsonl / .json) or folders of them."),
    ],
    scorecard: Annotated[
        Path | None,
        typer.Option(help="Scorecard file (default: the packaged one; see `scorecard show`)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write the result as JSON to this file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score the runs and decide: exit 0 deploy, 1 develop only, 3 stop, 2 broken evidence.

    Missing evidence counts as Critical; a run that did not finish, a log of another format or
    a broken scorecard file is an error (exit 2): the gate never passes on them.
    """
    with user_errors():
        from safestack.evals import load_evidence
        from safestack.scorecard import assess

        card, card_file = scorecard_from_option(scorecard)
        evidence = load_evidence(runs)
        result = assess(card, evidence, scorecard_file=card_file)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if as_json:
        emit_json(result.model_dump(mode="json"))
    else:
        print_scorecard(result)
    raise typer.Exit(result.exit_code)


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="A scorecard file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate a scorecard file: exit 0 when valid, 2 with ``file:line: reason`` otherwise."""
    with user_errors():
        from safestack.scorecard import load_scorecard

        card = load_scorecard(path)
    summary = {
        "path": str(path),
        "name": card.name,
        "categories": [c.id for c in card.categories],
        "measured": [c.id for c in card.categories if c.evidence],
        "asserted": [c.id for c in card.categories if c.assessment is not None],
        "pre_mitigation": card.pre_mitigation,
        "post_mitigation": card.post_mitigation,
    }
    if as_json:
        emit_json(summary)
        return
    console.print(
        f"[green]ok[/] {escape(str(path))}: {len(card.categories)} categories "
        f"({len(summary['measured'])} with evidence rules, {len(summary['asserted'])} with an "
        "assessment)"
    )


@app.command("show")
def show() -> None:
    """Print the packaged scorecard file: a complete, commented starting point to edit."""
    from safestack.scorecard import DEFAULT_SCORECARD

    typer.echo(DEFAULT_SCORECARD.read_text(encoding="utf-8"), nl=False)
