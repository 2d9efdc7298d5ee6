"""Evaluations: not_unsafe / not_overrefuse per source, category and stack configuration.

A task is a list of :class:`Sample` (messages, policy category, expected behaviour, source,
dataset and licence). :class:`EvalRun` sends every sample through every stack configuration,
judges each final output (the packaged output judge for violations, the refusal detector for
refusals), and appends one record per (configuration, sample) to a versioned JSONL log that a
killed run resumes from. :func:`table_rows` turns records into the published-style rows, with
Wilson intervals and ``not_unsafe`` corrected for the judge's measured error rates.
:func:`load_jsonl_samples` and :func:`write_samples_jsonl` move samples in and out as JSON Lines,
with people's labels of recorded answers (:data:`HUMAN_LABELS`) as ground truth.
"""

from safestack.evals._evidence import (
    REPORT_LOG_VERSION,
    EvidenceKind,
    RunEvidence,
    load_evidence,
    write_report_log,
)
from safestack.evals._jsonl import load_jsonl_samples, write_samples_jsonl
from safestack.evals._run import (
    LOG_VERSION,
    EvalRun,
    judge_error_rates,
    logged_results,
    read_log,
    rows_from_log,
    rows_from_records,
)
from safestack.evals._sample import HUMAN_LABELS, Dataset, Expected, Sample, SampleSource
from safestack.evals._scorers import JudgeErrorRates, Wilson, corrected_rate, table_rows, wilson

__all__ = [
    "HUMAN_LABELS",
    "LOG_VERSION",
    "REPORT_LOG_VERSION",
    "Dataset",
    "EvalRun",
    "EvidenceKind",
    "Expected",
    "JudgeErrorRates",
    "RunEvidence",
    "Sample",
    "SampleSource",
    "Wilson",
    "corrected_rate",
    "judge_error_rates",
    "load_evidence",
    "load_jsonl_samples",
    "logged_results",
    "read_log",
    "rows_from_log",
    "rows_from_records",
    "table_rows",
    "wilson",
    "write_report_log",
    "write_samples_jsonl",
]
