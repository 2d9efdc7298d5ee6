"""Evaluation samples as JSON Lines: the format people and tools hand samples over in.

A production log, a red-teaming campaign's labelled conversations and a review queue's decisions
all become samples by being written as one JSON object per line; ``safestack eval run FILE.jsonl``
reads them back. :func:`write_samples_jsonl` is the loader's exact inverse, and it proves it: every
line it writes is read back before anything is written, so a file it produced always loads.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, get_args

from pydantic import ValidationError

from safestack.errors import DataError, InputError
from safestack.evals._sample import HUMAN_LABELS, Expected, Sample, SampleSource
from safestack.models import ChatMessage
from safestack.models._protocol import as_conversation
from safestack.policy import default_policy

__all__ = ["load_jsonl_samples", "write_samples_jsonl"]

#: Top-level fields the loader reads itself; every other field goes to :attr:`Sample.metadata`.
JSONL_FIELDS = (
    "id",
    "prompt",
    "messages",
    "expected",
    "category",
    "source",
    "licence",
    "response",
    "seen_in_training",
)
_EXPECTED: tuple[Expected, ...] = get_args(Expected)
_SOURCES: tuple[SampleSource, ...] = get_args(SampleSource)
_DEFAULT_LICENCE = "user-provided"


def load_jsonl_samples(path: str | Path) -> list[Sample]:
    """Samples from a JSON Lines file: a user's own traffic, or people's labelled conversations.

    One JSON object per line (blank lines are skipped); the sample id is ``<file stem>:<id>`` and
    its dataset the file stem. Fields:

    * ``prompt`` (str) or ``messages`` (a list of ``{role, content}`` ending with a user or tool
      message) — exactly one of them;
    * ``expected``: ``should_refuse`` / ``should_comply`` (default ``should_comply``);
    * ``category``: a category id of the default policy (default none);
    * ``id``: unique in the file (default ``line-N``);
    * ``source``: ``manual_redteam`` / ``automated_redteam`` / ``real_world`` (default
      ``real_world``); ``licence``: str (default ``user-provided``);
    * ``response``: a recorded answer (str); with ``"replay": true`` the evaluation sends it
      through the stack instead of asking the model;
    * human labels of that recorded ``response`` (bool, need a ``response``):
      ``response_violates`` (a person judged it a policy violation) and ``response_refused``
      (a person judged it a refusal). They decide ``unsafe`` / ``refused`` when a replayed
      response reaches the user unchanged (see :class:`~safestack.evals.EvalRun`);
    * ``seen_in_training`` (bool, default false): the shipped prompt classifier trained on it.

    Any other field is kept in :attr:`Sample.metadata` (the labels and ``replay`` are kept there
    too). Every problem is a :class:`DataError` naming ``file:line``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    known = default_policy().category_ids
    out: list[Sample] = []
    first_line: dict[str, int] = {}
    for number, data in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: not valid UTF-8 (byte {exc.start} of the line)") from None
        if not line.strip():
            continue
        sample = _jsonl_sample(line, where, f"line-{number}", path.stem, known)
        item = sample.id.removeprefix(f"{path.stem}:")
        if item in first_line:
            raise DataError(f"{where}: duplicate id {item!r} (first on line {first_line[item]})")
        first_line[item] = number
        out.append(sample)
    if not out:
        raise DataError(f"{path} has no samples (expected one JSON object per line)")
    return out


