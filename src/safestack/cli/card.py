"""``safestack card``: build the system card from finished run logs and the scorecard."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from safestack.cli._common import console, emit_json, err_console, user_errors
from safestack.cli.scorecard import scorecard_from_option

__all__ = ["app"]

app = typer.Typer(
    help="System cards: the evidence of a deployment decision as Markdown, HTML and PDF.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """System cards generated from evaluation run logs and the scorecard."""


@app.command("build")
def build(
    runs: Annotated[
        list[Path],
        typer.Option(
            "--runs",
            help="A run log (.jsonl safety run, .json report) or a folder of them; repeatable.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the card into.")],
    scorecard: Annotated[
        Path | None,
        typer.Option(help="Scorecard YAML (default: the packaged scorecard)."),
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated: md, html, pdf.")
    ] = "md,html,pdf",
    title: Annotated[str | None, typer.Option(help="Title (default: from the evidence).")] = None,
    about: Annotated[
        Path | None,
        typer.Option(help="Markdown file: the introduction and intended use (default: generated)."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: out, files, decision, overall_post."),
    ] = False,
) -> None:
    """Write system_card.{md,html,pdf}, scorecard.json and plots/*.svg into --out.

    The card is a report, not the gate: exit code 0 whenever it was written, whatever the
    decision (`safestack scorecard gate` fails a CI job on it); 2 when the evidence or the
    scorecard cannot be used (an unfinished or damaged run log, an invalid scorecard file).
    """
    with user_errors():
        from safestack.cards import CARD_FORMATS, SystemCard
        from safestack.errors import InputError
        from safestack.evals import load_evidence
        from safestack.scorecard import assess

        wanted = [f.strip().lower() for f in formats.split(",") if f.strip()]
        unknown = [f for f in wanted if f not in CARD_FORMATS]
        if unknown or not wanted:
            raise InputError(
                f"--format: {', '.join(unknown) or '(empty)'} is not a card format; allowed: "
                f"{', '.join(CARD_FORMATS)}"
            )
        intro = None
        if about is not None:
            try:
                intro = about.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"--about {about}: cannot read it ({exc})") from None
        evidence = load_evidence(runs)
        card_scorecard, card_scorecard_file = scorecard_from_option(scorecard)
        result = assess(card_scorecard, evidence, scorecard_file=card_scorecard_file)
        card = SystemCard.from_evidence(evidence, result, title=title, about=intro)
        busy = (
            err_console.status("rendering the PDF (WeasyPrint)…")
            if "pdf" in wanted and not as_json
            else contextlib.nullcontext()
        )
        with busy:
            written = card.write(out, formats=wanted)
    files = {
        "md": written.get("md"),
        "html": written.get("html"),
        "pdf": written.get("pdf"),
        "scorecard": written["scorecard"],
    }
    if as_json:
        emit_json(
            {
                "out": str(out),
                "files": {k: None if v is None else str(v) for k, v in files.items()},
                "decision": result.decision.value,
                "overall_post": result.overall_post.value,
            }
        )
        return
    for name, path in files.items():
        if path is not None:
            console.print(f"{name:>9}: {escape(str(path))}")
    console.print(f"{'plots':>9}: {escape(str(written['plots']))}/ ({len(card.plots)} SVG)")
    console.print(
        f"gate decision: [bold]{result.decision.value}[/] (overall post-mitigation level "
        f"{result.overall_post.value}); the card reports it, `safestack scorecard gate` "
        "enforces it",
        soft_wrap=True,
    )
