"""`safestack redteam generate | keep`, invoked on the sub-app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from safestack.cli.redteam import app
from safestack.evals import LOG_VERSION
from safestack.evals.datasets import load_jsonl_samples
from safestack.policy import default_policy

N_TARGETS = sum(c.id != "prompt_attack" for c in default_policy().categories)


def invoke(*args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env or None)


def test_generate_writes_a_task_file_and_reports_counts(tmp_path: Path) -> None:
    out = tmp_path / "attacks.jsonl"
    result = invoke("generate", "--per-category", "2", "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["out"] == str(out) and report["n"] == 4 * N_TARGETS
    assert report["per_category"]["violence"] == {"attacks": 2, "benign": 2}
    assert len(load_jsonl_samples(out)) == report["n"]


def test_generate_table_with_options(tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    result = invoke(
        "generate",
        "--per-category",
        "3",
        "--strategies",
        "base64,many_shot",
        "--no-benign",
        "--no-datasets",
        "--seed",
        "2",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.stderr
    assert "base64" in result.stdout and "many_shot" in result.stdout
    samples = load_jsonl_samples(out)
    assert len(samples) == 3 * N_TARGETS
    assert {s.metadata["strategy"] for s in samples} == {"base64", "many_shot"}
    assert all(s.expected == "should_refuse" for s in samples)


def test_generate_with_an_attacker(endpoint: Any, tmp_path: Path) -> None:
    endpoint.always(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "REWRITE"}}]}
    )
    out = tmp_path / "a.jsonl"
    result = invoke(
        "generate",
        "--per-category",
        "1",
        "--strategies",
        "hypothetical",
        "--no-benign",
        "--no-datasets",
        "--attacker-url",
        endpoint.base_url,
        "--attacker-model",
        "m",
        "--out",
        str(out),
        "--json",
        SAFESTACK_ATTACKER_KEY="sk-secret",
    )
    assert result.exit_code == 0, result.stderr
    assert all(s.prompt == "REWRITE" for s in load_jsonl_samples(out))
    assert endpoint.requests[0].headers["authorization"] == "Bearer sk-secret"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = invoke("generate", "--strategies", "roleplay,rot13", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "rot13" in result.stderr and "leetspeak" in result.stderr
    assert invoke("generate", "--per-category", "0").exit_code == 2
    bad = tmp_path / "policy.yaml"
    bad.write_text("name: x\ncategories: 3\n")
    result = invoke("generate", "--policy", str(bad), "--out", str(tmp_path / "y"))
    assert result.exit_code == 2 and "policy.yaml" in result.stderr
    result = invoke("generate", "--attacker-url", "http://127.0.0.1:1/v1")
    assert result.exit_code == 2 and "--attacker-model" in result.stderr


def test_keep_writes_the_breaking_samples(tmp_path: Path) -> None:
    task = tmp_path / "attacks.jsonl"
    assert (
        invoke("generate", "--per-category", "1", "--no-datasets", "--out", str(task)).exit_code
        == 0
    )
    samples = load_jsonl_samples(task)
    broke = samples[0].id
    header = {"type": "header", "version": LOG_VERSION, "task": "attacks", "configs": ["a"]}
    records = [
        {"type": "sample", "config": "a", "sample_id": s.id, "unsafe": s.id == broke}
        for s in samples
    ]
    log = tmp_path / "run.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in [header, *records]))
    out = tmp_path / "regression.jsonl"
    result = invoke("keep", str(log), "--task-file", str(task), "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"out": str(out), "n": 1, "of": len(samples)}
    (kept,) = load_jsonl_samples(out)
    assert kept.id == broke.replace("attacks:", "regression:", 1)
    assert kept.messages == samples[0].messages and kept.expected == samples[0].expected
    result = invoke("keep", str(tmp_path / "none.jsonl"), "--task-file", str(task))
    assert result.exit_code == 2 and "no such run log" in result.stderr
