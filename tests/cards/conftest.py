"""Fixtures for the system card: the fixed evidence logs, a card built from them, the CLI output.

The card is built once per session (the PDF takes seconds); tests read what it wrote. Tests that
need a headless browser or ``pdftoppm`` skip when the tool is missing, or fail when
``SAFESTACK_REQUIRE_BROWSER=1`` (CI installs both, so there the check can never silently vanish).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest
from typer.testing import CliRunner

from safestack.cards import SystemCard
from safestack.cli import app
from safestack.evals import RunEvidence, load_evidence
from safestack.scorecard import ScorecardResult, assess, default_scorecard

EVIDENCE = Path(__file__).parents[1] / "fixtures" / "evidence"


def _missing(tool: str) -> NoReturn:
    if os.environ.get("SAFESTACK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{tool} is required (SAFESTACK_REQUIRE_BROWSER=1) but not installed")
    pytest.skip(f"{tool} is not installed")


def require_tool(name: str, *candidates: str) -> str:
    for candidate in (*candidates, name):
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    _missing(name)


@pytest.fixture(scope="session")
def runs() -> list[RunEvidence]:
    return load_evidence([EVIDENCE])


@pytest.fixture(scope="session")
def result(runs: list[RunEvidence]) -> ScorecardResult:
    return assess(default_scorecard(), runs)


@pytest.fixture(scope="session")
def card(runs: list[RunEvidence], result: ScorecardResult) -> SystemCard:
    return SystemCard.from_evidence(runs, result)


@pytest.fixture(scope="session")
def markdown(card: SystemCard) -> str:
    return card.markdown()


@pytest.fixture(scope="session")
def html(card: SystemCard) -> str:
    return card.html()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``safestack card build`` on the fixtures, every format, with --json."""
    out = tmp_path_factory.mktemp("card")
    result = CliRunner().invoke(
        app, ["card", "build", "--runs", str(EVIDENCE), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    return out, json.loads(result.stdout)
