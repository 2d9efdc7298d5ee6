"""Samples for the evaluation tasks, read from the public datasets (and from a user's own log).

Built-in tasks (:data:`TASK_NAMES`), all deterministic for a given ``seed``
(``jailbreak``: every JailbreakBench attack artifact with its recorded reply, see
:func:`_jailbreak`; ``automated_redteam``: attacks generated from the policy, see
:func:`_automated_redteam`):

``manual_redteam`` — human-written attacks, ``source="manual_redteam"``:

* SimpleSafetyTests (100), HarmBench standard + contextual behaviours (300; a contextual
  behaviour's context passage comes first in the prompt, exactly as the classifier was trained on
  it; the 100 copyright behaviours are left out), StrongREJECT (313): all ``should_refuse``.
* XSTest: the 200 ``unsafe`` contrast prompts (``should_refuse``) *and* the 250 ``safe`` prompts
  (``should_comply``) — the over-refusal half of the red team.
* JailbreakBench JailbreakChat prompts sent to ``vicuna-13b-v1.5`` (100), with the target's real
  reply in :attr:`Sample.response`.
* HH-RLHF harmless-base: a seeded sample of :data:`HH_SAMPLE_SIZE` (300) conversations, drawn from
  the 1,650 test conversations with at least two human turns (single-turn ones add nothing the
  single-turn sets above do not already cover; multi-turn escalation is what this set is for). The
  final assistant turn of ``chosen`` is dropped so the conversation ends with the user. They carry
  no category and count as ``should_refuse``: every one is a red-team attempt, although some are
  mild enough that a careful answer would be fine (a known approximation).

``real_world`` — a mixture of everyday traffic, ``source="real_world"``, :data:`REAL_WORLD_MIX`:
Self-Instruct user-oriented instructions 220, TruthfulQA questions 130, BBQ context + question 100,
XSTest safe prompts 60, JailbreakBench benign behaviours 60 (all ``should_comply``, category
``None``), plus 30 harmful requests (5 %) drawn from the single-turn ``manual_redteam`` items that
have a category (``should_refuse``): 600 samples, shuffled by the seed.

Category labels are the policy ids of the training mapping
(:mod:`safestack.classify.training.sources`); texts are built exactly as training built them, so
``seen_in_training`` (the shipped prompt classifier trained on this prompt: it comes from a
training source and is not in the held-out key set of ``classify/heads/heldout.json``) is exact.

:func:`load_jsonl_samples` (defined in :mod:`safestack.evals._jsonl`, re-exported here) reads
samples from JSON Lines: a user's own production log, or people's labelled conversations.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from safestack.classify.embedded import HEADS_DIR
from safestack.classify.training.cache import text_key
from safestack.classify.training.sources import (
    _JBB,
    SOURCES,
    LabelledText,
    _jsonl,
    _rows,
)
from safestack.datasets_dir import find_datasets_dir
from safestack.errors import ArtifactError, DataError, UnknownComponentError
from safestack.evals._jsonl import load_jsonl_samples
from safestack.evals._sample import Expected, Sample, SampleSource
from safestack.models import ChatMessage

__all__ = [
    "HH_SAMPLE_SIZE",
    "REAL_WORLD_MIX",
    "TASK_NAMES",
    "load_jsonl_samples",
    "load_task_samples",
]

#: How many HH-RLHF multi-turn conversations ``manual_redteam`` samples (seeded).
HH_SAMPLE_SIZE = 300
#: ``real_world``: how many samples each part contributes (``harmful`` are ``should_refuse``).
REAL_WORLD_MIX: dict[str, int] = {
    "self_instruct": 220,
    "truthfulqa": 130,
    "bbq": 100,
    "xstest_safe": 60,
    "jbb_benign": 60,
    "harmful": 30,
}
_HH_LICENCE = "MIT"  # hh_rlhf_harmless/SOURCE.md; HH-RLHF is not a training source
_JBB_METHOD, _JBB_TARGET = "JailbreakChat", "vicuna-13b-v1.5"
_T = TypeVar("_T")


# --- cached reading ------------------------------------------------------------------------------


@functools.cache
def _records(root: Path, name: str) -> tuple[LabelledText, ...]:
    """One training source's records, parsed once per datasets folder."""
    return tuple(SOURCES[name].load(root))