def _jsonl_sample(
    line: str, where: str, default_id: str, stem: str, known: Iterable[str]
) -> Sample:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    prompt, messages = obj.get("prompt"), obj.get("messages")
    if (prompt is None) == (messages is None):
        what = "both" if prompt is not None else "neither"
        raise DataError(f"{where}: give exactly one of 'prompt' or 'messages' (got {what})")
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{where}: 'prompt' must be a non-empty string, got {prompt!r:.60}")
        conversation = [ChatMessage(role="user", content=prompt)]
    else:
        if not isinstance(messages, list):
            raise DataError(f"{where}: 'messages' must be a list, got {type(messages).__name__}")
        try:
            conversation = as_conversation(messages)
        except InputError as exc:
            raise DataError(f"{where}: messages: {exc}") from None
        if not any(m.role == "user" for m in conversation):
            raise DataError(f"{where}: messages: the conversation has no user message")
    expected = obj.get("expected", "should_comply")
    if expected not in _EXPECTED:
        raise DataError(f"{where}: 'expected' is {expected!r}; allowed: {', '.join(_EXPECTED)}")
    category = obj.get("category")
    valid = list(known)
    if category is not None and category not in valid:
        raise DataError(
            f"{where}: unknown category {category!r}; the default policy's categories: "
            f"{', '.join(valid)}"
        )
    item = obj.get("id", default_id)
    if not isinstance(item, str) or not item:
        raise DataError(f"{where}: 'id' must be a non-empty string, got {item!r:.60}")
    source = obj.get("source", "real_world")
    if source not in _SOURCES:
        raise DataError(f"{where}: 'source' is {source!r:.60}; allowed: {', '.join(_SOURCES)}")
    licence = obj.get("licence", _DEFAULT_LICENCE)
    if not isinstance(licence, str) or not licence.strip():
        raise DataError(f"{where}: 'licence' must be a non-empty string, got {licence!r:.60}")
    response = obj.get("response")
    if response is not None and not isinstance(response, str):
        raise DataError(f"{where}: 'response' must be a string, got {type(response).__name__}")
    seen = obj.get("seen_in_training", False)
    if not isinstance(seen, bool):
        raise DataError(f"{where}: 'seen_in_training' must be true or false, got {seen!r:.60}")
    for label in HUMAN_LABELS:
        value = obj.get(label)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise DataError(f"{where}: {label!r} must be true or false, got {value!r:.60}")
        if response is None:
            raise DataError(
                f"{where}: {label!r} labels the recorded 'response', and this line has none"
            )
    try:
        return Sample(
            id=f"{stem}:{item}",
            messages=conversation,
            category=category,
            expected=expected,
            source=source,
            dataset=stem,
            licence=licence,
            response=response,
            seen_in_training=seen,
            metadata={k: v for k, v in obj.items() if k not in JSONL_FIELDS},
        )
    except ValidationError as exc:
        raise DataError(f"{where}: {exc.errors()[0]['msg']}") from None


def _record(sample: Sample) -> dict[str, Any]:
    clash = sorted(set(sample.metadata) & set(JSONL_FIELDS))
    if clash:
        raise InputError(
            f"sample {sample.id!r}: metadata keys {clash} collide with the JSONL fields "
            f"({', '.join(JSONL_FIELDS)}); rename them"
        )
    record: dict[str, Any] = {
        "id": sample.id.removeprefix(f"{sample.dataset}:"),
        "messages": [{"role": m.role, "content": m.content} for m in sample.messages],
        "expected": sample.expected,
        "category": sample.category,
        "source": sample.source,
        "licence": sample.licence,
    }
    if sample.response is not None:
        record["response"] = sample.response
    if sample.seen_in_training:
        record["seen_in_training"] = True
    return {**record, **sample.metadata}


def _line(sample: Sample, stem: str, known: Sequence[str]) -> str:
    """One sample's line, after checking that loading it gives the same sample back."""
    try:
        line = json.dumps(_record(sample), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"sample {sample.id!r}: metadata is not plain JSON ({exc})") from None
    try:
        back = _jsonl_sample(line, f"sample {sample.id!r}", "", stem, known)
    except DataError as exc:
        raise InputError(f"cannot write {exc}; the loader would refuse it") from None
    if back.model_copy(update={"id": sample.id, "dataset": sample.dataset}) != sample:
        raise InputError(
            f"sample {sample.id!r} would not read back as written (metadata with tuples, "
            "non-string keys or other values JSON changes); use plain JSON values"
        )
    return line + "\n"


def write_samples_jsonl(samples: Sequence[Sample], path_or_file: str | Path | IO[str]) -> int:
    """Write samples as :func:`load_jsonl_samples` reads them; returns how many were written.

    Each line holds ``id`` (the item, without a ``<dataset>:`` prefix), ``messages``,
    ``expected``, ``category``, ``source``, ``licence``, ``response`` when recorded,
    ``seen_in_training`` when true, then the metadata keys. Loading the file gives samples equal
    to these except ``dataset`` (the file's stem) and the id prefix (``<stem>:``).

    Nothing is written unless every sample reads back unchanged: metadata keys that collide with
    the fields, values JSON does not keep, categories outside the default policy, conversations
    the loader refuses and duplicate ids raise :class:`InputError`. A path is written atomically
    (a reader never sees half a file; parent folders are created); an open text file is written
    to as it stands.
    """
    stem = Path(path_or_file).stem if isinstance(path_or_file, str | Path) else "samples"
    if not samples:
        raise InputError("no samples to write (the loader refuses an empty file)")
    known = list(default_policy().category_ids)
    lines: list[str] = []
    seen: dict[str, str] = {}
    for sample in samples:
        item = sample.id.removeprefix(f"{sample.dataset}:")
        if item in seen:
            raise InputError(
                f"samples {seen[item]!r} and {sample.id!r} would both be written as id {item!r}"
            )
        seen[item] = sample.id
        lines.append(_line(sample, stem, known))
    if not isinstance(path_or_file, str | Path):
        path_or_file.writelines(lines)
        return len(lines)
    path = Path(path_or_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(lines)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a sample set is meant to be shared
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise DataError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise
    return len(lines)
