"""Reading the card's Markdown back: its tables, by the key each carries in a comment."""

from __future__ import annotations

import re

_KEY = re.compile(r"^<!-- table: (?P<key>\S+) -->$")


def _cells(line: str) -> list[str]:
    body = line.strip()[1:-1]
    parts = re.split(r"(?<!\\)\|", body)
    return [p.strip().replace("\\|", "|").replace("\\\\", "\\") for p in parts]


def tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Every table of the card: key → rows as {column: cell text}."""
    out: dict[str, list[dict[str, str]]] = {}
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        match = _KEY.match(line)
        if not match:
            continue
        j = i + 1
        while not lines[j].startswith("|"):
            j += 1
        header = _cells(lines[j])
        assert set(lines[j + 1].replace("|", "").split()) <= {"---", "---:"}, lines[j + 1]
        rows = []
        k = j + 2
        while k < len(lines) and lines[k].startswith("|"):
            rows.append(dict(zip(header, _cells(lines[k]), strict=True)))
            k += 1
        out[match.group("key")] = rows
    return out


def runs_under(markdown: str, key: str) -> str:
    """The "Runs: …" line under a table."""
    lines = markdown.splitlines()
    start = lines.index(f"<!-- table: {key} -->")
    return next(line for line in lines[start:] if line.startswith("Runs: "))
