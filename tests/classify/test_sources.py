"""The public data loads, keeps its labels, and maps only onto real policy categories."""

from __future__ import annotations

import json
from collections import Counter

from safestack.classify.training.sources import (
    CONVERSATIONAL_TURNS,
    SOURCES,
    load_exchanges,
    load_texts,
)
from safestack.policy import default_policy


def test_every_source_loads_with_labels_in_the_policy(datasets_dir) -> None:
    records = load_texts(datasets_dir)
    ids = set(default_policy().category_ids)
    by_source = Counter(r.source for r in records)
    assert by_source["xstest_safe"] == 250 and by_source["xstest_unsafe"] == 200
    assert by_source["simplesafetytests"] == 100
    assert {r.category for r in records} - {None} <= ids
    assert all(r.unsafe is False for r in records if r.source in {"self_instruct", "truthfulqa"})
    assert any(r.attack for r in records) and len({r.text for r in records}) == len(records)
    assert len(SOURCES) >= 12


def test_conversational_turns_are_short_benign_and_the_projects_own(datasets_dir) -> None:
    records = load_texts(datasets_dir, ["conversational_turns"])
    assert 300 <= len(records) <= 600
    assert all(r.unsafe is False and r.category is None and not r.attack for r in records)
    assert all(1 <= len(r.text.split()) <= 8 for r in records)
    # Variants of one turn (casing, typos) share a group, so the split keeps them together.
    assert len({r.group for r in records}) < len(records)
    header = json.loads(CONVERSATIONAL_TURNS.read_text(encoding="utf-8").splitlines()[0])
    assert header["licence"] == "Apache-2.0"
    assert "written for this project" in header["about"].lower()
    assert SOURCES["conversational_turns"].licence.startswith("Apache-2.0")


def test_xstest_exchanges_carry_human_labels(datasets_dir) -> None:
    xs = load_exchanges(datasets_dir, "xstest")
    assert len(xs) == 2250
    counts = Counter(e.refusal_label for e in xs)
    assert counts == {"compliance": 1091, "refusal": 983, "partial_refusal": 176}
    # Unsafe prompt + full compliance is a policy violation; some models did comply.
    assert 0 < sum(e.unsafe for e in xs) < 200 * 5
    human = load_exchanges(datasets_dir, "jbb_human")
    assert len(human) == 100 and sum(e.unsafe for e in human) == 43


def test_benign_answers_are_harmless_compliance(datasets_dir) -> None:
    answers = load_exchanges(datasets_dir, "benign_answers")
    assert len(answers) > 1000
    assert all(e.unsafe is False and e.refusal_label == "compliance" for e in answers)
    assert all(e.prompt.strip() and e.response.strip() for e in answers)
    assert {e.source for e in answers} == {"self_instruct", "truthfulqa"}
