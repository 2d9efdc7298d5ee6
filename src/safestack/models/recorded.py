"""The embedded default model: real completions from public datasets, replayed by prompt.

A demo or a test that runs the safety stack needs a model that behaves like one — refuses some
safe prompts, complies with some harmful ones, gets jailbroken — without a GPU or a network. This
adapter replays what real models answered:

* XSTest v2 (450 prompts, 250 safe and 200 unsafe contrast prompts), five setups: ``gpt4``;
  ``llama2orig`` (Llama-2-70b-chat with its original system prompt, refuses a lot);
  ``llama2new`` (the same without a system prompt); ``mistralinstruct`` (Mistral-7B-Instruct,
  no system prompt, rarely refuses: the "helpful-only" stand-in); ``mistralguard`` (Mistral
  with its guardrail system prompt).
* JailbreakBench attack artifacts: ``jbb/<target>`` for ``vicuna-13b-v1.5``,
  ``llama-2-7b-chat-hf``, ``gpt-3.5-turbo-1106`` and ``gpt-4-0125-preview``, keyed by the
  jailbreak prompt that was actually sent. Attempts that produced no prompt are skipped. When a
  target saw the same (normalised) prompt twice, the first row in the file wins (the file keeps
  the artifacts repository's order); the shipped file has no such duplicate.

Recordings are single-turn: the key is the one ``user`` message, normalised (Unicode NFC, outer
whitespace stripped, inner runs of whitespace collapsed to one space). ``system`` messages are
ignored, because each recorded setup ran with its own system prompt and no other can be
replayed; a conversation with an ``assistant`` or ``tool`` turn, or with several user messages,
has no recording. ``max_tokens`` is checked but otherwise ignored: a recording cannot be
shortened without inventing where the model would have stopped.

The tables are parsed on first use and cached per file for the whole process, so building many
adapters (one per evaluation sample, say) costs nothing. The spec pins the files read by hash,
so a log says exactly which recordings answered.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from safestack.datasets_dir import find_datasets_dir
from safestack.errors import DataError, InputError, NoRecordingError, UnknownComponentError
from safestack.models._protocol import ChatMessage, ModelReply, ModelSpec, as_conversation
from safestack.models._registry import register_model

__all__ = ["RECORDED_SETUPS", "RecordedModel"]

_XSTEST_SETUPS = ("gpt4", "llama2orig", "llama2new", "mistralinstruct", "mistralguard")
_JBB_TARGETS = ("vicuna-13b-v1.5", "llama-2-7b-chat-hf", "gpt-3.5-turbo-1106", "gpt-4-0125-preview")
_JBB_PREFIX = "jbb/"

#: Every setup :class:`RecordedModel` can replay, XSTest's first.
RECORDED_SETUPS: tuple[str, ...] = (
    *_XSTEST_SETUPS,
    *(_JBB_PREFIX + target for target in _JBB_TARGETS),
)

_XSTEST_FILE = "xstest/model_completions/xstest_v2_completions_{setup}.csv"
_JBB_FILE = "jailbreakbench/jbb_attack_artifacts.jsonl.gz"
_XSTEST_COLUMNS = ("prompt", "completion")
_WORDS = re.compile(r"\S+\s*|\s+")  # every character belongs to exactly one match
_SHOW = 80


def _normalize(text: str) -> str:
    """The lookup key: NFC, stripped, whitespace runs collapsed (copy-paste must still match)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _show(text: str) -> str:
    return repr(text if len(text) <= _SHOW else text[: _SHOW - 3] + "...")


@dataclass(frozen=True)
class _Table:
    """One setup's recordings: normalised prompt → (prompt as recorded, completion)."""

    source: str
    sha256: str
    recordings: Mapping[str, tuple[str, str]]


