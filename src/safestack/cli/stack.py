"""``safestack stack``: validate and show stack configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from safestack.cli._common import ExitCode, console, emit_json, err_console, user_errors
from safestack.errors import ConfigError, UnknownComponentError

__all__ = ["app"]

app = typer.Typer(
    help="Validate and show safety-stack configurations (YAML files and presets).",
    no_args_is_help=True,
)


@app.command("check")
def check(
    file: Annotated[
        Path, typer.Argument(help="Stack file (YAML) to validate.", show_default=False)
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Validate a stack file: YAML, fields, preset, components and the policy it names.

    Prints "FILE: ok" and any warnings, or "FILE:LINE: reason". Exit code 0 if valid, 2 if not.
    """
    from safestack.classify import classifier_names
    from safestack.models import model_names
    from safestack.policy import load_policy
    from safestack.stack import load_stack_config

    try:
        config = load_stack_config(file)
        problems = _unknown_components(config, classifier_names(), model_names())
        if problems:
            raise ConfigError("; ".join(problems), path=file)
        if config.policy is not None:
            load_policy(config.policy)
    except ConfigError as exc:
        if as_json:
            emit_json({"ok": False, "path": str(file), "line": exc.line, "error": exc.reason})
        else:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(ExitCode.ERROR) from None
    warnings = config.warnings()
    if as_json:
        emit_json(
            {
                "ok": True,
                "path": str(file),
                "name": config.name,
                "warnings": warnings,
                "config": config.model_dump(mode="json"),
            }
        )
        return
    console.print(f"{escape(str(file))}: ok — stack {escape(config.name)}", soft_wrap=True)
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def _unknown_components(config: Any, classifiers: list[str], models: list[str]) -> list[str]:
    out = []
    used = {
        "input.classifier": config.input.classifier.name,
        "output.classifier": config.output.classifier.name,
        "output.monitor.monitor": config.output.monitor.monitor.name,
        "refusal_detector": config.refusal_detector.name,
    }
    for where, name in used.items():
        if name not in classifiers:
            out.append(f"{where}: unknown classifier {name!r}; known: {', '.join(classifiers)}")
    if config.model.name not in models:
        out.append(f"model.name: unknown model {config.model.name!r}; known: {', '.join(models)}")
    return out


@app.command("show")
def show(
    preset: Annotated[
        str,
        typer.Argument(help="Preset name, or a stack file to show with every default filled in."),
    ] = "system_mitigations_and_model_refusals",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print a complete stack configuration (a preset or a file), to start a file from.

    Presets: no_mitigations, model_refusals_only, system_mitigations,
    system_mitigations_and_model_refusals.
    """
    from safestack.stack import PRESETS, load_stack_config

    with user_errors():
        if preset in PRESETS:
            config = PRESETS[preset]
        elif Path(preset).exists():
            config = load_stack_config(preset)
        else:
            known = ", ".join(PRESETS)
            raise UnknownComponentError(f"no preset or file {preset!r}; presets: {known}")
    data = config.model_dump(mode="json")
    if as_json:
        emit_json(data)
    else:
        console.print(yaml.safe_dump(data, sort_keys=False), end="", markup=False, highlight=False)
