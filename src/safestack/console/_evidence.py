"""The evidence browser: eval runs, their tables and transcripts, the scorecard, the system card.

Everything here is read from the evidence dir (``console.evidence_dir``), the folder of logs
that ``safestack eval run --log-dir`` and the report commands write; nothing is stored in the
database. The pages compute what the command line computes, with the same functions
(:func:`~safestack.evals.rows_from_records`, :func:`~safestack.scorecard.assess`,
:class:`~safestack.cards.SystemCard`), so a number in the browser is the number in the report.

The folder is operator-controlled but not trusted to be tidy: a file that is not a safestack
log is listed as skipped with its reason, never an error page, and a run id in a URL must name a
log that the folder listing contains (no path is ever built from what the URL says alone).

Logs are re-read only when they change (cached by path, modification time and size), since a
run being written grows under the reader.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from safestack.console._auth import ConsoleError, ConsoleUser, gateway_of, require
from safestack.console._campaigns import SAMPLES_SUFFIX
from safestack.console._pages import SECURITY_HEADERS, render
from safestack.errors import DataError
from safestack.evals import RunEvidence, load_evidence, logged_results, read_log, rows_from_records

__all__ = ["CARD_HEADERS", "router"]

router = APIRouter()

Reader = Annotated[ConsoleUser, Depends(require("admin", "reviewer"))]

#: A system card is a whole HTML document from outside the console's templates: served with a
#: policy of its own whose ``sandbox`` puts it in a unique origin (no script, no cookies, no
#: same-origin requests), so a hostile card cannot act as the signed-in person.
CARD_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
    ),
}

PAGE_SIZE = 50
OUTCOMES = ("all", "unsafe", "safe", "refused", "complied", "excluded")
_OUTCOME_LABELS = {
    "all": "all",
    "unsafe": "unsafe",
    "safe": "safe",
    "refused": "refused",
    "complied": "complied",
    "excluded": "excluded / unscored",
}
#: The filter value of records without a category (``should_comply`` samples).
NO_CATEGORY = "(none)"
_RECORD_FIELDS = ("config", "sample_id", "source", "expected")
_FILL_COMMAND = "safestack eval run manual_redteam --log-dir {where}"


# -- reading the folder -------------------------------------------------------------------------


@dataclass(frozen=True)
class SafetyLog:
    """A safety run log as it is now: possibly unfinished, with its table rows if it has any."""

    header: dict[str, Any]
    records: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    done: int
    expected: int
    usable_samples: frozenset[str]
    """Sample ids every configuration has a scored result for: those the tables count."""

    @property
    def finished(self) -> bool:
        return self.done >= self.expected


@dataclass(frozen=True)
class LogFile:
    """One log in the evidence dir, as the runs list shows it."""

    run_id: str
    name: str
    path: Path
    kind: str
    task: str
    configs: list[str]
    created: str
    done: int | None = None
    expected: int | None = None

    @property
    def incomplete(self) -> bool:
        return self.done is not None and self.expected is not None and self.done < self.expected


@dataclass
class Folder:
    """What the evidence dir holds: the logs (newest first) and the files that are not logs."""

    where: Path
    exists: bool
    logs: list[LogFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def log(self, run_id: str) -> LogFile:
        """The log ``run_id`` names; a 404 for anything that is not a listed log file."""
        if (
            not run_id
            or run_id.startswith(".")
            or ".." in run_id
            or any(c in run_id for c in "/\\\0")
        ):
            raise ConsoleError(404, "no such run in the evidence dir")
        for log in self.logs:
            if log.run_id == run_id:
                return log
        raise ConsoleError(404, f"no run {run_id!r} in the evidence dir")


def _stamp(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def _check_records(path: Path, records: list[dict[str, Any]]) -> None:
    for number, record in enumerate(records, 1):
        missing = [name for name in _RECORD_FIELDS if not isinstance(record.get(name), str)]
        if missing:
            raise DataError(f"{path}: sample record {number} lacks {', '.join(missing)}")


@functools.lru_cache(maxsize=32)
def _safety_log(path: str, mtime_ns: int, size: int) -> SafetyLog:
    """A safety run log, read and tabulated (the stamp arguments make a changed file re-read)."""
    header, records = read_log(path)
    if not isinstance(header.get("configs"), list) or not header["configs"]:
        raise DataError(f"{path}: the header names no configurations")
    _check_records(Path(path), records)
    configs = set(header["configs"])
    usable: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if record.get("unsafe") is not None or record.get("refused") is not None:
            usable[record["sample_id"]].add(record["config"])
    done, expected = logged_results(header, records)
    return SafetyLog(
        header=header,
        records=records,
        rows=rows_from_records(header, records) if records else [],
        done=done,
        expected=expected,
        usable_samples=frozenset(s for s, seen in usable.items() if seen >= configs),
    )


@functools.lru_cache(maxsize=32)
def _finished_evidence(path: str, mtime_ns: int, size: int) -> RunEvidence:
    """A log as the scorecard and the card use it (``load_evidence``'s checks included)."""
    (run,) = load_evidence([path])
    return run


def _created_of(path: Path, value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")


def _log_file(path: Path) -> LogFile:
    stamp = _stamp(path)
    if path.suffix == ".jsonl":
        log = _safety_log(*stamp)
        header = log.header
        return LogFile(
            run_id=path.stem,
            name=path.name,
            path=path,
            kind="safety",
            task=str(header.get("task", "–")),
            configs=[str(c) for c in header["configs"]],
            created=_created_of(path, header.get("created")),
            done=log.done,
            expected=log.expected,
        )
    run = _finished_evidence(*stamp)
    return LogFile(
        run_id=path.stem,
        name=path.name,
        path=path,
        kind=run.kind,
        task=run.task,
        configs=list(run.configs),
        created=run.created,
    )


def _reason(exc: Exception, path: Path) -> str:
    # DataError messages start with the path; the page names the file already.
    text = str(exc).removeprefix(f"{path}: ").removeprefix(f"{path}")
    return text.lstrip(": ") or type(exc).__name__


def scan(where: Path) -> Folder:
    """Every log in ``where``; anything else is skipped with a reason (blocking: a thread)."""
    folder = Folder(where=where, exists=where.is_dir())
    if not folder.exists:
        return folder
    for path in sorted(where.iterdir()):
        if path.name.startswith("."):
            continue  # hidden files: a report being written (write_report_log's temp file)
        if path.name.endswith(SAMPLES_SUFFIX):
            continue  # a campaign re-run's input, kept beside its log
        if path.is_dir():
            folder.skipped.append((path.name, "a folder, not a run log"))
            continue
        if path.suffix not in (".jsonl", ".json"):
            folder.skipped.append((path.name, "not a run log (.jsonl or .json)"))
            continue
        try:
            folder.logs.append(_log_file(path))
        except (DataError, OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            folder.skipped.append((path.name, _reason(exc, path)))
    seen: set[str] = set()
    for log in list(folder.logs):  # a.jsonl and a.json: one run id, so only the first is usable
        if log.run_id in seen:
            folder.logs.remove(log)
            folder.skipped.append((log.name, f"another log has the run id {log.run_id!r}"))
        seen.add(log.run_id)
    folder.logs.sort(key=lambda log: (log.created, log.name), reverse=True)
    return folder


def _evidence(folder: Folder) -> tuple[list[RunEvidence], list[tuple[str, str]]]:
    """The finished runs a decision may rest on, and the logs left out with why."""
    runs: list[RunEvidence] = []
    left_out: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for log in sorted(folder.logs, key=lambda log: log.name):
        try:
            run = _finished_evidence(*_stamp(log.path))
        except (DataError, OSError, ValueError) as exc:
            left_out.append((log.name, _reason(exc, log.path)))
            continue
        if run.run_id in seen:
            left_out.append((log.name, f"run {run.run_id!r} is also in {seen[run.run_id]}"))
            continue
        seen[run.run_id] = log.name
        runs.append(run)
    return runs, left_out


def _folder_of(request: Request) -> Path:
    return Path(gateway_of(request).config.console.evidence_dir)


# -- how numbers and records are shown ----------------------------------------------------------


def _interval(row: dict[str, Any], metric: str) -> str:
    """``0.950 (0.900–0.980)``: the published layout's cell (``–`` when nothing was measured)."""
    value = row.get(metric)
    if value is None:
        return "–"
    return f"{value:.3f} ({row[f'{metric}_low']:.3f}–{row[f'{metric}_high']:.3f})"


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def outcome_of(record: dict[str, Any]) -> str:
    """``unsafe`` / ``safe`` (should_refuse), ``refused`` / ``complied`` (should_comply), or
    ``unscored`` when the judge had nothing to judge (unanswered, error, invalid)."""
    if record.get("unsafe") is not None:
        return "unsafe" if record["unsafe"] else "safe"
    if record.get("refused") is not None:
        return "refused" if record["refused"] else "complied"
    return "unscored"


def _matches(record: dict[str, Any], outcome: str, usable: frozenset[str]) -> bool:
    if outcome == "all":
        return True
    if outcome == "excluded":
        return record["sample_id"] not in usable
    return outcome_of(record) == outcome


def _category_value(record: dict[str, Any]) -> str:
    category = record.get("category")
    return category if isinstance(category, str) and category else NO_CATEGORY


def _view(record: dict[str, Any], usable: frozenset[str]) -> dict[str, Any]:
    """A record as the transcript table shows it: everything as text, nothing as markup."""
    outcome = outcome_of(record)
    excluded = record["sample_id"] not in usable
    if outcome == "unscored":
        outcome = f"unscored ({record.get('status') or 'no status'})"
    layer = record.get("layer")
    return {
        "sample_id": record["sample_id"],
        "sample_path": quote(record["sample_id"], safe=""),
        "config": record["config"],
        "source": record["source"],
        "category": record.get("category") or "–",
        "expected": record["expected"],
        "outcome": outcome,
        "excluded": excluded,
        "judged_by": record.get("judged_by") or "–",
        "status": record.get("status") or "–",
        "blocked": f"blocked at {layer}" if record.get("blocked") and layer else "–",
        "layer": layer or "–",
        "decision_categories": ", ".join(record.get("decision_categories") or []) or "–",
        "judge_p_harm": _number(record.get("judge_p_harm")),
        "refusal_label": record.get("refusal_label") or "–",
        "error": record.get("error"),
        "prompt": record.get("prompt"),
        "prompt_truncated": bool(record.get("prompt_truncated")),
        "answer": record.get("answer"),
        "answer_truncated": bool(record.get("answer_truncated")),
    }


def _tables(rows: list[dict[str, Any]], configs: Sequence[str]) -> list[dict[str, Any]]:
    """Per source: the overall rows (one per configuration), then not_unsafe per category."""
    out = []
    for source in sorted({r["source"] for r in rows}):
        overall = [r for r in rows if r["source"] == source and r["category"] == "overall"]
        categories = [r for r in rows if r["source"] == source and r["category"] != "overall"]
        by_category: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for row in categories:
            by_category[row["category"]][row["config"]] = row
        out.append(
            {
                "source": source,
                "overall": [
                    {
                        "config": r["config"],
                        "not_unsafe": _interval(r, "not_unsafe"),
                        "corrected": _number(r.get("not_unsafe_corrected")),
                        "not_overrefuse": _interval(r, "not_overrefuse"),
                        "n": r["n"],
                        "excluded": r["n_excluded"],
                        "seen": r["n_seen_in_training"],
                    }
                    for r in overall
                ],
                "categories": [
                    {
                        "category": category,
                        "cells": [
                            _category_cell(by_category[category].get(config)) for config in configs
                        ],
                    }
                    for category in sorted(by_category)
                ],
            }
        )
    return out


def _category_cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    cells = []
    if row.get("not_unsafe") is not None:
        cells.append(f"not_unsafe {_interval(row, 'not_unsafe')}, n={row['n_should_refuse']}")
    if row.get("not_overrefuse") is not None:
        cells.append(
            f"not_overrefuse {_interval(row, 'not_overrefuse')}, n={row['n_should_comply']}"
        )
    return "; ".join(cells) or "–"


def _query(**params: str | int) -> str:
    return urlencode({k: v for k, v in params.items() if v not in ("", "all", 1)})


# -- pages ---------------------------------------------------------------------------------------


@router.get("/evidence", response_class=HTMLResponse)
async def runs(request: Request, user: Reader) -> HTMLResponse:
    where = _folder_of(request)
    folder = await run_in_threadpool(scan, where)
    return render(
        request,
        "evidence.html.j2",
        user=user,
        title="Evidence",
        folder=folder,
        fill_command=_FILL_COMMAND.format(where=where),
    )


@router.get("/evidence/runs/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request,
    run_id: str,
    user: Reader,
    category: str = "",
    config: str = "",
    outcome: str = "all",
    source: str = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    if outcome not in OUTCOMES:
        raise ConsoleError(400, f"unknown outcome {outcome!r}; allowed: {', '.join(OUTCOMES)}")
    folder = await run_in_threadpool(scan, _folder_of(request))
    log_file = folder.log(run_id)
    if log_file.kind != "safety":
        run = await run_in_threadpool(_finished_evidence, *_stamp(log_file.path))
        columns = list(dict.fromkeys(key for row in run.rows for key in row))
        return render(
            request,
            "evidence_report.html.j2",
            user=user,
            title=f"Report {run_id}",
            log=log_file,
            run=run,
            columns=columns,
            rows=[[_number(row.get(c)) for c in columns] for row in run.rows],
        )
    log = await run_in_threadpool(_safety_log, *_stamp(log_file.path))
    chosen = [
        r
        for r in log.records
        if (not category or _category_value(r) == category)
        and (not config or r["config"] == config)
        and (not source or r["source"] == source)
        and _matches(r, outcome, log.usable_samples)
    ]
    pages = max(1, math.ceil(len(chosen) / PAGE_SIZE))
    shown = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    filters = {"category": category, "config": config, "outcome": outcome, "source": source}
    return render(
        request,
        "evidence_run.html.j2",
        user=user,
        title=f"Run {run_id}",
        log=log_file,
        header=log.header,
        finished=log.finished,
        done=log.done,
        expected=log.expected,
        tables=_tables(log.rows, log_file.configs),
        configs=log_file.configs,
        filters=filters,
        options={
            "category": sorted({_category_value(r) for r in log.records}),
            "config": list(dict.fromkeys([*log_file.configs, *(r["config"] for r in log.records)])),
            "source": sorted({r["source"] for r in log.records}),
            "outcome": [(value, _OUTCOME_LABELS[value]) for value in OUTCOMES],
        },
        records=[_view(r, log.usable_samples) for r in shown],
        matching=len(chosen),
        page=page,
        pages=pages,
        previous_query=_query(**filters, page=page - 1) if page > 1 else None,
        next_query=_query(**filters, page=page + 1) if page < pages else None,
    )


@router.get("/evidence/runs/{run_id}/samples/{sample_id:path}", response_class=HTMLResponse)
async def sample_page(request: Request, run_id: str, sample_id: str, user: Reader) -> HTMLResponse:
    folder = await run_in_threadpool(scan, _folder_of(request))
    log_file = folder.log(run_id)
    if log_file.kind != "safety":
        raise ConsoleError(404, f"{run_id!r} is a report; it has no per-sample records")
    log = await run_in_threadpool(_safety_log, *_stamp(log_file.path))
    records = {r["config"]: r for r in log.records if r["sample_id"] == sample_id}
    if not records:
        raise ConsoleError(404, f"run {run_id!r} has no sample {sample_id!r}")
    views = [_view(records[c], log.usable_samples) for c in log_file.configs if c in records]
    views += [_view(r, log.usable_samples) for c, r in records.items() if c not in log_file.configs]
    prompts = {v["prompt"] for v in views}
    return render(
        request,
        "evidence_sample.html.j2",
        user=user,
        title=f"Sample {sample_id}",
        log=log_file,
        sample_id=sample_id,
        records=views,
        missing=[c for c in log_file.configs if c not in records],
        first=views[0],
        same_prompt=len(prompts) == 1,
    )


def _assessed(where: Path) -> dict[str, Any]:
    """The default scorecard on the folder's finished runs, as ``safestack scorecard gate``
    scores it (blocking: a thread)."""
    from safestack.cli.scorecard import scorecard_from_option
    from safestack.scorecard import assess

    folder = scan(where)
    evidence, left_out = _evidence(folder)
    card, card_file = scorecard_from_option(None)
    result = None
    error = None
    try:
        result = assess(card, evidence, scorecard_file=card_file)
    except DataError as exc:
        error = str(exc)
    return {
        "folder": folder,
        "evidence": evidence,
        "used": [(Path(run.path).stem, run) for run in evidence],
        "left_out": left_out,
        "result": result,
        "error": error,
        "scorecard_file": card_file,
    }


_DECISIONS = {
    "deploy": (
        "Deploy",
        "every post-mitigation level is Medium or below: the stack may be deployed.",
    ),
    "develop_only": (
        "Develop only — do not deploy",
        "a post-mitigation level is High: develop further, do not deploy.",
    ),
    "stop": (
        "Stop — neither deploy nor develop further",
        "a post-mitigation level is Critical (missing evidence counts as Critical).",
    ),
}


@router.get("/evidence/scorecard", response_class=HTMLResponse)
async def scorecard_page(request: Request, user: Reader) -> HTMLResponse:
    assessed = await run_in_threadpool(_assessed, _folder_of(request))
    result = assessed["result"]
    decision = _DECISIONS[result.decision.value] if result is not None else None
    return render(
        request,
        "evidence_scorecard.html.j2",
        user=user,
        title="Scorecard",
        decision=decision,
        fill_command=_FILL_COMMAND.format(where=assessed["folder"].where),
        **assessed,
    )


@functools.lru_cache(maxsize=2)
def _card_html(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """The system card of these logs (rendering draws plots: seconds, so it is kept)."""
    from safestack.cards import SystemCard
    from safestack.cli.scorecard import scorecard_from_option
    from safestack.scorecard import assess

    runs = [_finished_evidence(*stamp) for stamp in stamps]
    card, card_file = scorecard_from_option(None)
    result = assess(card, runs, scorecard_file=card_file)
    return SystemCard.from_evidence(runs, result).html()


def _system_card(configured: str | None, where: Path) -> tuple[bytes | None, dict[str, Any]]:
    """The card's HTML, or what the help page needs to say why there is none."""
    if configured and Path(configured).is_file():
        return Path(configured).read_bytes(), {}
    folder = scan(where)
    evidence, _ = _evidence(folder)
    problem = None
    if evidence:
        try:
            stamps = tuple(_stamp(Path(run.path)) for run in evidence)
            return _card_html(stamps).encode("utf-8"), {}
        except DataError as exc:
            problem = str(exc)
    return None, {"folder": folder, "problem": problem}


@router.get("/evidence/system-card", response_model=None)
async def system_card(request: Request, user: Reader) -> Response:
    """The configured card file, else a card rendered from the evidence dir, else how to get one.

    Either card is served as its own document under :data:`CARD_HEADERS` (sandboxed).
    """
    gateway = gateway_of(request)
    configured = gateway.config.console.system_card
    where = _folder_of(request)
    body, why = await run_in_threadpool(_system_card, configured, where)
    if body is not None:
        return Response(body, media_type="text/html; charset=utf-8", headers=CARD_HEADERS)
    return render(
        request,
        "evidence_card_missing.html.j2",
        user=user,
        title="System card",
        configured=configured,
        where=where,
        **why,
    )
