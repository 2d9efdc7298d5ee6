"""``safestack check``: one request through the safety stack, with the decision trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from safestack.cli._common import ExitCode, console, emit_json, err_console, user_errors
from safestack.policy import Audience

_LAYER_STYLE = {"input": "prompt blocking", "model": "model refusal", "output": "output blocking"}


def _load_messages(path: Path) -> list[dict[str, Any]]:
    from safestack.errors import InputError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (bad byte at offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if isinstance(data, dict) and "messages" in data:
        data = data["messages"]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of messages or {{'messages': [...]}}")
    return data


def check(
    prompt: Annotated[
        str | None, typer.Argument(help="The user's message. Omit it to use --messages.")
    ] = None,
    messages: Annotated[
        Path | None,
        typer.Option(help="JSON file with a chat: a list of {role, content} (multi-turn)."),
    ] = None,
    audience: Annotated[
        Audience, typer.Option(help="Who is asking: adult or under_18.", case_sensitive=False)
    ] = Audience.ADULT,
    stack: Annotated[
        str | None,
        typer.Option(
            help="Stack file (YAML) or preset name. Default: "
            "system_mitigations_and_model_refusals around the recorded model, offline."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a tree.")
    ] = False,
) -> None:
    """Run one request through the safety stack and show the answer and the decision trace.

    Exit code 0 when the answer went through (or the recorded model has no answer), 1 when a
    layer blocked or the model refused, 2 on a usage or configuration error or a failed model.
    """
    with user_errors():
        from safestack.errors import InputError
        from safestack.stack import SafetyStack

        if (prompt is None) == (messages is None):
            raise InputError("give a PROMPT or --messages FILE (exactly one)")
        request: Any = prompt if messages is None else _load_messages(messages)
        safety = SafetyStack.from_config(stack)
        if as_json:
            result = safety.run(request, audience=audience)
        else:
            with err_console.status("running the stack (first use loads the models)…"):
                result = safety.run(request, audience=audience)
    decision = result.decision
    if as_json:
        record = {
            "blocked": decision.blocked,
            "layer": decision.layer,
            "categories": decision.categories,
            "answer": result.answer,
            "status": decision.status,
            "audience": decision.audience.value,
            "stack": decision.stack,
            "clause": decision.clause,
            "rationale": decision.rationale,
            "model_answer": result.model_answer,
            "decision": decision.model_dump(mode="json"),
        }
        emit_json(record)
    else:
        _print_tree(result)
    if decision.status == "error":
        err_console.print(f"[bold red]error:[/] {escape(decision.error or 'model failed')}")
        raise typer.Exit(ExitCode.ERROR)
    raise typer.Exit(ExitCode.FLAGGED if decision.blocked else ExitCode.OK)


def _print_tree(result: Any) -> None:
    decision = result.decision
    if decision.blocked:
        head = f"[bold red]blocked[/] by {_LAYER_STYLE[decision.layer]} ({decision.layer})"
    elif decision.status == "answered":
        head = "[bold green]answered[/]"
    else:
        head = f"[bold yellow]{decision.status}[/]"
    tree = Tree(f"{head} — stack {escape(decision.stack)}, audience {decision.audience.value}")
    if decision.categories:
        tree.add(f"categories: {', '.join(decision.categories)}")
    if decision.clause:
        tree.add(f"clause: {escape(decision.clause)}")
    if decision.rationale:
        tree.add(f"rationale: {escape(decision.rationale)}")
    layers = tree.add("layers")
    for step in decision.trace:
        if not step.ran:
            layers.add(f"[dim]{step.layer}: skipped ({step.skipped})[/]")
            continue
        mark = "[red]flagged[/]" if step.flagged else "[green]pass[/]"
        detail = f"{step.layer}: {mark} in {step.ms:.1f} ms"
        if step.label:
            detail += f" [dim]({escape(step.label)})[/]"
        node = layers.add(detail)
        top = sorted(step.scores.items(), key=lambda kv: -kv[1])[:3]
        if top and step.layer != "model":
            node.add("top scores: " + ", ".join(f"{c} {s:.2f}" for c, s in top))
        if step.categories:
            node.add(f"categories: {', '.join(step.categories)}")
        if step.clause:
            node.add(f"clause: {escape(step.clause)}")
        if step.error:
            node.add(f"[yellow]error:[/] {escape(step.error)}")
    timings = decision.timings_ms
    added, total = timings.get("added", 0.0), timings.get("total", 0.0)
    tree.add(f"added latency {added:.1f} ms, total {total:.1f} ms")
    console.print(tree)
    console.print()
    console.print(escape(result.answer), soft_wrap=True)
