"""``safestack images``: judge one image, or measure an image classifier on a labelled folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from safestack.cli._common import ExitCode, console, emit_json, user_errors
from safestack.errors import InputError

app = typer.Typer(
    help="Image classifiers: sexual content, photorealistic person / minor.",
    no_args_is_help=True,
)

CLASSIFIERS = ("image-default", "image-sexual", "image-person")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("check")
def check(
    image: Annotated[Path, typer.Argument(help="Image file (PNG, JPEG, WebP, GIF).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Judge one image with image-default. Exit 0 if nothing is flagged, 1 if flagged, 2 on
    error."""
    with user_errors():
        from safestack.classify.images import ImageSafetyClassifier, combine
        from safestack.media import decode_image

        try:
            data = image.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {image}: {exc.strerror}") from None
        decoded = decode_image(data)
        clf = ImageSafetyClassifier()
        findings = clf.analyse(decoded)
        verdict = combine(
            findings,
            clf.spec,
            sexual_threshold=clf.sexual_threshold,
            minor_sexual_threshold=clf.minor_sexual_threshold,
        )
    if as_json:
        record: dict[str, Any] = {
            "image": str(image),
            "flagged": verdict.flagged,
            "categories": verdict.categories,
            "label": verdict.label,
            "scores": {k: round(v, 6) for k, v in verdict.scores.items()},
            "findings": findings.as_dict(),
            "error": verdict.error,
            "classifier": verdict.spec.name,
        }
        emit_json(record)
    else:
        mark = "[bold red]FLAGGED[/]" if verdict.flagged else "[green]ok[/]"
        cats = ", ".join(verdict.categories) or "-"
        console.print(f"{image}: {mark} categories={cats} label={verdict.label}")
        console.print(f"  [dim]{findings.describe()}[/]")
    raise typer.Exit(ExitCode.FLAGGED if verdict.flagged else ExitCode.OK)


@app.command("evaluate")
def evaluate(
    folder: Annotated[
        Path, typer.Argument(help="Folder with one sub-folder of images per class label.")
    ],
    classifier: Annotated[
        str,
        typer.Option("--classifier", "-c", help=f"One of: {', '.join(CLASSIFIERS)}."),
    ] = "image-default",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Per-class precision, recall and F1 of an image classifier on a labelled folder.

    Sub-folders: sexual/ not_sexual/ (image-sexual); no_photorealistic_person/
    photorealistic_adult/ photorealistic_child/ (image-person); sexual_minors/ sexual/
    not_sexual/ (image-default). Unreadable files are listed as errors. Exit 0, or 2 on error.
    """
    with user_errors():
        from safestack.classify.images import evaluate_folder

        if as_json:
            report = evaluate_folder(folder, classifier)
        else:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("classifying", total=None)

                def step(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                report = evaluate_folder(folder, classifier, progress=step)
    if as_json:
        emit_json(report.model_dump())
        return
    table = Table(title=f"{report.classifier} on {folder} ({report.n_samples} images)")
    for column in ("class", "n_samples", "n_predicted", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for label, row in report.classes.items():
        table.add_row(
            label,
            str(row.n_samples),
            str(row.n_predicted),
            _fmt(row.precision),
            _fmt(row.recall),
            _fmt(row.f1),
        )
    console.print(table)
    for error in report.errors:
        console.print(f"[yellow]error[/] {error.path}: {error.error}", soft_wrap=True)
