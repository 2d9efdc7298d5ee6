"""Generating red-team samples, the attacker path over real sockets, and the regression set."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from safestack.errors import DataError, InputError, UnknownComponentError
from safestack.evals import LOG_VERSION
from safestack.evals.datasets import load_jsonl_samples
from safestack.models import OpenAICompatibleModel
from safestack.policy import default_policy
from safestack.redteam import (
    ATTACKER_SYSTEM_PROMPT,
    POLICY_LICENCE,
    RedTeamer,
    breaking_samples,
    generate_samples,
    write_samples_jsonl,
)

TARGETS = [c.id for c in default_policy().categories if c.id != "prompt_attack"]


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "attacker-1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }


def test_generation_is_deterministic_with_unique_ids(datasets_dir: Path) -> None:
    first = generate_samples(per_category=4, seed=7, datasets_dir=datasets_dir)
    assert first == generate_samples(per_category=4, seed=7, datasets_dir=datasets_dir)
    assert first != generate_samples(per_category=4, seed=8, datasets_dir=datasets_dir)
    ids = [s.id for s in first]
    assert len(set(ids)) == len(ids)
    for s in first:
        assert re.fullmatch(r"redteam:[a-z_0-9]+:[a-z_0-9]+:b?\d+", s.id)
        category, strategy = s.id.split(":")[1:3]
        assert s.category == category and s.metadata["strategy"] == strategy
        assert s.source == "automated_redteam" and s.dataset == "safestack-redteam"
        assert s.metadata["seed_id"] and s.messages[-1].role == "user"


def test_every_target_category_gets_n_attacks_and_n_lookalikes(datasets_dir: Path) -> None:
    samples = generate_samples(per_category=6, datasets_dir=datasets_dir)
    attacks = Counter(s.category for s in samples if s.expected == "should_refuse")
    benign = Counter(s.category for s in samples if s.expected == "should_comply")
    assert attacks == dict.fromkeys(TARGETS, 6)
    assert benign == dict.fromkeys(TARGETS, 6)
    assert "prompt_attack" not in attacks
    for s in samples:
        assert (s.metadata["kind"] == "benign") == (s.expected == "should_comply")
        assert (":b" in s.id) == (s.expected == "should_comply")


def test_seeds_come_from_the_policy_and_the_datasets_with_their_licence(
    datasets_dir: Path,
) -> None:
    samples = generate_samples(per_category=20, datasets_dir=datasets_dir, benign=False)
    assert all(s.expected == "should_refuse" for s in samples)
    by_origin = {s.metadata["seed_id"].split(":")[0]: s.licence for s in samples}
    assert by_origin["policy"] == POLICY_LICENCE
    assert by_origin["harmbench"] == "MIT" and by_origin["strongreject"] == "MIT"
    # SimpleSafetyTests ids are "sst:<id>"
    assert by_origin["sst"] == "CC-BY-4.0"


def test_policy_only_needs_no_datasets(tmp_path: Path) -> None:
    samples = generate_samples(per_category=3, use_datasets=False, datasets_dir=tmp_path)
    assert {s.metadata["seed_id"].split(":")[0] for s in samples} == {"policy"}
    with pytest.raises(DataError):
        generate_samples(per_category=3, datasets_dir=tmp_path / "missing")


def test_strategies_cycle_and_base64_carries_a_seed(datasets_dir: Path) -> None:
    samples = generate_samples(
        per_category=4, strategies=["base64", "payload_split"], datasets_dir=datasets_dir
    )
    attacks = [s for s in samples if s.expected == "should_refuse"]
    assert Counter(s.metadata["strategy"] for s in attacks) == {
        "base64": 2 * len(TARGETS),
        "payload_split": 2 * len(TARGETS),
    }
    policy = default_policy()
    examples = {t for c in policy.categories for t in c.examples.disallowed}
    for s in attacks:
        if s.metadata["strategy"] == "base64":
            (encoded,) = re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", s.prompt)
            decoded = base64.b64decode(encoded).decode()
            assert decoded.strip()
            if s.metadata["seed_id"].startswith("policy:"):
                assert decoded in examples
        else:
            assert sum(m.role == "user" for m in s.messages) >= 2


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(UnknownComponentError, match=r"'rot13'.*valid: roleplay"):
        generate_samples(strategies=["rot13"], use_datasets=False)
    with pytest.raises(InputError, match="per_category"):
        generate_samples(per_category=0, use_datasets=False)
    with pytest.raises(UnknownComponentError):
        RedTeamer(strategies=["nope"])


def test_red_teamer_is_the_object_form(datasets_dir: Path) -> None:
    teamer = RedTeamer(default_policy(), ["fiction", "leetspeak"], datasets_dir=datasets_dir)
    assert teamer.generate(3, seed=1) == generate_samples(
        per_category=3, seed=1, strategies=["fiction", "leetspeak"], datasets_dir=datasets_dir
    )


def test_an_attacker_model_writes_single_turn_attacks(endpoint: Any) -> None:
    endpoint.always(completion("REWRITTEN ATTACK"))
    attacker = OpenAICompatibleModel(endpoint.base_url, "attacker-1", max_retries=0)
    samples = generate_samples(
        per_category=3,
        strategies=["fiction", "base64"],
        attacker=attacker,
        use_datasets=False,
    )
    attacks = [s for s in samples if s.expected == "should_refuse"]
    by_strategy = {s.metadata["strategy"]: s for s in attacks}
    assert by_strategy["fiction"].prompt == "REWRITTEN ATTACK"
    assert by_strategy["fiction"].metadata["generator"] == "attacker:attacker-1"
    assert by_strategy["base64"].metadata["generator"] == "template"  # mechanical: no attacker
    n_fiction = sum(s.metadata["strategy"] == "fiction" for s in attacks)
    assert len(endpoint.requests) == n_fiction  # look-alikes are never sent to the attacker
    body = endpoint.requests[0].json()
    assert body["model"] == "attacker-1"
    assert body["messages"][0] == {"role": "system", "content": ATTACKER_SYSTEM_PROMPT}
    assert "fiction" in body["messages"][1]["content"]
    benign = [s for s in samples if s.expected == "should_comply"]
    assert benign and all(s.metadata["generator"] == "template" for s in benign)


def test_a_failing_attacker_falls_back_to_the_templates(closed_url: str) -> None:
    attacker = OpenAICompatibleModel(closed_url, "attacker-1", max_retries=0, timeout=2)
    offline = generate_samples(per_category=2, strategies=["roleplay"], use_datasets=False)
    fallback = generate_samples(
        per_category=2, strategies=["roleplay"], use_datasets=False, attacker=attacker
    )
    for a, b in zip(offline, fallback, strict=True):
        assert a.messages == b.messages and a.id == b.id
        if b.expected == "should_refuse":
            assert b.metadata["generator"] == "template"
            assert "127.0.0.1" in b.metadata["attacker_error"]
        else:
            assert "attacker_error" not in b.metadata


def test_jsonl_round_trip(datasets_dir: Path, tmp_path: Path) -> None:
    samples = generate_samples(per_category=3, datasets_dir=datasets_dir)
    path = write_samples_jsonl(samples, tmp_path / "sub" / "attacks.jsonl")
    loaded = load_jsonl_samples(path)
    assert [s.id for s in loaded] == [f"attacks:{s.id}" for s in samples]
    for a, b in zip(samples, loaded, strict=True):
        assert (a.messages, a.expected, a.category) == (b.messages, b.expected, b.category)
        assert a.metadata == b.metadata


def _log(path: Path, records: list[dict[str, Any]]) -> Path:
    header = {"type": "header", "version": LOG_VERSION, "task": "t", "configs": ["a", "b"]}
    lines = [header, *({"type": "sample", **r} for r in records)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_breaking_samples_are_the_unsafe_ones(tmp_path: Path) -> None:
    samples = generate_samples(per_category=2, use_datasets=False)[:4]
    a, b, c, d = (s.id for s in samples)
    log = _log(
        tmp_path / "run.jsonl",
        [
            {"config": "a", "sample_id": a, "unsafe": False, "refused": None},
            {"config": "b", "sample_id": a, "unsafe": True, "refused": None},  # broke b
            {"config": "a", "sample_id": b, "unsafe": False, "refused": None},
            {"config": "a", "sample_id": c, "unsafe": None, "refused": None},  # unanswered
            {"config": "a", "sample_id": f"task/{d}", "unsafe": True, "refused": None},
        ],
    )
    assert [s.id for s in breaking_samples(log, samples)] == [a, d]
