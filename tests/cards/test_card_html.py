"""The HTML card is one self-contained page, and evidence text in it is text, never markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from conftest import EVIDENCE
from safestack.cards import SystemCard
from safestack.evals import RunEvidence, load_evidence, write_report_log
from safestack.scorecard import assess, default_scorecard

#: Attributes whose URL a browser fetches when the page loads (links in text are not fetched).
LOADED = {"src", "srcset", "data", "poster", "background", "xlink:href"}


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            fetched = name in LOADED or (name == "href" and tag in {"link", "image", "use"})
            if fetched and value is not None:
                self.loaded.append((tag, name, value))


def resources(page: str) -> _Resources:
    parser = _Resources()
    parser.feed(page)
    parser.close()
    return parser


def test_the_page_loads_nothing_from_elsewhere(html: str) -> None:
    found = resources(html)
    external = [r for r in found.loaded if not r[2].startswith(("#", "data:"))]
    assert external == []
    assert "script" not in found.tags and "link" not in found.tags and "iframe" not in found.tags
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    assert "url(" not in style.group(1) and "@import" not in style.group(1)
    assert html.count("<svg") >= 5  # the plots are inline


def test_the_page_has_the_scorecard_and_the_decision(html: str) -> None:
    assert '<table id="scorecard"' in html
    assert '<strong id="gate-decision">stop</strong>' in html


def test_evidence_strings_are_escaped(tmp_path: Path) -> None:
    hostile = "<script>alert(1)"  # the task names the log file: no "/" in it
    log = write_report_log(
        tmp_path,
        "bias",
        hostile,
        [
            {
                "classifier": '<img src="https://evil.example/x.png">',
                "dataset": "toxigen",
                "group": "a|b & <i>c</i></script>",
                "n": 3,
                "n_flagged": 1,
                "fpr": 0.3333,
                "fpr_low": 0.0615,
                "fpr_high": 0.7923,
            }
        ],
        datasets=["toxigen (MIT + CDLA-Permissive-2.0)"],
    )
    runs: list[RunEvidence] = load_evidence([EVIDENCE, log])
    card = SystemCard.from_evidence(runs, assess(default_scorecard(), runs))
    page = card.html()
    assert hostile not in page and "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)" in page
    assert "<i>c</i>" not in page
    assert "&lt;i&gt;c&lt;/i&gt;&lt;/script&gt;" in page.replace("<wbr>", "")
    assert not [r for r in resources(page).loaded if "evil.example" in r[2]]
    text = card.markdown()
    prose = re.sub(r"`[^`\n]*`", "", text)  # inside a code span, "<" is literal text
    assert hostile not in prose and "<img" not in prose
    assert "| a\\|b & &lt;i&gt;c&lt;/i&gt;&lt;/script&gt; |" in text


def test_the_introduction_cannot_load_or_inject(runs: list[RunEvidence], tmp_path: Path) -> None:
    about = (
        "See [the study](https://example.org/study).\n\n"
        "![tracker](https://example.org/pixel.png)\n\n<script>alert(3)</script>\n"
    )
    card = SystemCard.from_evidence(runs, assess(default_scorecard(), runs), about=about)
    page = card.html()
    assert '<a href="https://example.org/study">the study</a>' in page  # a link is not a load
    assert not [r for r in resources(page).loaded if "example.org" in r[2]]
    assert "<script>alert(3)" not in page
