"""`safestack card build`: the files it writes, its JSON, and exit 2 on evidence it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from conftest import EVIDENCE
from safestack.cli import app
from safestack.evals import load_evidence
from safestack.scorecard import assess, default_scorecard


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["card", "build", *args])
    return result.exit_code, result.stdout, result.stderr


def test_build_writes_every_file_and_reports_the_decision(
    built: tuple[Path, dict[str, Any]],
) -> None:
    out, summary = built
    assert set(summary) == {"out", "files", "decision", "overall_post"}
    assert summary["out"] == str(out)
    assert summary["files"] == {
        "md": str(out / "system_card.md"),
        "html": str(out / "system_card.html"),
        "pdf": str(out / "system_card.pdf"),
        "scorecard": str(out / "scorecard.json"),
    }
    for path in summary["files"].values():
        assert Path(path).stat().st_size > 1000
    assert len(list((out / "plots").glob("*.svg"))) >= 5
    runs = load_evidence([EVIDENCE])
    expected = assess(default_scorecard(), runs)
    assert summary["decision"] == expected.decision.value
    assert summary["overall_post"] == expected.overall_post.value
    scored = json.loads((out / "scorecard.json").read_text())
    assert [r["run_id"] for r in scored["runs"]] == [r.run_id for r in runs]


def test_title_about_and_formats(tmp_path: Path) -> None:
    about = tmp_path / "about.md"
    about.write_text("Acme's **support bot**, for adults.\n")
    code, stdout, _ = invoke(
        "--runs",
        str(EVIDENCE),
        "--out",
        str(tmp_path / "card"),
        "--format",
        "md",
        "--title",
        "Acme support bot",
        "--about",
        str(about),
    )
    assert code == 0
    text = (tmp_path / "card" / "system_card.md").read_text()
    assert text.startswith("# Acme support bot\n")
    assert "Acme's **support bot**, for adults." in text
    assert not (tmp_path / "card" / "system_card.html").exists()
    assert "gate decision: stop" in stdout


def test_an_unfinished_run_is_refused(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (log,) = EVIDENCE.glob("*.jsonl")
    lines = log.read_text().splitlines(keepends=True)
    (logs / log.name).write_text("".join(lines[: len(lines) // 2]))
    code, _, stderr = invoke("--runs", str(logs), "--out", str(tmp_path / "card"), "--json")
    assert code == 2
    assert "did not finish" in stderr and log.name in stderr
    assert not (tmp_path / "card").exists()


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    code, stdout, stderr = invoke("--runs", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path))
    assert code == 2 and stdout == ""
    assert "nope.jsonl: no such run log" in stderr


def test_an_invalid_scorecard_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "scorecard.yaml"
    bad.write_text("name: broken\ncategories:\n  - id: not_a_category\n    framework: frontier\n")
    code, _, stderr = invoke(
        "--runs", str(EVIDENCE), "--scorecard", str(bad), "--out", str(tmp_path / "card")
    )
    assert code == 2
    assert "scorecard.yaml" in stderr and "error:" in stderr


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    code, _, stderr = invoke("--runs", str(EVIDENCE), "--out", str(tmp_path), "--format", "docx")
    assert code == 2
    assert "allowed: md, html, pdf" in stderr


def test_a_copy_of_a_run_given_twice_is_refused(tmp_path: Path) -> None:
    (log,) = EVIDENCE.glob("*.jsonl")
    shutil.copy(log, tmp_path / "again.jsonl")
    code, _, stderr = invoke(
        "--runs", str(EVIDENCE), "--runs", str(tmp_path / "again.jsonl"), "--out", str(tmp_path)
    )
    assert code == 2 and "given twice" in stderr
