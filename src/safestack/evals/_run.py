"""An evaluation run: samples × stack configurations, judged, logged, resumable.

The log is JSON Lines: a header (format version, task, configurations, and the specs of the
stacks' components, the judge and the refusal detector with their measured agreement with human
labels), then one record per (configuration, sample), appended and flushed as each finishes.
A run killed at any point is resumed by reading its log: records already there are kept, a torn
last line is discarded, and only the missing (configuration, sample) pairs are run — nothing is
lost and nothing is scored twice. Tables are computed from the log alone.

Each record also keeps the sample's transcript (the last user message as ``prompt`` and what the
stack returned as ``answer``, each cut at :data:`TRANSCRIPT_CHARS` with ``*_truncated`` set when
cut), so per-sample evidence is browsable from the log. Records written before these fields
existed have neither; they load and tabulate the same.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safestack.classify import Classifier, Exchange, create_classifier
from safestack.errors import DataError, InputError
from safestack.evals._replay import SampleReplayModel, recorded_response
from safestack.evals._sample import HUMAN_LABELS, Sample
from safestack.evals._scorers import JudgeErrorRates, Scored, table_rows
from safestack.models import ModelAdapter
from safestack.policy import Audience
from safestack.stack import PRESETS, SafetyStack

__all__ = [
    "LOG_VERSION",
    "TRANSCRIPT_CHARS",
    "EvalRun",
    "judge_error_rates",
    "logged_results",
    "read_log",
    "rows_from_log",
    "rows_from_records",
]

#: Bumped when the record layout changes; readers refuse logs they do not understand.
LOG_VERSION = 1
#: How much of a sample's prompt and answer a record keeps (a log is evidence, not an archive).
TRANSCRIPT_CHARS = 4000


def judge_error_rates() -> tuple[JudgeErrorRates, dict[str, Any]]:
    """The packaged output judge's and refusal detector's agreement with human labels."""
    from safestack.classify.embedded import HEADS_DIR

    metrics = json.loads((HEADS_DIR / "metrics.json").read_text())
    out = metrics["output_heldout"]["safestack"]
    refusal = metrics["refusal_heldout"]["safestack"]
    rates = JudgeErrorRates(
        sensitivity=float(out["recall"]),
        specificity=1.0 - float(out["fpr"]),
        measured_on=str(metrics["output_heldout"]["split"]),
    )
    agreement = {
        "judge": {"name": "embedded-output", "measured_on": rates.measured_on, **out},
        "refusal_detector": {
            "name": "refusal",
            "measured_on": metrics["refusal_heldout"]["split"],
            "accuracy_refused": refusal["accuracy_refused"],
            "refusal_f1": refusal["refusal_f1"],
        },
    }
    return rates, agreement


def read_log(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the complete records of a run log (a torn last line is ignored)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such run log") from None
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the run was killed while writing this line
            raise DataError(f"{path}:{number}: not JSON; the log is damaged") from None
        if obj.get("type") == "header":
            header = obj
        elif obj.get("type") == "sample":
            records.append(obj)
    if header is None:
        raise DataError(f"{path}: no header line; not a safestack run log")
    if header.get("version") != LOG_VERSION:
        raise DataError(
            f"{path}: log format version {header.get('version')!r}; this safestack reads "
            f"version {LOG_VERSION}"
        )
    return header, records


def _stack_for(config: str, model: ModelAdapter | None = None) -> SafetyStack:
    if config in PRESETS or Path(config).is_file():
        return SafetyStack.from_config(config, model=model)
    known = ", ".join(PRESETS)
    raise InputError(f"unknown configuration {config!r}: not a preset ({known}) nor a stack file")


@dataclass
class EvalRun:
    """Run ``samples`` through every configuration, judge each final output, log everything.

    ``configs`` are preset names or stack files. ``concurrency`` bounds the requests in flight
    (the stacks are thread-safe; a live model endpoint is where concurrency pays). Results do not
    depend on it: every sample is judged on its own and tables are order-free.

    Each record says who decided its outcome in ``judged_by``: ``stack`` (the input or output
    layer stopped the answer), ``human`` (a replayed response passed through unchanged and a
    person labelled it, see :func:`_human_label`) or ``classifier`` (the judge and the refusal
    detector). Re-running a campaign's labelled set against a later configuration therefore
    scores each conversation by the red teamer's verdict until the stack changes what the user
    gets.
    """

    task: str
    samples: Sequence[Sample]
    configs: Sequence[str]
    log_path: Path
    audience: Audience = Audience.ADULT
    concurrency: int = 4
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for sample in self.samples:
            for label in HUMAN_LABELS:
                value = sample.metadata.get(label)
                if value is not None and not isinstance(value, bool):
                    raise DataError(
                        f"sample {sample.id!r}: metadata {label!r} must be true or false, "
                        f"got {value!r:.60}"
                    )
        ids = [s.id for s in self.samples]
        if not ids:
            raise DataError(f"task {self.task!r} has no samples")
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise DataError(f"task {self.task!r}: duplicate sample ids {dupes}")
        if self.concurrency < 1:
            raise InputError(f"concurrency must be >= 1, got {self.concurrency}")

    # -- the log -----------------------------------------------------------------------------

    def _header(self, stacks: dict[str, SafetyStack]) -> dict[str, Any]:
        _, agreement = judge_error_rates()
        return {
            "type": "header",
            "version": LOG_VERSION,
            "run_id": self.log_path.stem,
            "task": self.task,
            "configs": list(self.configs),
            "audience": self.audience.value,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "n_samples": len(self.samples),
            "datasets": sorted({f"{s.dataset} ({s.licence})" for s in self.samples}),
            "stacks": {name: _stack_spec(stack) for name, stack in stacks.items()},
            **agreement,
        }

    def pending(self) -> tuple[dict[str, Any] | None, set[tuple[str, str]]]:
        """The existing header (if resuming) and the (config, sample id) pairs already done."""
        if not self.log_path.exists():
            return None, set()
        header, records = read_log(self.log_path)
        if header["task"] != self.task or list(header["configs"]) != list(self.configs):
            raise InputError(
                f"{self.log_path} is a run of task {header['task']!r} with configurations "
                f"{header['configs']}; resume it with the same task and configurations"
            )
        ids = {s.id for s in self.samples}
        strangers = {r["sample_id"] for r in records} - ids
        if header.get("n_samples") != len(ids) or strangers:
            raise InputError(
                f"{self.log_path} is a run of {header.get('n_samples')} samples"
                + (f" (e.g. {sorted(strangers)[0]!r})" if strangers else "")
                + f", not of these {len(ids)}; resume it with the same --limit and --seed"
            )
        self._truncate_torn_line()
        return header, {(r["config"], r["sample_id"]) for r in records}

    def _truncate_torn_line(self) -> None:
        data = self.log_path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.log_path.open("r+b") as handle:
                handle.truncate(keep)

    # -- running -----------------------------------------------------------------------------

    def run(self, *, progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
        """Run what is missing from the log; returns the table rows of the whole run."""
        header, done = self.pending()
        stacks = {name: _stack_for(name) for name in self.configs}
        replaying = {
            name: _stack_for(name, model=SampleReplayModel())
            for name in self.configs
            if any(s.metadata.get("replay") for s in self.samples)
        }
        judge = create_classifier("embedded-output")
        detector = create_classifier("refusal")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        todo = [
            (config, sample)
            for config in self.configs
            for sample in self.samples
            if (config, sample.id) not in done
        ]
        total = len(self.configs) * len(self.samples)
        with self.log_path.open("a", encoding="utf-8") as log:
            if header is None:
                self._write(log, self._header(stacks))
            finished = total - len(todo)
            if progress:
                progress(finished, total)
            with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
                futures = {
                    pool.submit(
                        self._one,
                        (replaying if sample.metadata.get("replay") else stacks)[config],
                        config,
                        sample,
                        judge,
                        detector,
                    )
                    for config, sample in todo
                }
                for future in concurrent.futures.as_completed(futures):
                    self._write(log, future.result())
                    finished += 1
                    if progress:
                        progress(finished, total)
        return rows_from_log(self.log_path)

    def _write(self, log: Any, record: dict[str, Any]) -> None:
        with self._lock:
            log.write(json.dumps(record, ensure_ascii=False) + "\n")
            log.flush()  # in the OS's hands: a killed process loses nothing (fsync would guard
            # against a power cut too, at a few ms per record; the run resumes either way)

    def _one(
        self,
        stack: SafetyStack,
        config: str,
        sample: Sample,
        judge: Classifier,
        detector: Classifier,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "type": "sample",
            "config": config,
            "sample_id": sample.id,
            "source": sample.source,
            "dataset": sample.dataset,
            "category": sample.category,
            "expected": sample.expected,
            "seen_in_training": sample.seen_in_training,
        }
        if sample.metadata.get("method"):
            record["method"] = sample.metadata["method"]
        _keep_text(record, "prompt", _last_user_text(sample))
        replayed = bool(sample.metadata.get("replay"))
        token = recorded_response.set(sample.response if replayed else None)
        try:
            result = stack.run(sample.messages, audience=self.audience)
        except InputError as exc:
            return {
                **record,
                "status": "invalid",
                "error": str(exc),
                "unsafe": None,
                "refused": None,
            }
        finally:
            recorded_response.reset(token)
        _keep_text(record, "answer", result.answer)
        decision = result.decision
        record.update(
            status=decision.status,
            layer=decision.layer,
            blocked=decision.blocked,
            decision_categories=decision.categories,
            added_ms=decision.timings_ms.get("added"),
            error=decision.error,
        )
        if decision.status in ("unanswered", "error"):
            return {**record, "unsafe": None, "refused": None}
        stopped = decision.layer in ("input", "output")
        exchange = Exchange(sample.prompt, result.answer)
        if stopped:
            unsafe, p_harm = False, 0.0
        else:
            (verdict,) = judge.classify([exchange])
            unsafe, p_harm = verdict.flagged, max(verdict.scores.values(), default=0.0)
        (refusal,) = detector.classify([exchange])
        refused = stopped or refusal.flagged
        judged_by = "stack" if stopped else "classifier"
        label = _human_label(sample, decision.layer, result.answer) if replayed else None
        if label is not None:
            judged_by = "human"
            if sample.expected == "should_refuse":
                unsafe = label
            else:
                refused = label
        record.update(
            unsafe=unsafe if sample.expected == "should_refuse" else None,
            refused=refused if sample.expected == "should_comply" else None,
            judged_by=judged_by,
            judge_p_harm=round(p_harm, 4),
            refusal_label="stack" if stopped else refusal.label,
        )
        return record


def _human_label(sample: Sample, layer: str | None, answer: str) -> bool | None:
    """A person's verdict on what the user received, when it applies; else ``None``.

    It applies when the stack passed the sample's recorded response through unchanged: nothing
    stopped it (``layer`` is not ``input`` / ``output``) and the answer is that response, so the
    person judged exactly the text the user got. ``response_violates`` then decides ``unsafe``
    (``should_refuse`` samples), ``response_refused`` decides ``refused`` (``should_comply``).

    With ``layer == "model"`` the stack counted the response as the model's own refusal. The
    violation label still applies (the user saw that text), but refusals keep the stack's
    account, exactly as without labels: in a configuration that counts model refusals as a
    mitigation, a refusal is what its refusal check says, so its not_overrefuse measures the
    configuration as deployed and stays comparable across configurations on the same samples.
    """
    if layer in ("input", "output") or answer != sample.response:
        return None
    if sample.expected == "should_refuse":
        value = sample.metadata.get("response_violates")
    elif layer == "model":
        return None
    else:
        value = sample.metadata.get("response_refused")
    return value if isinstance(value, bool) else None


def _last_user_text(sample: Sample) -> str:
    # Samples built in code need not end with (or contain) a user message; the stack says so.
    return next((m.content for m in reversed(sample.messages) if m.role == "user"), "")


def _keep_text(record: dict[str, Any], name: str, text: str) -> None:
    record[name] = text[:TRANSCRIPT_CHARS]
    if len(text) > TRANSCRIPT_CHARS:
        record[f"{name}_truncated"] = True


def _stack_spec(stack: SafetyStack) -> dict[str, Any]:
    def spec(component: Any) -> Any:
        try:
            return component.spec.model_dump(mode="json")
        except Exception:
            return None

    out: dict[str, Any] = {
        "name": stack.name,
        "policy": f"{stack.policy.name}@{stack.policy.version}",
    }
    out["model"] = spec(stack.model)
    if stack.input_layer is not None:
        out["input"] = spec(stack.input_layer.classifier.get(Audience.ADULT))
    if stack.output_layer is not None:
        out["output"] = spec(stack.output_layer.classifier.get(Audience.ADULT))
    out["model_refusals"] = stack.model_refusals is not None
    return out


def _scored(records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> Iterator[Scored]:
    for r in records:
        if r.get("unsafe") is None and r.get("refused") is None:
            continue
        yield Scored(
            config=r["config"],
            source=r["source"],
            category=r.get("category"),
            expected=r["expected"],
            unsafe=r.get("unsafe"),
            refused=r.get("refused"),
        )


def logged_results(header: dict[str, Any], records: list[dict[str, Any]]) -> tuple[int, int]:
    """``(done, expected)``: the distinct (configuration, sample) results a log holds, and how
    many its header promises. A run with ``done < expected`` did not finish."""
    done = {(r.get("config"), r.get("sample_id")) for r in records}
    return len(done), int(header.get("n_samples", 0)) * len(header.get("configs", []))


def rows_from_log(path: str | Path) -> list[dict[str, Any]]:
    """The table rows of a run, from its log alone (see :func:`rows_from_records`)."""
    return rows_from_records(*read_log(path))


def rows_from_records(
    header: dict[str, Any], records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The table rows of a run's header and records, as :func:`read_log` returns them.

    Configurations are compared on the same samples: a sample counts only if every
    configuration of the run produced a usable result for it. A sample the recorded model cannot
    answer would otherwise count where the input layer blocked it (as not unsafe) and vanish
    where it did not, flattering the stack. Each row says how many samples were excluded.
    """
    configs = list(header["configs"])
    usable: dict[str, set[str]] = {}
    for r in records:
        if r.get("unsafe") is not None or r.get("refused") is not None:
            usable.setdefault(r["sample_id"], set()).add(r["config"])
    common = {sid for sid, seen in usable.items() if len(seen) == len(configs)}
    kept = [r for r in records if r["sample_id"] in common]
    excluded: dict[tuple[str, str], set[str]] = {}
    for r in records:
        if r["sample_id"] not in common:
            method = f"attack:{r['method']}" if r.get("method") else None
            for category in ("overall", r.get("category"), method):
                if category:
                    excluded.setdefault((r["source"], category), set()).add(r["sample_id"])
    rates, _ = judge_error_rates()
    rows = table_rows(_scored(kept), judge=rates)
    by_method = [{**r, "category": f"attack:{r['method']}"} for r in kept if r.get("method")]
    if by_method:  # jailbreak runs: one group per attack method as well
        rows += [
            row
            for row in table_rows(_scored(by_method), judge=rates)
            if row["category"] != "overall"
        ]
    seen: dict[tuple[str, str], set[str]] = {}
    for r in kept:
        if r.get("seen_in_training"):
            method = f"attack:{r['method']}" if r.get("method") else None
            for category in ("overall", r.get("category"), method):
                if category:
                    seen.setdefault((r["source"], category), set()).add(r["sample_id"])
    for row in rows:
        key = (row["source"], row["category"])
        row["n_excluded"] = len(excluded.get(key, set()))
        # Prompts the shipped prompt classifier was trained on: its numbers there are flattering.
        row["n_seen_in_training"] = len(seen.get(key, set()))
    return rows
