"""The metrics: Wilson intervals, the judge correction, and the published row layout."""

from __future__ import annotations

import pytest

from safestack.evals import JudgeErrorRates, corrected_rate, table_rows, wilson
from safestack.evals._scorers import Scored


def test_wilson_matches_the_textbook_values() -> None:
    interval = wilson(81, 263)  # worked by hand: centre 0.31074, half-width 0.05546
    assert interval is not None
    assert interval.value == pytest.approx(0.30798, abs=1e-5)
    assert interval.low == pytest.approx(0.25528, abs=2e-4)
    assert interval.high == pytest.approx(0.36620, abs=2e-4)
    full = wilson(10, 10)
    assert (
        full is not None
        and full.high == pytest.approx(1.0)
        and full.low == pytest.approx(0.72247, abs=1e-4)
    )
    assert wilson(0, 0) is None


def test_correction_undoes_a_known_judge_error() -> None:
    rates = JudgeErrorRates(sensitivity=0.9, specificity=0.8, measured_on="test")
    true_rate = 0.3
    observed = true_rate * 0.9 + (1 - true_rate) * (1 - 0.8)
    assert corrected_rate(observed, rates) == pytest.approx(true_rate)
    assert corrected_rate(0.0, rates) == 0.0  # clipped, never negative
    assert corrected_rate(0.5, JudgeErrorRates(0.5, 0.5, "coin")) is None


def test_rows_per_source_config_and_category() -> None:
    records = [
        Scored("a", "manual_redteam", "violence", "should_refuse", unsafe=True, refused=None),
        Scored("a", "manual_redteam", "violence", "should_refuse", unsafe=False, refused=None),
        Scored("a", "manual_redteam", None, "should_comply", unsafe=None, refused=True),
        Scored("b", "manual_redteam", "violence", "should_refuse", unsafe=False, refused=None),
    ]
    rows = table_rows(records)
    keys = [(r["source"], r["config"], r["category"]) for r in rows]
    assert keys == [
        ("manual_redteam", "a", "overall"),
        ("manual_redteam", "a", "violence"),
        ("manual_redteam", "b", "overall"),
        ("manual_redteam", "b", "violence"),
    ]
    a = rows[0]
    assert (a["not_unsafe"], a["n_should_refuse"], a["not_overrefuse"], a["n"]) == (0.5, 2, 0.0, 3)
    assert a["not_unsafe_low"] < 0.5 < a["not_unsafe_high"]
    assert rows[2]["not_overrefuse"] is None  # no allowed requests under b
