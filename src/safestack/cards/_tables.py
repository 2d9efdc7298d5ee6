"""The card's tables: evidence rows turned into formatted cells, each table naming its runs.

Every table is built here once, as plain text cells, and the Markdown and HTML templates only lay
them out (each escaping for its own format). Both formats therefore show the same digits, and a
reader can trace any cell to the run named under its table. Numbers follow one rule: rates with
three decimals, intervals as ``0.929 (0.870–0.970)``, counts as integers, "–" where nothing was
measured. The interval bounds keep three decimals too: a lower bound of 0.9969 rounded to two
would read 1.00 and hide that the bound is below one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from safestack.evals import RunEvidence

__all__ = [
    "SOURCE_ORDER",
    "Cell",
    "RunRefs",
    "Table",
    "count",
    "interval",
    "rate",
    "safety_sources",
]

DASH = "–"

#: Sources in the order the published cards show them; unknown sources follow alphabetically.
SOURCE_ORDER = ("manual_redteam", "automated_redteam", "real_world")

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/-]+")


def rate(value: Any) -> str:
    """A rate in [0, 1] with three decimals; "–" when there were no samples."""
    return DASH if value is None else f"{float(value):.3f}"


def interval(point: Any, low: Any, high: Any) -> str:
    """``0.929 (0.870–0.970)``; the point alone when the log has no bounds."""
    if point is None:
        return DASH
    if low is None or high is None:
        return rate(point)
    return f"{rate(point)} ({rate(low)}–{rate(high)})"


def metric(row: dict[str, Any], name: str) -> str:
    """The interval of ``name`` in a table row (``name``, ``name_low``, ``name_high``)."""
    return interval(row.get(name), row.get(f"{name}_low"), row.get(f"{name}_high"))


def count(value: Any) -> str:
    return DASH if value is None else str(int(value))


@dataclass(frozen=True)
class Cell:
    """One table cell: plain text (never markup) and a style hint the HTML uses."""

    text: str
    css: str = ""


_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?( \([0-9.]+–[0-9.]+\))?")


def _numeric_columns(rows: Sequence[Sequence[Cell | str]], width: int) -> list[bool]:
    """Columns whose text cells are all numbers or "–" (and at least one a number)."""
    out = []
    for i in range(width):
        texts = [row[i] for row in rows if not isinstance(row[i], Cell)]
        numbers = [t for t in texts if t != DASH]
        out.append(
            bool(numbers)
            and len(texts) == len(rows)
            and all(isinstance(t, str) and _NUMBER.fullmatch(t) for t in numbers)
        )
    return out


@dataclass(frozen=True)
class Table:
    """A captioned table and the runs its cells come from.

    ``key`` is a stable identifier (``overall/manual_redteam``): the Markdown carries it in a
    comment above the table and the HTML as the table's ``id``, so tools and tests find a table
    without depending on its caption.
    """

    key: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    run_ids: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def align(self) -> tuple[str, ...]:
        """Per column: ``right`` when every cell is a number (or "–"), else ``left``."""
        return tuple(
            "right" if self.rows and all(row[i].css == "num" for row in self.rows) else "left"
            for i in range(len(self.columns))
        )

    @classmethod
    def of(
        cls,
        key: str,
        caption: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Cell | str]],
        *,
        run_ids: Iterable[str] = (),
        notes: Iterable[str] = (),
    ) -> Table:
        given = [tuple(row) for row in rows]
        for row in given:
            if len(row) != len(columns):  # a programming error, never an evidence problem
                raise ValueError(f"table {key}: row of {len(row)} cells for {len(columns)} columns")
        numeric = _numeric_columns(given, len(columns))
        body = tuple(
            tuple(
                c if isinstance(c, Cell) else Cell(c, "num" if numeric[i] else "")
                for i, c in enumerate(row)
            )
            for row in given
        )
        return cls(
            key=_KEY_UNSAFE.sub("-", key),
            caption=caption,
            columns=tuple(columns),
            rows=body,
            run_ids=tuple(dict.fromkeys(run_ids)),
            notes=tuple(notes),
        )


@dataclass
class RunRefs:
    """Short references (R1, R2, …) for run ids, numbered in the order the runs were given."""

    runs: Sequence[RunEvidence]
    refs: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.refs = {run.run_id: f"R{i}" for i, run in enumerate(self.runs, start=1)}

    def __call__(self, run_id: str | None) -> str:
        return DASH if run_id is None else self.refs.get(run_id, run_id)


def safety_sources(run: RunEvidence) -> list[str]:
    """The sources a safety run has rows for, in the published order."""
    found = {str(row["source"]) for row in run.rows}
    known = [s for s in SOURCE_ORDER if s in found]
    return known + sorted(found - set(known))


def spec_text(spec: Any) -> str:
    """A component spec's arguments as ``key=value; …`` (nested values as compact JSON)."""
    if not isinstance(spec, dict):
        return DASH
    args = spec.get("args") or {}
    if not isinstance(args, dict) or not args:
        return DASH
    parts = []
    for name, value in sorted(args.items()):
        if isinstance(value, list | tuple):
            shown = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
        else:
            shown = str(value)
        parts.append(f"{name}={shown}")
    return "; ".join(parts)


def parse_dataset(entry: str) -> tuple[str, str]:
    """``"xstest (CC-BY-4.0)"`` → ``("xstest", "CC-BY-4.0")``; a bare name has no licence."""
    match = re.fullmatch(r"(.*?) \((.*)\)", entry.strip())
    return (match.group(1), match.group(2)) if match else (entry.strip(), "")