def _read(path: Path) -> tuple[bytes, str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the recordings {path}: {exc.strerror or exc}") from None
    return raw, hashlib.sha256(raw).hexdigest()


@functools.cache
def _xstest_table(path: Path, source: str) -> _Table:
    raw, digest = _read(path)
    try:
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a UTF-8 CSV file: {exc}") from None
    missing = [c for c in _XSTEST_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; has {reader.fieldnames}")
    recordings: dict[str, tuple[str, str]] = {}
    for row in rows:
        prompt, completion = row["prompt"], row["completion"]
        if prompt is None or completion is None:  # a short row
            raise DataError(f"{path}: line {reader.line_num}: too few fields")
        recordings.setdefault(_normalize(prompt), (prompt, completion))
    return _Table(source, digest, recordings)


@functools.cache
def _jbb_tables(path: Path, source: str) -> Mapping[str, _Table]:
    raw, digest = _read(path)
    try:
        lines = gzip.decompress(raw).decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a gzipped UTF-8 file: {exc}") from None
    by_target: dict[str, dict[str, tuple[str, str]]] = {t: {} for t in _JBB_TARGETS}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row: Any = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}: line {number}: not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object")
        prompt, response = row.get("prompt"), row.get("response")
        target = row.get("target_model")
        if not (isinstance(prompt, str) and isinstance(response, str)):
            continue  # the attack produced no prompt (or no response) for this behaviour
        if target in by_target:
            by_target[target].setdefault(_normalize(prompt), (prompt, response))
    empty = [t for t, recordings in by_target.items() if not recordings]
    if empty:
        raise DataError(f"{path}: no usable artifact for target model(s) {empty}")
    return {t: _Table(source, digest, recordings) for t, recordings in by_target.items()}


def _table(root: Path, setup: str) -> _Table:
    if setup.startswith(_JBB_PREFIX):
        return _jbb_tables((root / _JBB_FILE).resolve(), _JBB_FILE)[setup[len(_JBB_PREFIX) :]]
    source = _XSTEST_FILE.format(setup=setup)
    return _xstest_table((root / source).resolve(), source)


def _chunks(text: str, size: int) -> Iterator[str]:
    """``text`` in pieces of at least ``size`` characters, cut after whitespace."""
    piece = ""
    for match in _WORDS.finditer(text):
        piece += match.group()
        if len(piece) >= size:
            yield piece
            piece = ""
    if piece:
        yield piece


def _check_max_tokens(max_tokens: int | None) -> None:
    if max_tokens is not None and not (
        isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 1
    ):
        raise InputError(f"max_tokens must be None or an integer >= 1, got {max_tokens!r}")


@register_model("recorded")
class RecordedModel:
    """Replays real completions for the prompts of public datasets; see the module docstring.

    ``setup`` is one name of :data:`RECORDED_SETUPS` or several, tried in order: e.g.
    ``("mistralinstruct", "jbb/vicuna-13b-v1.5")`` answers XSTest prompts like Mistral and
    jailbreak prompts like Vicuna. A prompt none of them recorded raises
    :class:`~safestack.errors.NoRecordingError`: a replay model cannot invent an answer.
    ``datasets_dir`` defaults to :func:`~safestack.datasets_dir.find_datasets_dir`'s search.
    """

    registry_name: ClassVar[str] = "recorded"
    version: ClassVar[str] = "1"
    #: Characters per streamed piece (at least; pieces end after whitespace). Small, so that a
    #: streaming consumer sees many pieces, as it would from a real server.
    chunk_chars: ClassVar[int] = 16

    def __init__(
        self, setup: str | Sequence[str] = "llama2orig", *, datasets_dir: str | Path | None = None
    ) -> None:
        self.setup = setup
        self.datasets_dir = datasets_dir
        self.tables_: list[tuple[str, _Table]] | None = None

    def __repr__(self) -> str:
        where = "" if self.datasets_dir is None else f", datasets_dir={str(self.datasets_dir)!r}"
        return f"{type(self).__name__}(setup={self.setup!r}{where})"

    # -- parameters and data -----------------------------------------------------------------

    @property
    def setups(self) -> tuple[str, ...]:
        """The setups tried, in order; unknown names raise ``UnknownComponentError``."""
        names = (self.setup,) if isinstance(self.setup, str) else self.setup
        known = ", ".join(RECORDED_SETUPS)
        if isinstance(names, bytes) or not isinstance(names, Sequence) or not names:
            raise UnknownComponentError(
                f"setup must be a setup name or a non-empty list of them, got {self.setup!r}; "
                f"known: {known}"
            )
        unknown = [name for name in names if name not in RECORDED_SETUPS]
        if unknown:
            shown = ", ".join(repr(name) for name in unknown)
            raise UnknownComponentError(f"unknown recorded setup {shown}; known: {known}")
        return tuple(names)

    def _tables(self) -> list[tuple[str, _Table]]:
        """The recordings of each setup, located and read on first use, then kept: every
        request (and every spec the stack logs) would otherwise search the disk again."""
        if self.tables_ is None:
            root = find_datasets_dir(self.datasets_dir)
            self.tables_ = [(setup, _table(root, setup)) for setup in self.setups]
        return self.tables_

    @property
    def spec(self) -> ModelSpec:
        """Names the setups and pins the files they were read from by SHA-256 (16 hex digits)."""
        files: dict[str, str] = {}
        for _, table in self._tables():
            files.setdefault(table.source, table.sha256)
        joined = "".join(f"{source} {sha}\n" for source, sha in files.items())
        return ModelSpec(
            name=self.registry_name,
            version=self.version,
            args={
                "setups": list(self.setups),
                "datasets": hashlib.sha256(joined.encode()).hexdigest()[:16],
            },
        )

    def prompts(self) -> list[str]:
        """Every prompt some setup can answer, as recorded, once each, in setup order."""
        seen: dict[str, str] = {}
        for _, table in self._tables():
            for key, (prompt, _) in table.recordings.items():
                seen.setdefault(key, prompt)
        return list(seen.values())

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, messages: Sequence[ChatMessage]) -> tuple[str, str]:
        """(setup that answered, its completion) for the conversation's one user message."""
        conversation = as_conversation(messages)
        turns = [m for m in conversation if m.role != "system"]
        users = [m for m in turns if m.role == "user"]
        prompt = users[-1].content if users else None
        if len(turns) != 1 or not users:
            roles = ", ".join(m.role for m in turns)
            raise NoRecordingError(
                "recordings are single-turn (one user message; system messages aside), but this "
                f"conversation has the turns: {roles}",
                prompt=prompt,
            )
        assert prompt is not None  # for mypy: users is not empty
        key = _normalize(prompt)
        tables = self._tables()
        for setup, table in tables:
            hit = table.recordings.get(key)
            if hit is not None:
                return setup, hit[1]
        raise NoRecordingError(
            f"no recorded completion for {_show(prompt)} in setup(s) "
            f"{', '.join(setup for setup, _ in tables)}; RecordedModel.prompts() lists the "
            "prompts they can answer",
            prompt=prompt,
        )

    def has_recording(self, messages: Sequence[ChatMessage]) -> bool:
        """Whether :meth:`generate` would answer (rather than raise ``NoRecordingError``)."""
        try:
            self._answer(messages)
        except NoRecordingError:
            return False
        return True

    def generate(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> ModelReply:
        """The recorded completion; ``model`` names the setup that answered."""
        _check_max_tokens(max_tokens)
        setup, text = self._answer(messages)
        return ModelReply(text=text, finish_reason="stop", model=setup, spec=self.spec)

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Iterator[str]:
        """The recorded completion in small pieces; a missing recording raises here, at once."""
        _check_max_tokens(max_tokens)
        _, text = self._answer(messages)
        return _chunks(text, self.chunk_chars)
