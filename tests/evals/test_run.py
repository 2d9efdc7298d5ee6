"""Evaluation runs: real stacks and recorded completions, logs, and resuming after kill -9."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from safestack.errors import DataError, InputError
from safestack.evals import EvalRun, Sample, read_log, rows_from_log
from safestack.models import ChatMessage

CONFIGS = ["system_mitigations", "system_mitigations_and_model_refusals"]


def xstest_samples(datasets_dir: Path, n: int) -> list[Sample]:
    with (datasets_dir / "xstest" / "xstest_prompts.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = rows[:: max(1, len(rows) // n)][:n]
    return [
        Sample(
            id=f"xstest:{row['id']}",
            messages=[ChatMessage(role="user", content=row["prompt"])],
            category="violence" if row["label"] == "unsafe" else None,
            expected="should_refuse" if row["label"] == "unsafe" else "should_comply",
            source="manual_redteam",
            dataset="xstest",
            licence="CC-BY-4.0",
        )
        for row in rows
    ]


def test_a_run_logs_every_pair_and_tabulates(datasets_dir: Path, tmp_path: Path) -> None:
    samples = xstest_samples(datasets_dir, 24)
    log = tmp_path / "run.jsonl"
    rows = EvalRun("xstest", samples, CONFIGS, log, concurrency=3).run()
    header, records = read_log(log)
    assert header["task"] == "xstest" and header["configs"] == CONFIGS
    assert header["judge"]["name"] == "embedded-output" and "accuracy" in header["judge"]
    assert header["refusal_detector"]["name"] == "refusal"
    assert set(header["stacks"]) == set(CONFIGS)
    assert len(records) == len(CONFIGS) * len(samples)
    assert len({(r["config"], r["sample_id"]) for r in records}) == len(records)
    overall = {r["config"]: r for r in rows if r["category"] == "overall"}
    # Llama-2's refusals (counted) cost over-refusal on XSTest's safe prompts; Mistral's don't.
    refusing = overall["system_mitigations_and_model_refusals"]["not_overrefuse"]
    helpful = overall["system_mitigations"]["not_overrefuse"]
    assert refusing < helpful
    for row in rows:
        if row["not_unsafe"] is not None:
            assert row["not_unsafe_low"] <= row["not_unsafe"] <= row["not_unsafe_high"]
    assert rows_from_log(log) == rows  # tables come from the log alone


def test_a_run_resumes_after_kill_9_without_losing_or_repeating(
    datasets_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "killed.jsonl"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from pathlib import Path
            from test_run import xstest_samples, CONFIGS
            from safestack.evals import EvalRun
            samples = xstest_samples(Path({str(datasets_dir)!r}), 40)
            EvalRun("xstest", samples, CONFIGS, Path({str(log)!r}), concurrency=1).run()
            """
        )
    )
    process = subprocess.Popen([sys.executable, str(script)], env={**os.environ})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count('"type": "sample"') >= 10:
            break
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed (exit {process.returncode})")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, before = read_log(log)
    assert 10 <= len(before) < 80

    samples = xstest_samples(datasets_dir, 40)
    EvalRun("xstest", samples, CONFIGS, log, concurrency=2).run()
    _, after = read_log(log)
    pairs = [(r["config"], r["sample_id"]) for r in after]
    assert len(pairs) == len(set(pairs)) == 80  # nothing lost, nothing scored twice
    assert after[: len(before)] == before  # what was there is kept as it was


