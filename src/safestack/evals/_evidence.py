"""Evidence: the finished run logs that decisions and reports are built from, and nothing else.

Two kinds of log exist:

* a **safety run** (``.jsonl``, written by :class:`~safestack.evals.EvalRun`): a header, then one
  record per (configuration, sample); its tables are computed by :func:`rows_from_log`;
* a **report** (``.json``, written by :func:`write_report_log`): the rows of a measurement that
  is computed in one go — classifier quality, per-group false-positive rates, TruthfulQA, BBQ.

:func:`load_evidence` reads either, and refuses anything a decision must not rest on: a log of
another format version, a damaged log, and a safety run that did not finish (fewer records than
configurations × samples). A scorecard or a system card built from evidence therefore never
silently uses half a run; every number they show carries the ``run_id`` it came from.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.errors import DataError

__all__ = [
    "REPORT_LOG_VERSION",
    "EvidenceKind",
    "RunEvidence",
    "load_evidence",
    "write_report_log",
]

#: Bumped when the report layout changes; readers refuse reports they do not understand.
REPORT_LOG_VERSION = 1

EvidenceKind = Literal["safety", "quality", "bias", "truthfulqa", "bbq"]
_REPORT_KINDS: tuple[EvidenceKind, ...] = ("quality", "bias", "truthfulqa", "bbq")


class RunEvidence(BaseModel):
    """One finished run, as its log records it: what ran, on what, and its table rows."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    path: str = Field(description="The log it was read from.")
    kind: EvidenceKind
    task: str
    configs: list[str] = Field(description="Stack configurations (empty for classifier reports).")
    created: str
    datasets: list[str] = Field(description="Datasets with their licences.")
    header: dict[str, Any] = Field(
        description="The log's header: component specs, judge agreement, audience."
    )
    rows: list[dict[str, Any]]
    datasets_by_source: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Safety runs: the datasets (with licences) behind each source's rows.",
    )


def write_report_log(
    log_dir: str | Path,
    kind: EvidenceKind,
    task: str,
    rows: Sequence[dict[str, Any]],
    *,
    configs: Iterable[str] = (),
    datasets: Iterable[str] = (),
    header: dict[str, Any] | None = None,
) -> Path:
    """Write a finished report atomically (a reader never sees half a file); returns its path."""
    if kind not in _REPORT_KINDS:
        raise DataError(f"unknown report kind {kind!r}; allowed: {', '.join(_REPORT_KINDS)}")
    now = dt.datetime.now(dt.UTC)
    # The task names the file: anything that is not safe in a file name becomes "-".
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "-", task).strip(".-") or "report"
    run_id = f"{stem}-{now.strftime('%Y%m%dT%H%M%S%f')}"
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "type": "report",
        "version": REPORT_LOG_VERSION,
        "kind": kind,
        "run_id": run_id,
        "task": task,
        "configs": list(configs),
        "created": now.isoformat(timespec="seconds"),
        "datasets": sorted(set(datasets)),
        "finished": True,
        **(header or {}),
        "rows": list(rows),
    }
    path = log_dir / f"{run_id}.json"
    handle, tmp = tempfile.mkstemp(dir=log_dir, prefix=f".{run_id}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, ensure_ascii=False, indent=1)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a log is a shareable record
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _load_report(path: Path) -> RunEvidence:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such run log") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not JSON ({exc}); the report is damaged") from None
    if not isinstance(document, dict) or document.get("type") != "report":
        raise DataError(
            f"{path}: field 'type': not a safestack report log (written by an older safestack "
            "or by something else; re-run the evaluation to get a versioned log)"
        )
    if document.get("version") != REPORT_LOG_VERSION:
        raise DataError(
            f"{path}: field 'version': report format {document.get('version')!r}; this "
            f"safestack reads version {REPORT_LOG_VERSION}"
        )
    if document.get("finished") is not True:
        raise DataError(f"{path}: field 'finished': the run did not finish")
    for name, kind in (("run_id", str), ("task", str), ("created", str), ("rows", list)):
        if not isinstance(document.get(name), kind):
            raise DataError(f"{path}: field {name!r}: missing or not a {kind.__name__}")
    if document.get("kind") not in _REPORT_KINDS:
        raise DataError(
            f"{path}: field 'kind': {document.get('kind')!r} is not one of "
            f"{', '.join(_REPORT_KINDS)}"
        )
    header = {k: v for k, v in document.items() if k != "rows"}
    return RunEvidence(
        run_id=document["run_id"],
        path=str(path),
        kind=document["kind"],
        task=document["task"],
        configs=list(document.get("configs") or []),
        created=document["created"],
        datasets=list(document.get("datasets") or []),
        header=header,
        rows=document["rows"],
    )


def _load_safety_run(path: Path) -> RunEvidence:
    from safestack.evals._run import logged_results, read_log, rows_from_records

    header, records = read_log(path)
    for name in ("run_id", "task", "configs", "n_samples", "created"):
        if name not in header:
            raise DataError(f"{path}: header field {name!r} is missing; the log is damaged")
    done, expected = logged_results(header, records)
    if done < expected:
        raise DataError(
            f"{path}: the run did not finish: {done} of {expected} (configuration, sample) "
            "results are logged; finish it with `safestack eval run … --resume` (same tasks and "
            "configurations) before using it as evidence"
        )
    datasets = list(header.get("datasets") or [])
    return RunEvidence(
        run_id=str(header["run_id"]),
        path=str(path),
        kind="safety",
        task=str(header["task"]),
        configs=list(header["configs"]),
        created=str(header["created"]),
        datasets=datasets,
        header=header,
        rows=rows_from_records(header, records),
        datasets_by_source=_datasets_by_source(datasets, records),
    )


def _datasets_by_source(datasets: list[str], records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per source, the header's ``"name (licence)"`` entries of the datasets its records used."""
    entries: dict[str, list[str]] = {}
    for entry in datasets:
        entries.setdefault(entry.rsplit(" (", 1)[0].strip(), []).append(entry)
    names: dict[str, set[str]] = {}
    for record in records:
        if record.get("source") and record.get("dataset"):
            names.setdefault(str(record["source"]), set()).add(str(record["dataset"]))
    return {
        source: [entry for name in sorted(found) for entry in entries.get(name, [name])]
        for source, found in sorted(names.items())
    }


def load_evidence(paths: Iterable[str | Path]) -> list[RunEvidence]:
    """Every run in ``paths`` (files, or folders of logs), checked; duplicates are an error.

    A folder contributes its ``*.jsonl`` and ``*.json`` logs. Passing the same run twice (by
    ``run_id``) is refused: a number counted twice is a number nobody can trace.
    """
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted([*path.glob("*.jsonl"), *path.glob("*.json")])
            if not found:
                raise DataError(f"{path}: no run logs (*.jsonl, *.json) in this folder")
            files += found
        else:
            files.append(path)
    if not files:
        raise DataError("no run logs given")
    runs: list[RunEvidence] = []
    seen: dict[str, str] = {}
    for path in files:
        if not path.exists():
            raise DataError(f"{path}: no such run log")
        run = _load_safety_run(path) if path.suffix == ".jsonl" else _load_report(path)
        if run.run_id in seen:
            raise DataError(f"{path}: run {run.run_id!r} was given twice (also {seen[run.run_id]})")
        seen[run.run_id] = str(path)
        runs.append(run)
    return runs
