"""The HTML card in a real browser: headless Chromium renders it and its DOM has the decision."""

from __future__ import annotations

import os
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from PIL import Image

from conftest import require_tool

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
)


def chromium(page: Path, work: Path, timeout: float = 90) -> str:
    """Screenshot ``page`` to ``work/card.png`` and return the DOM after it loaded."""
    binary = require_tool("chromium", "/usr/bin/chromium", "chromium-browser")
    args = [
        binary,
        *FLAGS,
        f"--user-data-dir={work / 'profile'}",
        f"--screenshot={work / 'card.png'}",
        "--window-size=1200,2400",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    # Its own process group: on a timeout the browser and every helper it forked are killed.
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        dom, errors = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"chromium did not finish within {timeout} s") from None
    assert proc.returncode == 0, errors[-2000:]
    return dom


class _Scorecard(HTMLParser):
    """The rows of ``<table id="scorecard">`` and the text of ``#gate-decision``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.decision = ""
        self._in_table = self._in_decision = False
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ids = dict(attrs).get("id")
        if tag == "table" and ids == "scorecard":
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag == "td":
            self.rows[-1].append("")
        if ids == "gate-decision":
            self._in_decision = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        if tag == "strong":
            self._in_decision = False

    def handle_data(self, data: str) -> None:
        if self._in_table and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data
        if self._in_decision:
            self.decision += data


def test_chromium_renders_the_card(built: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, summary = built
    dom = chromium(Path(summary["files"]["html"]), tmp_path)
    with Image.open(tmp_path / "card.png") as shot:
        assert shot.size == (1200, 2400)
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 16  # a blank or error page has a handful

    parsed = _Scorecard()
    parsed.feed(dom)
    parsed.close()
    assert parsed.decision == summary["decision"] == "stop"
    body = [row for row in parsed.rows if row]  # the header row has no <td>
    scorecard = (out / "scorecard.json").read_text()
    assert len(body) == scorecard.count('"framework"')
    assert {row[4] for row in body} >= {"Critical"}  # post-mitigation column
