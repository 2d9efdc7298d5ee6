"""The scorecard file: the packaged one is valid, and every mistake is named with its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from safestack.errors import ConfigError
from safestack.policy import default_policy
from safestack.scorecard import (
    FRONTIER_CATEGORIES,
    RiskLevel,
    default_scorecard,
    load_scorecard,
)

BANDS = """\
      thresholds:
        - {level: low, min: 0.95, rationale: fine}
        - {level: medium, min: 0.85, max: 0.95, rationale: watch}
        - {level: high, min: 0.6, max: 0.85, rationale: develop}
        - {level: critical, max: 0.6, rationale: stop}
"""


def _file(tmp_path: Path, categories: str, *, head: str = "") -> Path:
    path = tmp_path / "scorecard.yaml"
    path.write_text(f"name: test\n{head}categories:\n{categories}", encoding="utf-8")
    return path


def _violence(bands: str = BANDS) -> str:
    return (
        "  - id: violence\n    framework: content_policy\n    evidence:\n"
        "      - source: manual_redteam\n        category: violence\n"
        + textwrap.indent(textwrap.dedent(bands), "        ")
    )


def test_the_packaged_scorecard_tracks_every_policy_category_and_the_frontier_ones() -> None:
    card = default_scorecard()
    ids = [c.id for c in card.categories]
    assert set(ids) >= {c.id for c in default_policy().categories}
    assert {"biological_chemical", "cybersecurity", "persuasion", "model_autonomy"} <= set(ids)
    assert set(ids) <= {c.id for c in default_policy().categories} | set(FRONTIER_CATEGORIES)
    for category in card.categories:
        if category.framework == "frontier":
            assert category.assessment is not None and category.assessment.evidence
        else:
            assert category.evidence and all(r.thresholds for r in category.evidence)
            for rule in category.evidence:
                assert all(band.rationale.strip() for band in rule.thresholds)


def test_a_valid_file_loads_and_bands_map_values_to_levels(tmp_path: Path) -> None:
    card = load_scorecard(_file(tmp_path, _violence()))
    rule = card.categories[0].evidence[0]
    assert rule.level_of(1.0) is RiskLevel.LOW
    assert rule.level_of(0.95) is RiskLevel.LOW  # min is inclusive
    assert rule.level_of(0.9499) is RiskLevel.MEDIUM
    assert rule.level_of(0.6) is RiskLevel.HIGH
    assert rule.level_of(0.0) is RiskLevel.CRITICAL


@pytest.mark.parametrize(
    ("categories", "line", "message"),
    [
        (
            "  - id: violense\n    framework: content_policy\n    assessment: {pre: low, post: "
            "low, evidence: x, assessor: me, date: 2026-01-01, rationale: r}\n",
            3,
            "unknown content_policy category 'violense'",
        ),
        (
            "  - id: bio\n    framework: frontier\n    evidence: []\n",
            3,
            "neither evidence rules nor an assessment",
        ),
        (
            "  - id: bioweapons\n    framework: frontier\n    assessment: {pre: low, post: low, "
            "evidence: x, assessor: me, date: 2026-01-01, rationale: r}\n",
            3,
            "unknown frontier category 'bioweapons'",
        ),
        (
            _violence(BANDS.replace("min: 0.95", "min: 1.5")),
            None,
            "out of range",
        ),
        (
            _violence(BANDS.replace("min: 0.85, max: 0.95", "min: 0.80, max: 0.95")),
            None,
            "overlaps another band",
        ),
        (
            _violence(BANDS.replace("min: 0.85, max: 0.95", "min: 0.87, max: 0.95")),
            None,
            "no level for not_unsafe in [0.85, 0.87)",
        ),
        (
            _violence(
                BANDS.replace("level: low", "level: critical", 1).replace(
                    "level: critical, max", "level: low, max"
                )
            ),
            None,
            "higher is safer",
        ),
        (
            _violence(BANDS.replace("level: high", "level: medium")),
            None,
            "level 'medium' appears twice",
        ),
        (
            _violence(BANDS.replace("level: high", "level: severe")),
            None,
            "level",
        ),
        (
            _violence(BANDS.replace("rationale: stop", "rationale: ''")),
            None,
            "rationale",
        ),
        (
            "  - id: persuasion\n    framework: frontier\n    assessment: {pre: low, post: high, "
            "evidence: x, assessor: me, date: 2026-01-01, rationale: r}\n",
            None,
            "mitigations cannot raise a risk level",
        ),
    ],
)
def test_mistakes_are_named_with_the_file_and_line(
    tmp_path: Path, categories: str, line: int | None, message: str
) -> None:
    path = _file(tmp_path, categories)
    with pytest.raises(ConfigError) as caught:
        load_scorecard(path)
    text = str(caught.value)
    assert str(path) in text and message in text, text
    if line is not None:
        assert f"{path}:{line}:" in text, text


def test_an_unknown_evidence_category_and_source_are_refused(tmp_path: Path) -> None:
    bad_category = _violence().replace("category: violence", "category: violance")
    with pytest.raises(ConfigError, match="unknown category 'violance'"):
        load_scorecard(_file(tmp_path, bad_category))
    bad_source = _violence().replace("source: manual_redteam", "source: twitter")
    with pytest.raises(ConfigError, match="'twitter' is not an evaluation source"):
        load_scorecard(_file(tmp_path, bad_source))


def test_the_corrected_rate_has_no_interval_to_take_a_bound_of(tmp_path: Path) -> None:
    corrected = _violence().replace(
        "source: manual_redteam", "metric: not_unsafe_corrected\n        source: manual_redteam"
    )
    with pytest.raises(ConfigError, match="not_unsafe_corrected has no interval"):
        load_scorecard(_file(tmp_path, corrected))
    fine = load_scorecard(_file(tmp_path, corrected, head="statistic: point\n"))
    assert fine.categories[0].evidence[0].metric == "not_unsafe_corrected"


def test_unknown_fields_duplicates_and_a_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown field 'treshold"):
        load_scorecard(_file(tmp_path, _violence().replace("thresholds:", "tresholds:")))
    twice = _violence() + _violence()
    with pytest.raises(ConfigError, match="'violence' is listed twice"):
        load_scorecard(_file(tmp_path, twice))
    with pytest.raises(ConfigError, match="no such file"):
        load_scorecard(tmp_path / "absent.yaml")


def test_a_scorecard_can_track_the_categories_of_its_own_policy(tmp_path: Path) -> None:
    from importlib import resources

    text = resources.files("safestack.policy").joinpath("default.yaml").read_text("utf-8")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "ours.yaml").write_text(
        text.replace("id: defamation", "id: slander"), encoding="utf-8"
    )
    slander = (
        "  - id: slander\n    framework: content_policy\n    assessment: {pre: low, post: "
        "low, evidence: x, assessor: me, date: 2026-01-01, rationale: r}\n"
    )
    card = load_scorecard(_file(tmp_path, slander, head="policy: policies/ours.yaml\n"))
    assert card.categories[0].id == "slander"
    assert card.title_of(card.categories[0])  # the title comes from that policy
    with pytest.raises(ConfigError, match="unknown content_policy category 'slander'"):
        load_scorecard(_file(tmp_path, slander))  # not in the default policy
