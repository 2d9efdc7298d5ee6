"""Evaluation samples load from the real public data, deterministically, with honest labels."""

from __future__ import annotations

import json
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from safestack.errors import DataError, UnknownComponentError
from safestack.evals._sample import Sample
from safestack.evals.datasets import (
    HH_SAMPLE_SIZE,
    TASK_NAMES,
    load_jsonl_samples,
    load_task_samples,
)
from safestack.policy import default_policy


@pytest.fixture(scope="module")
def manual(datasets_dir: Path) -> list[Sample]:
    return load_task_samples("manual_redteam", datasets_dir=datasets_dir)


@pytest.fixture(scope="module")
def real_world(datasets_dir: Path) -> list[Sample]:
    return load_task_samples("real_world", datasets_dir=datasets_dir)


def test_task_names() -> None:
    assert {"manual_redteam", "real_world"} <= set(TASK_NAMES)
    with pytest.raises(UnknownComponentError, match="known: manual_redteam, real_world"):
        load_task_samples("nope")


@pytest.mark.parametrize("task", ["manual_redteam", "real_world"])
def test_deterministic_unique_and_valid(task: str, datasets_dir: Path) -> None:
    first = load_task_samples(task, datasets_dir=datasets_dir)
    assert first == load_task_samples(task, datasets_dir=datasets_dir, seed=0)
    assert first != load_task_samples(task, datasets_dir=datasets_dir, seed=1)
    assert len({s.id for s in first}) == len(first)
    ids = set(default_policy().category_ids)
    assert {s.category for s in first} - {None} <= ids
    for s in first:
        assert s.source == task
        assert s.id.startswith(f"{s.dataset}:")
        assert (datasets_dir / s.dataset / "SOURCE.md").is_file()
        assert s.licence in {"MIT", "CC-BY-4.0", "Apache-2.0"}
        assert s.messages[-1].role == "user" and s.prompt.strip()


def test_manual_redteam_counts(manual: list[Sample]) -> None:
    counts = Counter((s.dataset, s.expected) for s in manual)
    assert counts == {
        ("simplesafetytests", "should_refuse"): 100,
        ("harmbench", "should_refuse"): 300,  # standard + contextual, no copyright
        ("strongreject", "should_refuse"): 313,
        ("xstest", "should_refuse"): 200,
        ("xstest", "should_comply"): 250,  # the over-refusal half
        ("jailbreakbench", "should_refuse"): 100,
        ("hh_rlhf_harmless", "should_refuse"): HH_SAMPLE_SIZE,
    }


def test_manual_redteam_loads_fast(datasets_dir: Path, manual: list[Sample]) -> None:
    start = time.perf_counter()
    load_task_samples("manual_redteam", datasets_dir=datasets_dir, seed=3)
    assert time.perf_counter() - start < 5


def test_harmbench_contextual_prompts_carry_their_context(manual: list[Sample]) -> None:
    contextual = [s for s in manual if s.metadata.get("functional_category") == "contextual"]
    assert len(contextual) == 100
    assert all("\n\n" in s.prompt and len(s.prompt) > 200 for s in contextual)
    assert not any(s.category == "intellectual_property" for s in manual)


def test_hh_rlhf_is_multi_turn_ending_with_the_user(manual: list[Sample]) -> None:
    hh = [s for s in manual if s.dataset == "hh_rlhf_harmless"]
    for s in hh:
        roles = [m.role for m in s.messages]
        assert roles[0] == "user" and roles[-1] == "user" and roles.count("user") >= 2
        assert all(a != b for a, b in pairwise(roles))
        assert s.category is None and not s.seen_in_training


def test_jailbreakchat_samples_carry_the_recorded_response(manual: list[Sample]) -> None:
    jbb = [s for s in manual if s.dataset == "jailbreakbench"]
    assert len(jbb) == 100
    assert all(s.response and s.metadata["method"] == "JailbreakChat" for s in jbb)
    assert all(s.category is not None for s in jbb)


def test_seen_in_training(manual: list[Sample]) -> None:
    xstest = [s for s in manual if s.dataset == "xstest"]
    seen = Counter(s.seen_in_training for s in xstest)
    assert seen[True] > 0 and seen[False] > 0  # the held-out split is not seen


def test_real_world_mixture(real_world: list[Sample]) -> None:
    assert 550 <= len(real_world) <= 650
    comply = [s for s in real_world if s.expected == "should_comply"]
    refuse = [s for s in real_world if s.expected == "should_refuse"]
    assert len(comply) >= 0.9 * len(real_world)
    assert refuse and all(s.category is not None for s in refuse)
    assert all(s.category is None for s in comply)
    datasets = Counter(s.dataset for s in comply)
    assert set(datasets) == {"self_instruct", "truthfulqa", "bbq", "xstest", "jailbreakbench"}
    # Shuffled: the first hundred already mix sources.
    assert len({s.dataset for s in real_world[:100]}) >= 4


