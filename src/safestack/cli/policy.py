"""``safestack policy``: check a policy file, and show what a policy says."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from safestack.cli._common import ExitCode, console, err_console
from safestack.errors import PolicyError

app = typer.Typer(help="Check and inspect written policies.", no_args_is_help=True)


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Policy YAML file to validate.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Validate a policy file. Exit 0 if valid, 2 with `file:line: reason` if not."""
    from safestack.policy import load_policy

    try:
        policy = load_policy(file)
    except PolicyError as exc:
        if as_json:
            record: dict[str, Any] = {
                "ok": False,
                "path": str(file),
                "line": exc.line,
                "error": exc.reason,
            }
            sys.stdout.write(json.dumps(record) + "\n")
        else:
            err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR) from None
    if as_json:
        sys.stdout.write(
            json.dumps({"ok": True, "path": str(file), "categories": policy.category_ids}) + "\n"
        )
    else:
        console.print(f"{file}: ok — {len(policy.categories)} categories", soft_wrap=True)


@app.command("show")
def show(
    file: Annotated[Path | None, typer.Argument(help="Policy file (default: shipped).")] = None,
    audience: Annotated[str, typer.Option(help="adult or under_18.")] = "adult",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show a policy's categories, thresholds and hazard mappings."""
    from safestack.policy import Audience, default_policy, load_policy

    try:
        who = Audience(audience)
        policy = load_policy(file) if file else default_policy()
    except ValueError:
        err_console.print(
            f"[bold red]error:[/] unknown audience {audience!r}; allowed: adult, under_18"
        )
        raise typer.Exit(ExitCode.ERROR) from None
    except PolicyError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR) from None
    rows: list[dict[str, Any]] = [
        {
            "id": c.id,
            "title": c.title,
            "threshold": c.threshold_for(who),
            "mlcommons": c.mlcommons,
            "openai": c.openai,
        }
        for c in policy.categories
    ]
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "name": policy.name,
                    "version": policy.version,
                    "audience": who.value,
                    "categories": rows,
                }
            )
            + "\n"
        )
        return
    table = Table(title=f"{policy.name} {policy.version} — audience {who.value}")
    for col in ("id", "title", "threshold", "MLCommons", "OpenAI"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["title"],
            f"{r['threshold']:.2f}",
            ", ".join(r["mlcommons"]),
            ", ".join(r["openai"]),
        )
    console.print(table)
