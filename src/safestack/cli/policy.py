"""``safestack policy``: check a policy file, and show what a policy says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from safestack.cli._common import ExitCode, console, emit_json, err_console, user_errors
from safestack.errors import PolicyError
from safestack.policy import Audience, Policy, default_policy, load_policy

__all__ = ["app"]

app = typer.Typer(
    help="Check and inspect written content policies (YAML files with Markdown prose).",
    no_args_is_help=True,
)


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Policy YAML file to validate.", show_default=False)],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Validate a policy file.

    Prints "FILE: ok — N categories", or "FILE:LINE: reason" for the first problem found.
    Exit code 0 if the policy is valid, 2 if it is missing or invalid.
    """
    try:
        policy = load_policy(file)
    except PolicyError as exc:
        if as_json:
            emit_json({"ok": False, "path": str(file), "line": exc.line, "error": exc.reason})
        else:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR) from None
    if as_json:
        emit_json({"ok": True, "path": str(file), "categories": policy.category_ids})
    else:
        console.print(
            f"{escape(str(file))}: ok — {len(policy.categories)} categories", soft_wrap=True
        )


@app.command("show")
def show(
    file: Annotated[
        Path | None,
        typer.Argument(help="Policy YAML file. Default: the policy shipped with safestack."),
    ] = None,
    audience: Annotated[
        Audience, typer.Option(help="Whose thresholds to show.", case_sensitive=False)
    ] = Audience.ADULT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
) -> None:
    """Show a policy's categories: threshold for the audience, MLCommons and OpenAI mappings.

    Exit code 0, or 2 if the policy file is missing or invalid.
    """
    with user_errors():
        policy = load_policy(file) if file is not None else default_policy()
    if as_json:
        emit_json(_as_record(policy, audience))
        return
    table = Table(title=escape(f"{policy.name} {policy.version} — audience {audience.value}"))
    table.add_column("id", no_wrap=True)
    table.add_column("title")
    table.add_column("threshold", justify="right")
    table.add_column("MLCommons", no_wrap=True)
    table.add_column("OpenAI moderation", overflow="fold")
    for category in policy.categories:
        table.add_row(
            category.id,
            escape(category.title),
            f"{category.threshold_for(audience):.2f}",
            ", ".join(category.mlcommons) or "—",
            escape(", ".join(category.openai)) or "—",
        )
    console.print(table)


def _as_record(policy: Policy, audience: Audience) -> dict[str, Any]:
    return {
        "name": policy.name,
        "version": policy.version,
        "audience": audience.value,
        "categories": [
            {
                "id": c.id,
                "title": c.title,
                "threshold": c.threshold_for(audience),
                "additional_disallowed": (
                    c.under_18.additional_disallowed if audience is Audience.UNDER_18 else []
                ),
                "mlcommons": c.mlcommons,
                "openai": c.openai,
            }
            for c in policy.categories
        ],
    }
