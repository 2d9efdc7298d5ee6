"""``safestack classify``: judge texts (or prompt/response pairs) against the written policy."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from safestack.cli._common import ExitCode, console, emit_json, user_errors
from safestack.errors import InputError, SafestackError

#: Lines read and judged at a time: bounds memory for inputs of any length.
BATCH = 64
#: The largest JSON line accepted; a longer one is an error that names its line.
MAX_LINE_BYTES = 8 * 1024 * 1024


def _read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; errors name the line."""
    if str(path) == "-":
        handle = sys.stdin.buffer
    else:
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid UTF-8 (byte {exc.start})") from None
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise InputError(
                    f"{path}:{number}: expected a JSON object, got {type(obj).__name__}"
                )
            yield number, obj


def _field(obj: dict[str, Any], name: str, where: str) -> str:
    if name not in obj:
        raise InputError(f"{where}: missing field {name!r} (fields: {', '.join(obj) or 'none'})")
    value = obj[name]
    if not isinstance(value, str):
        raise InputError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    return value


def classify(
    text: Annotated[str | None, typer.Argument(help="Text to classify (or use --input).")] = None,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="JSONL file ('-' for stdin): one object per line with "
            "'text', or 'prompt' and 'response' for exchange classifiers.",
        ),
    ] = None,
    response: Annotated[
        str | None, typer.Option(help="With TEXT as the prompt: the response to judge.")
    ] = None,
    classifier: Annotated[
        str, typer.Option("--classifier", "-c", help="Registry name of the classifier.")
    ] = "embedded-prompt",
    audience: Annotated[str, typer.Option(help="adult or under_18.")] = "adult",
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Policy file (default: the shipped policy).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Endpoint of a remote classifier (remote-moderation, llm), e.g. "
            "http://127.0.0.1:8000/v1. The key is read from $SAFESTACK_API_KEY."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name at --base-url.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per input.")] = False,
) -> None:
    """Classify content. Exit 0 when nothing is flagged, 1 when something is, 2 on error."""
    remote: dict[str, Any] = {}
    if base_url is not None:
        remote["base_url"] = base_url
        if key := os.environ.get("SAFESTACK_API_KEY"):
            remote["api_key"] = key
    if model is not None:
        remote["model"] = model
    with user_errors():
        any_flagged = _run(
            text, input_file, response, classifier, audience, policy_file, as_json, remote
        )
    raise typer.Exit(ExitCode.FLAGGED if any_flagged else ExitCode.OK)


def _run(
    text: str | None,
    input_file: Path | None,
    response: str | None,
    classifier_name: str,
    audience: str,
    policy_file: Path | None,
    as_json: bool,
    remote: dict[str, Any],
) -> bool:
    from safestack.classify import Exchange, create_classifier
    from safestack.policy import Audience, default_policy, load_policy

    if (text is None) == (input_file is None):
        raise InputError("give either TEXT or --input FILE.jsonl (not both, not neither)")
    try:
        who = Audience(audience)
    except ValueError:
        raise InputError(f"unknown audience {audience!r}; allowed: adult, under_18") from None
    policy = load_policy(policy_file) if policy_file else default_policy()
    try:
        clf = create_classifier(classifier_name, policy=policy, audience=who, **remote)
    except TypeError as exc:  # e.g. --base-url given to an embedded classifier
        raise InputError(f"{classifier_name}: {exc}") from None
    exchange = clf.input_kind == "exchange"

    def items() -> Iterator[tuple[str, Any]]:
        if text is not None:
            if exchange:
                if response is None:
                    raise InputError(f"{classifier_name} judges a response: pass --response")
                yield "argument", Exchange(text, response)
            else:
                yield "argument", text
            return
        assert input_file is not None
        for number, obj in _read_lines(input_file):
            where = f"{input_file}:{number}"
            if exchange:
                yield where, Exchange(_field(obj, "prompt", where), _field(obj, "response", where))
            else:
                yield where, _field(obj, "text", where)

    any_flagged = False
    batch: list[tuple[str, Any]] = []

    def flush() -> None:
        nonlocal any_flagged
        if not batch:
            return
        try:
            verdicts = clf.classify([item for _, item in batch])
        except SafestackError as exc:
            raise type(exc)(f"{batch[0][0]}…{batch[-1][0]}: {exc}") from exc
        for (where, _), verdict in zip(batch, verdicts, strict=True):
            any_flagged |= verdict.flagged
            _print(verdict, where, as_json)
        batch.clear()

    for entry in items():
        batch.append(entry)
        if len(batch) >= BATCH:
            flush()
    flush()
    return any_flagged


def _print(verdict: Any, where: str, as_json: bool) -> None:
    if as_json:
        record: dict[str, Any] = {
            "flagged": verdict.flagged,
            "categories": verdict.categories,
            "scores": {k: round(v, 6) for k, v in verdict.scores.items()},
        }
        if verdict.label is not None:
            record["label"] = verdict.label
        if verdict.error is not None:
            record["error"] = verdict.error
        record["classifier"] = verdict.spec.name
        emit_json(record)
        return
    mark = "[bold red]FLAGGED[/]" if verdict.flagged else "[green]ok[/]"
    cats = ", ".join(verdict.categories) or "-"
    top = sorted(verdict.scores.items(), key=lambda kv: -kv[1])[:3]
    shown = " ".join(f"{k}={v:.2f}" for k, v in top)
    label = f" label={verdict.label}" if verdict.label else ""
    console.print(f"{where}: {mark} categories={cats}{label}  [dim]{shown}[/]")