def test_bad_runs_fail_clearly(datasets_dir: Path, tmp_path: Path) -> None:
    samples = xstest_samples(datasets_dir, 4)
    with pytest.raises(DataError, match="has no samples"):
        EvalRun("empty", [], CONFIGS, tmp_path / "e.jsonl")
    with pytest.raises(DataError, match="duplicate sample ids"):
        EvalRun("dup", samples + samples[:1], CONFIGS, tmp_path / "d.jsonl")
    with pytest.raises(InputError, match="unknown configuration 'strongest'"):
        EvalRun("x", samples, ["strongest"], tmp_path / "x.jsonl").run()
    log = tmp_path / "r.jsonl"
    EvalRun("x", samples, CONFIGS[:1], log).run()
    with pytest.raises(InputError, match="resume it with the same task"):
        EvalRun("x", samples, CONFIGS, log).run()
    # Another sample set (another --limit or --seed) would mix two runs in one log.
    with pytest.raises(InputError, match=r"a run of 4 samples.*not of these 3"):
        EvalRun("x", samples[:3], CONFIGS[:1], log).run()
    others = xstest_samples(datasets_dir, 8)[4:]
    with pytest.raises(InputError, match="same --limit and --seed"):
        EvalRun("x", others, CONFIGS[:1], log).run()
    log.write_text(log.read_text().replace('"version": 1', '"version": 99'))
    with pytest.raises(DataError, match="version 99"):
        read_log(log)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"type": "sample"}\nnot json\n{"type": "sample"}\n')
    with pytest.raises(DataError, match=":2: not JSON"):
        read_log(broken)


def test_log_records_are_json_lines(datasets_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    EvalRun("x", xstest_samples(datasets_dir, 3), CONFIGS[:1], log).run()
    for line in log.read_text().splitlines():
        assert isinstance(json.loads(line), dict)


def test_jailbreak_replays_each_target_reply_and_groups_by_method(
    datasets_dir: Path, tmp_path: Path
) -> None:
    from safestack.evals.datasets import load_task_samples

    attacks = load_task_samples("jailbreak")
    # One attack per (method, target): most targets have no recording in the default model, so
    # only replaying the sample's own reply can answer them.
    picked: dict[tuple[str, str], Sample] = {}
    for sample in attacks:
        picked.setdefault((sample.metadata["method"], sample.metadata["target_model"]), sample)
    samples = list(picked.values())
    log = tmp_path / "jb.jsonl"
    rows = EvalRun("jailbreak", samples, ["no_mitigations"], log).run()
    _, records = read_log(log)
    assert all(r["status"] == "answered" for r in records)
    assert {r["method"] for r in records} == {m for m, _ in picked}
    methods = {r["category"] for r in rows if str(r["category"]).startswith("attack:")}
    assert methods == {f"attack:{m}" for m, _ in picked}
    # The judge sees the real replies: JBB's own judge called some of these jailbroken.
    unsafe = {r["sample_id"]: r["unsafe"] for r in records}
    jailbroken = [s.id for s in samples if s.metadata["jailbroken"]]
    assert jailbroken and any(unsafe[i] for i in jailbroken)


def test_an_endpoint_failing_half_the_time_is_retried(
    endpoint: object, datasets_dir: Path, tmp_path: Path
) -> None:
    ok = endpoint.completion("A plain answer.")  # type: ignore[attr-defined]
    samples = [s for s in xstest_samples(datasets_dir, 40) if s.expected == "should_comply"][:8]
    for _ in samples:  # every first attempt fails with a 503, every retry succeeds
        endpoint.reply({"error": "overloaded"}, status=503)  # type: ignore[attr-defined]
        endpoint.reply(ok)  # type: ignore[attr-defined]
    stack = tmp_path / "flaky.yaml"
    url = endpoint.base_url  # type: ignore[attr-defined]
    stack.write_text(
        "preset: no_mitigations\n"
        f"model: {{name: openai, args: {{base_url: '{url}', model: m, max_retries: 2}}}}\n"
    )
    log = tmp_path / "flaky.jsonl"
    EvalRun("flaky", samples, [str(stack)], log, concurrency=1).run()
    _, records = read_log(log)
    assert [r["status"] for r in records] == ["answered"] * len(samples)
    assert len(endpoint.requests) == 2 * len(samples)  # type: ignore[attr-defined]
