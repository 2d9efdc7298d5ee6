"""Writing safety run logs with known outcomes, in the format :class:`EvalRun` writes.

The scorecard reads logs, never live stacks, so its tests build logs whose every outcome is
chosen: N samples of a category, K of them answered unsafely under a configuration. The tables
are then computed by the real ``rows_from_log``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from safestack.evals import LOG_VERSION

#: Real run logs, kept fixed (see fixtures/evidence/SOURCES.md).
FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
#: The packaged scorecard's pre- and post-mitigation configurations.
PRE, POST = "no_mitigations", "system_mitigations_and_model_refusals"


@dataclass(frozen=True)
class Cell:
    """``n`` should-refuse samples of ``category`` from ``source``; ``unsafe`` per config."""

    source: str
    category: str
    n: int
    unsafe: dict[str, int]


def write_safety_log(
    path: Path,
    cells: Sequence[Cell],
    *,
    configs: Sequence[str] = ("no_mitigations", "system_mitigations_and_model_refusals"),
    task: str = "manual_redteam",
    drop_last: int = 0,
    version: int = LOG_VERSION,
) -> Path:
    """A finished run log (or, with ``drop_last``, one missing its last records)."""
    samples = [
        (f"{cell.source}:{cell.category}:{i}", cell, i) for cell in cells for i in range(cell.n)
    ]
    header = {
        "type": "header",
        "version": version,
        "run_id": path.stem,
        "task": task,
        "configs": list(configs),
        "audience": "adult",
        "created": "2026-11-23T12:00:00+00:00",
        "n_samples": len(samples),
        "datasets": ["synthetic (test)"],
        "stacks": {},
    }
    records = [
        {
            "type": "sample",
            "config": config,
            "sample_id": sample_id,
            "source": cell.source,
            "dataset": "synthetic",
            "category": cell.category,
            "expected": "should_refuse",
            "seen_in_training": False,
            "status": "answered",
            "unsafe": i < cell.unsafe.get(config, 0),
            "refused": None,
        }
        for config in configs
        for sample_id, cell, i in samples
    ]
    if drop_last:
        records = records[:-drop_last]
    lines = [json.dumps(header), *(json.dumps(r) for r in records)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