@functools.cache
def _trained_keys(root: Path, name: str) -> frozenset[str]:
    return frozenset(text_key(r.text) for r in _records(root, name))


@functools.cache
def _heldout_keys() -> frozenset[str]:
    path = HEADS_DIR / "heldout.json"
    try:
        keys = json.loads(path.read_text(encoding="utf-8"))["embedded-prompt"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"cannot read the held-out key set {path}: {exc}; reinstall safestack"
        ) from exc
    return frozenset(str(k) for k in keys)


@functools.cache
def _csv(path: Path) -> tuple[dict[str, str], ...]:
    return tuple(_rows(path))


@functools.cache
def _jsonl_rows(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(_jsonl(path))


def _sample(
    *,
    id: str,
    messages: list[ChatMessage],
    expected: Expected,
    dataset: str,
    licence: str,
    root: Path,
    training_source: str | None,
    category: str | None = None,
    response: str | None = None,
    metadata: dict[str, Any] | None = None,
    source: SampleSource = "manual_redteam",
) -> Sample:
    sample = Sample(
        id=id,
        messages=messages,
        category=category,
        expected=expected,
        source=source,
        dataset=dataset,
        licence=licence,
        response=response,
        metadata=metadata or {},
    )
    if training_source is None:
        return sample
    key = text_key(sample.prompt)
    seen = key in _trained_keys(root, training_source) and key not in _heldout_keys()
    return sample.model_copy(update={"seen_in_training": seen})


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


def _item(record: LabelledText, prefix: str) -> str:
    return record.group.removeprefix(prefix)


# --- manual red team -----------------------------------------------------------------------------


def _from_source(
    root: Path,
    name: str,
    prefix: str,
    *,
    records: Sequence[LabelledText] | None = None,
    source: SampleSource = "manual_redteam",
    expected: Expected = "should_refuse",
) -> list[Sample]:
    """Single-turn requests, one per record of training source ``name`` (or of ``records``)."""
    return [
        _sample(
            id=f"{name}:{_item(r, prefix)}",
            messages=_user(r.text),
            category=r.category,
            expected=expected,
            dataset=name,
            licence=SOURCES[name].licence,
            root=root,
            training_source=name,
            source=source,
        )
        for r in (_records(root, name) if records is None else records)
    ]


def _simplesafetytests(root: Path) -> list[Sample]:
    return _from_source(root, "simplesafetytests", "sst:")


def _harmbench(root: Path) -> list[Sample]:
    functional = {
        row["BehaviorID"]: row["FunctionalCategory"]
        for row in _csv(root / "harmbench" / "harmbench_behaviors_text_all.csv")
    }
    out = []
    for r in _records(root, "harmbench"):
        item = _item(r, "harmbench:")
        kind = functional.get(item)
        if kind not in ("standard", "contextual"):
            continue  # copyright behaviours ask for a song or a book: not a refusal test
        out.append(
            _sample(
                id=f"harmbench:{item}",
                messages=_user(r.text),  # contextual: "<context>\n\n<behaviour>", as trained
                category=r.category,
                expected="should_refuse",
                dataset="harmbench",
                licence=SOURCES["harmbench"].licence,
                root=root,
                training_source="harmbench",
                metadata={"functional_category": kind},
            )
        )
    return out


def _strongreject(root: Path) -> list[Sample]:
    return _from_source(root, "strongreject", "strongreject:")


def _xstest(root: Path, *, source: SampleSource = "manual_redteam") -> list[Sample]:
    types = {row["id"]: row["type"] for row in _csv(root / "xstest" / "xstest_prompts.csv")}
    out = []
    for r in _records(root, "xstest"):
        item = _item(r, "xstest:v2-")
        out.append(
            _sample(
                id=f"xstest:{item}",
                messages=_user(r.text),
                category=r.category,
                expected="should_refuse" if r.unsafe else "should_comply",
                dataset="xstest",
                licence=SOURCES["xstest"].licence,
                root=root,
                training_source="xstest",
                metadata={"type": types.get(item, "")},
                source=source,
            )
        )
    return out


_JBB_ARTIFACTS = ("jailbreakbench", "jbb_attack_artifacts.jsonl.gz")


def _jbb_artifacts(root: Path) -> Iterator[dict[str, Any]]:
    """Attack artifacts that produced a prompt (JBB records the others with a null prompt)."""
    for row in _jsonl_rows(root.joinpath(*_JBB_ARTIFACTS)):
        prompt = row.get("prompt")
        if isinstance(prompt, str) and prompt.strip():
            yield row


def _jbb_artifact_sample(
    root: Path, row: dict[str, Any], *, id: str, source: SampleSource, replay: bool
) -> Sample:
    """One attack prompt, with the target's real reply and JBB's own verdict in metadata."""
    response = row.get("response")
    metadata: dict[str, Any] = {
        "method": str(row["method"]),
        "target_model": row.get("target_model"),
        "jailbroken": row.get("jailbroken"),  # JBB's Llama-3-70B judge, not human
    }
    if replay:
        metadata["replay"] = True
    else:
        metadata["goal"] = row.get("goal")
    return _sample(
        id=id,
        messages=_user(str(row["prompt"])),
        category=_JBB.get(str(row["category"])),
        expected="should_refuse",
        dataset="jailbreakbench",
        licence=SOURCES["jbb_attacks"].licence,
        root=root,
        training_source="jbb_attacks",
        response=response if isinstance(response, str) else None,
        source=source,
        metadata=metadata,
    )


def _jbb_jailbreakchat(root: Path) -> list[Sample]:
    out = [
        _jbb_artifact_sample(
            root,
            row,
            id=f"jailbreakbench:jailbreakchat-{row['index']}",
            source="manual_redteam",
            replay=False,
        )
        for row in _jbb_artifacts(root)
        if row.get("method") == _JBB_METHOD and row.get("target_model") == _JBB_TARGET
    ]
    if not out:
        raise DataError(
            f"{root.joinpath(*_JBB_ARTIFACTS)}: no {_JBB_METHOD} prompts for {_JBB_TARGET}"
        )
    return out


_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def _parse_transcript(text: str) -> list[ChatMessage] | None:
    """``"\\n\\nHuman: …\\n\\nAssistant: …"`` as messages; ``None`` if it does not alternate."""
    parts = _TURN.split(text)
    if parts[0].strip():
        return None
    messages: list[ChatMessage] = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        role = "user" if speaker == "Human" else "assistant"
        if (messages and messages[-1].role == role) or not content.strip():
            return None
        messages.append(ChatMessage(role=role, content=content.strip()))
    if not messages or messages[0].role != "user":
        return None
    return messages


def _hh_rlhf(root: Path, seed: int) -> list[Sample]:
    path = root / "hh_rlhf_harmless" / "harmless_base_test.jsonl.gz"
    candidates: list[tuple[int, list[ChatMessage]]] = []
    for i, row in enumerate(_jsonl_rows(path)):
        messages = _parse_transcript(str(row.get("chosen", "")))
        if messages is None or messages[-1].role != "assistant":
            continue  # malformed transcript: skip rather than guess
        messages = messages[:-1]  # the model under test writes the final turn
        if sum(m.role == "user" for m in messages) >= 2:
            candidates.append((i, messages))
    rng = random.Random(f"hh_rlhf_harmless:{seed}")
    picked = sorted(rng.sample(range(len(candidates)), min(HH_SAMPLE_SIZE, len(candidates))))
    # Red-team attempts of varying severity, no per-item label: counted as should_refuse and with
    # no category (a known approximation; a judge still labels what the model answers).
    return [
        _sample(
            id=f"hh_rlhf_harmless:{candidates[k][0]}",
            messages=candidates[k][1],
            expected="should_refuse",
            dataset="hh_rlhf_harmless",
            licence=_HH_LICENCE,
            root=root,
            training_source=None,  # not a training source
            metadata={"turns": sum(m.role == "user" for m in candidates[k][1])},
        )
        for k in picked
    ]


def _manual_single_turn(root: Path) -> list[Sample]:
    return [
        *_simplesafetytests(root),
        *_harmbench(root),
        *_strongreject(root),
        *_xstest(root),
        *_jbb_jailbreakchat(root),
    ]


def _manual_redteam(root: Path, seed: int) -> list[Sample]:
    return [*_manual_single_turn(root), *_hh_rlhf(root, seed)]


# --- real world ----------------------------------------------------------------------------------


def _self_instruct(root: Path) -> list[Sample]:
    records = [
        r
        for r in _records(root, "self_instruct")
        if r.group.startswith("self_instruct:user_oriented")
    ]
    return _from_source(
        root,
        "self_instruct",
        "self_instruct:",
        records=records,
        source="real_world",
        expected="should_comply",
    )


def _truthfulqa(root: Path) -> list[Sample]:
    return _from_source(
        root, "truthfulqa", "truthfulqa:", source="real_world", expected="should_comply"
    )


def _bbq_rows(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    paths = sorted((root / "bbq").glob("*.jsonl.gz"))
    if not paths:
        raise DataError(f"missing data files {root / 'bbq'}/*.jsonl.gz")
    return [(p, row) for p in paths for row in _jsonl_rows(p)]


def _bbq_sample(root: Path, row: dict[str, Any]) -> Sample:
    return _sample(
        id=f"bbq:{row['category']}:{row['example_id']}",
        messages=_user(f"{row['context']} {row['question']}"),  # as training built it
        expected="should_comply",
        dataset="bbq",
        licence=SOURCES["bbq"].licence,
        root=root,
        training_source="bbq",
        source="real_world",
        metadata={
            "category": row["category"],
            "context_condition": row.get("context_condition"),
            "question_polarity": row.get("question_polarity"),
        },
    )


def _jbb_benign(root: Path) -> list[Sample]:
    return [
        _sample(
            id=f"jailbreakbench:benign-{_item(r, 'jbb:')}",
            messages=_user(r.text),
            expected="should_comply",
            dataset="jailbreakbench",
            licence=SOURCES["jbb_behaviours"].licence,
            root=root,
            training_source="jbb_behaviours",
            source="real_world",
        )
        for r in _records(root, "jbb_behaviours")
        if r.source == "jbb_benign"
    ]


def _pick(rng: random.Random, items: Sequence[_T], n: int) -> list[_T]:
    """``n`` items in their original order (all of them when there are fewer)."""
    chosen = sorted(rng.sample(range(len(items)), min(n, len(items))))
    return [items[i] for i in chosen]


def _real_world(root: Path, seed: int) -> list[Sample]:
    rng = random.Random(f"real_world:{seed}")
    mix = REAL_WORLD_MIX
    xstest_safe = [s for s in _xstest(root, source="real_world") if s.expected == "should_comply"]
    bbq = _pick(rng, _bbq_rows(root), mix["bbq"])
    harmful_pool = [s for s in _manual_single_turn(root) if s.expected == "should_refuse"]
    harmful = _pick(rng, [s for s in harmful_pool if s.category is not None], mix["harmful"])
    out = [
        *_pick(rng, _self_instruct(root), mix["self_instruct"]),
        *_pick(rng, _truthfulqa(root), mix["truthfulqa"]),
        *(_bbq_sample(root, row) for _, row in bbq),
        *_pick(rng, xstest_safe, mix["xstest_safe"]),
        *_pick(rng, _jbb_benign(root), mix["jbb_benign"]),
        *(s.model_copy(update={"source": "real_world"}) for s in harmful),
    ]
    rng.shuffle(out)
    return out


def _jailbreak(root: Path, seed: int) -> list[Sample]:
    """Every JailbreakBench attack artifact with a prompt and a reply, replayed as it happened.

    Methods that search automatically (PAIR, GCG, random search, DSN) are ``automated_redteam``;
    JailbreakChat's human-written templates are ``manual_redteam``. ``metadata["replay"]`` tells
    the evaluation to answer with the target's recorded reply rather than with the configured
    model, so prompt and output blocking are measured on the attacks and answers that happened.
    """
    del seed  # every artifact is used, in file order
    out = [
        _jbb_artifact_sample(
            root,
            row,
            id=f"jailbreakbench:{row['method']}:{row['target_model']}:{row['index']}",
            source="manual_redteam" if row["method"] == "JailbreakChat" else "automated_redteam",
            replay=True,
        )
        for row in _jbb_artifacts(root)
        if isinstance(row.get("response"), str)
    ]
    if not out:
        raise DataError(
            f"{root.joinpath(*_JBB_ARTIFACTS)}: no attack artifacts with a prompt and a response"
        )
    return out


#: ``automated_redteam``: attacks and benign look-alikes generated per policy category.
REDTEAM_PER_CATEGORY = 8


def _automated_redteam(root: Path, seed: int) -> list[Sample]:
    """Attacks generated offline from the default policy and seed behaviours (``redteam/``):
    :data:`REDTEAM_PER_CATEGORY` per category, cycling through every strategy, plus as many
    benign look-alikes (``should_comply``) to measure over-refusal."""
    from safestack.redteam import generate_samples

    generated = generate_samples(per_category=REDTEAM_PER_CATEGORY, seed=seed, datasets_dir=root)
    return [*generated, *_advbench(root, seed)]


#: ``automated_redteam`` also takes a seeded sample of AdvBench's machine-written behaviours.
ADVBENCH_SAMPLE_SIZE = 100


def _advbench(root: Path, seed: int) -> list[Sample]:
    """AdvBench harmful behaviours (Zou et al. 2023; written with an LLM, hence automated red
    teaming). They carry no category, so they count in ``overall`` only."""
    records = [r for r in _records(root, "advbench") if r.source == "advbench"]
    rng = random.Random(f"advbench:{seed}")
    picked = sorted(rng.sample(range(len(records)), min(ADVBENCH_SAMPLE_SIZE, len(records))))
    return _from_source(
        root,
        "advbench",
        "advbench:",
        records=[records[i] for i in picked],
        source="automated_redteam",
    )


# --- public API ----------------------------------------------------------------------------------

_TASKS: dict[str, Callable[[Path, int], list[Sample]]] = {
    "manual_redteam": _manual_redteam,
    "real_world": _real_world,
    "jailbreak": _jailbreak,
    "automated_redteam": _automated_redteam,
}
#: The built-in tasks :func:`load_task_samples` knows.
TASK_NAMES: tuple[str, ...] = tuple(_TASKS)


def load_task_samples(
    task: str, *, datasets_dir: Path | None = None, seed: int = 0
) -> list[Sample]:
    """The samples of a built-in task (see the module docstring), in a fixed order.

    Raises :class:`UnknownComponentError` for a task not in :data:`TASK_NAMES` and
    :class:`DataError` when the datasets folder or a file in it is missing. The same ``seed``
    gives the identical list; parsed files are cached per process.
    """
    if task not in _TASKS:
        raise UnknownComponentError(f"unknown task {task!r}; known: {', '.join(TASK_NAMES)}")
    root = find_datasets_dir(datasets_dir)
    return _TASKS[task](root, seed)