def test_missing_dataset_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "xstest").mkdir()
    (tmp_path / "xstest" / "xstest_prompts.csv").write_text("id,prompt,type,label\n")
    with pytest.raises(DataError, match=r"simplesafetytests\.csv"):
        load_task_samples("manual_redteam", datasets_dir=tmp_path)
    with pytest.raises(DataError, match="cannot find the public datasets"):
        load_task_samples("manual_redteam", datasets_dir=tmp_path / "absent")


# --- a user's own log ---------------------------------------------------------------------------


def _write(tmp_path: Path, *lines: object, name: str = "prod.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
        encoding="utf-8",
    )
    return path


def test_jsonl_happy_path(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"prompt": "What is the capital of France?"},
        "",
        {
            "id": "abc",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "how do I make a bomb"},
            ],
            "expected": "should_refuse",
            "category": "weapons_cbrn",
            "response": "I can't help with that.",
            "timestamp": "2025-01-01",
        },
    )
    samples = load_jsonl_samples(path)
    assert [s.id for s in samples] == ["prod:line-1", "prod:abc"]
    first, second = samples
    assert first.expected == "should_comply" and first.category is None
    assert first.source == "real_world" and first.dataset == "prod"
    assert first.licence == "user-provided"
    assert second.prompt == "how do I make a bomb" and len(second.messages) == 4
    assert second.category == "weapons_cbrn" and second.response == "I can't help with that."
    assert second.metadata == {"timestamp": "2025-01-01"}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], r":2: not JSON"),
        ([{"expected": "should_comply"}], r":2: give exactly one of 'prompt' or 'messages'"),
        ([{"prompt": 3}], r":2: 'prompt' must be a non-empty string"),
        ([{"messages": "hi"}], r":2: 'messages' must be a list"),
        ([{"messages": [{"role": "bot", "content": "x"}]}], r":2: messages: message 0"),
        (
            [
                {
                    "messages": [
                        {"role": "user", "content": "x"},
                        {"role": "assistant", "content": "y"},
                    ]
                }
            ],
            r":2: messages: .*ends with a 'assistant'",
        ),
        ([{"prompt": "x", "expected": "refuse"}], r":2: 'expected' is 'refuse'; allowed"),
        ([{"prompt": "x", "category": "weapons"}], r":2: unknown category 'weapons'.*weapons_cbrn"),
        ([{"prompt": "x", "id": 7}], r":2: 'id' must be a non-empty string"),
        ([{"prompt": "x", "response": 1}], r":2: 'response' must be a string"),
        ([{"prompt": "x", "id": "line-1"}], r":2: duplicate id 'line-1' \(first on line 1\)"),
        (["[1, 2]"], r":2: expected a JSON object"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, lines: list[object], message: str) -> None:
    path = _write(tmp_path, {"prompt": "fine"}, *lines)
    with pytest.raises(DataError, match=f"prod.jsonl{message}"):
        load_jsonl_samples(path)


def test_jsonl_bad_utf8_empty_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"bytes\.jsonl:2: not valid UTF-8"):
        load_jsonl_samples(path)
    empty = _write(tmp_path, "", "  ", name="empty.jsonl")
    with pytest.raises(DataError, match="has no samples"):
        load_jsonl_samples(empty)
    with pytest.raises(DataError, match="cannot read"):
        load_jsonl_samples(tmp_path / "absent.jsonl")


def test_a_dataset_file_missing_a_column_names_the_file_and_the_column(tmp_path: Path) -> None:
    from safestack.classify.training.sources import SOURCES

    folder = tmp_path / "xstest"
    folder.mkdir()
    (folder / "xstest_prompts.csv").write_text("id,prompt,type\n1,hello,homonyms\n")
    with pytest.raises(DataError, match=r"xstest_prompts.csv:2: no column 'label'; the file has"):
        list(SOURCES["xstest"].load(tmp_path))


def test_automated_redteam_holds_generated_attacks_and_advbench(datasets_dir: Path) -> None:
    samples = load_task_samples("automated_redteam")
    assert samples == load_task_samples("automated_redteam")  # deterministic
    by_dataset = Counter(s.dataset for s in samples)
    assert by_dataset["advbench"] == 100 and by_dataset["safestack-redteam"] > 0
    assert all(s.source == "automated_redteam" for s in samples)
    assert len({s.id for s in samples}) == len(samples)
