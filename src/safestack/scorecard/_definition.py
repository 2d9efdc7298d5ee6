"""The scorecard file: tracked categories, the evidence behind each, and the thresholds.

A scorecard is a reviewed document, like the policy, so it is YAML validated by pydantic with
``file:line: reason`` errors. Each tracked category is informed by evidence rules (a metric from
an evaluation run, for one source and policy category) whose thresholds map the measured value to
a level, each threshold with its rationale written beside it, or by a manual assessment (level,
evidence link, assessor, date) for what cannot be measured offline — uplift studies, say. The
scorecard shows which levels were measured and which were asserted.

Thresholds are bands ``[min, max)`` over the metric's range ``[0, 1]`` (the band that reaches 1
includes it). The bands of a rule must cover the whole range without overlapping, and a better
value may never map to a worse level: every metric here is a rate where higher is safer.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import itertools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from safestack.errors import ConfigError
from safestack.policy import Policy, default_policy, load_policy
from safestack.scorecard._levels import RiskLevel
from safestack.yaml_config import read_yaml_text, yaml_model_from_text

__all__ = [
    "DEFAULT_SCORECARD",
    "FRONTIER_CATEGORIES",
    "Assessment",
    "Band",
    "EvidenceRule",
    "Metric",
    "Scorecard",
    "Statistic",
    "TrackedCategory",
    "default_scorecard",
    "load_scorecard",
]

#: The tracked categories of the published Preparedness Framework (v1 and v2 names), which no
#: content policy covers: they are about capability and uplift, not about single outputs.
FRONTIER_CATEGORIES: dict[str, str] = {
    "biological_chemical": "Biological and chemical",
    "radiological_nuclear": "Radiological and nuclear",
    "cybersecurity": "Cybersecurity",
    "persuasion": "Persuasion",
    "model_autonomy": "Model autonomy and self-improvement",
}

#: The scorecard that ships with safestack (``safestack/scorecard/default.yaml``).
DEFAULT_SCORECARD = Path(__file__).with_name("default.yaml")

Metric = Literal["not_unsafe", "not_unsafe_corrected", "not_overrefuse", "accuracy"]
#: ``lower``: the 95 % Wilson lower bound (a small sample cannot look safe by luck); ``point``.
Statistic = Literal["lower", "point"]
_SOURCES = ("manual_redteam", "automated_redteam", "real_world")
_EPS = 1e-9

# The policy that category ids are checked against while a file is validated (set by the loader).
_POLICY: contextvars.ContextVar[Policy | None] = contextvars.ContextVar("_POLICY", default=None)


def _rule(reason: str, *at: str | int) -> PydanticCustomError:
    """A cross-field error that the YAML loader reports at the line of the field ``at``."""
    return PydanticCustomError("policy_rule", "{reason}", {"reason": reason, "at": at})


class Band(BaseModel):
    """One threshold: values in ``[min, max)`` mean ``level``, for the reason given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: RiskLevel
    min: float = 0.0
    max: float = 1.0
    rationale: str = Field(min_length=1, description="Why this range means this level.")

    def contains(self, value: float) -> bool:
        if value < self.min - _EPS:
            return False
        return value < self.max or (self.max >= 1.0 and value <= 1.0 + _EPS)


class EvidenceRule(BaseModel):
    """A measured value that informs a category: which metric, from which runs, and its bands.

    ``source`` and ``category`` select the table row (``category: overall`` for all of the
    source's samples, ``attack:<method>`` for one jailbreak method). ``task`` narrows the runs to
    one evaluation task when several runs would otherwise give the same row. ``min_n``: fewer
    samples than this is no evidence (the category then counts as the worst level).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric = "not_unsafe"
    source: str | None = Field(
        default=None, description="manual_redteam, automated_redteam or real_world."
    )
    category: str = "overall"
    task: str | None = None
    statistic: Statistic | None = Field(
        default=None, description="Overrides the file's statistic for this rule."
    )
    min_n: int = Field(default=1, ge=1)
    thresholds: list[Band] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> EvidenceRule:
        if self.metric != "accuracy" and self.source not in _SOURCES:
            raise _rule(
                f"source: {self.source!r} is not an evaluation source; allowed: "
                f"{', '.join(_SOURCES)}",
                "source",
            )
        if self.metric == "not_unsafe_corrected" and self.statistic == "lower":
            raise _rule(
                "statistic: not_unsafe_corrected has no interval; use statistic: point",
                "statistic",
            )
        for i, band in enumerate(self.thresholds):
            for name, value in (("min", band.min), ("max", band.max)):
                if not 0.0 <= value <= 1.0:
                    raise _rule(
                        f"thresholds.{i}.{name}: {value} is out of range: {self.metric} is a "
                        "rate between 0 and 1",
                        "thresholds",
                        i,
                        name,
                    )
            if band.min >= band.max:
                raise _rule(
                    f"thresholds.{i}: min {band.min} must be below max {band.max}",
                    "thresholds",
                    i,
                )
        levels = [b.level for b in self.thresholds]
        for level in set(levels):
            if levels.count(level) > 1:
                raise _rule(
                    f"thresholds: level {level.value!r} appears twice; give each level one band",
                    "thresholds",
                )
        ordered = sorted(enumerate(self.thresholds), key=lambda ib: ib[1].min)
        cursor = 0.0
        for i, band in ordered:
            if band.min < cursor - _EPS:
                raise _rule(
                    f"thresholds.{i}: [{band.min}, {band.max}) overlaps another band "
                    f"(which reaches {cursor}); a value must map to exactly one level",
                    "thresholds",
                    i,
                )
            if band.min > cursor + _EPS:
                raise _rule(
                    f"thresholds: no level for {self.metric} in [{cursor}, {band.min}); the bands "
                    "must cover 0 to 1",
                    "thresholds",
                )
            cursor = band.max
        if cursor < 1.0 - _EPS:
            raise _rule(
                f"thresholds: no level for {self.metric} in [{cursor}, 1]; the bands must cover "
                "0 to 1",
                "thresholds",
            )
        for (_, lower), (j, higher) in itertools.pairwise(ordered):
            if higher.level.rank > lower.level.rank:
                raise _rule(
                    f"thresholds.{j}: a higher {self.metric} ({higher.min}+) maps to a worse "
                    f"level ({higher.level.value}) than a lower one ({lower.level.value}); "
                    "higher is safer",
                    "thresholds",
                    j,
                )
        return self

    def band_of(self, value: float) -> Band:
        """The band ``value`` falls in (validation guarantees exactly one covers 0..1)."""
        for band in self.thresholds:
            if band.contains(value):
                return band
        raise ValueError(f"{value} is outside [0, 1]")

    def level_of(self, value: float) -> RiskLevel:
        return self.band_of(value).level


class Assessment(BaseModel):
    """A level asserted by a person, for what this project cannot measure: shown as asserted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pre: RiskLevel
    post: RiskLevel
    evidence: str = Field(min_length=1, description="A link or path to the study relied on.")
    assessor: str = Field(min_length=1)
    date: dt.date
    rationale: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Assessment:
        if self.post.rank > self.pre.rank:
            raise _rule(
                f"post: {self.post.value} is worse than pre: {self.pre.value}; mitigations "
                "cannot raise a risk level",
                "post",
            )
        return self


class TrackedCategory(BaseModel):
    """A category the scorecard decides on: a frontier risk or a content-policy category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    framework: Literal["frontier", "content_policy"]
    title: str | None = None
    evidence: list[EvidenceRule] = Field(default_factory=list)
    assessment: Assessment | None = None

    @model_validator(mode="after")
    def _check(self) -> TrackedCategory:
        if not self.evidence and self.assessment is None:
            raise _rule(
                f"category {self.id!r} has neither evidence rules nor an assessment; give one "
                "(a category with no basis would silently count as Critical)",
                "id",
            )
        return self


class Scorecard(BaseModel):
    """The scorecard file. ``pre_mitigation`` lists configurations in order of preference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    policy: str | None = Field(
        default=None, description="Policy file the content categories come from (default: ours)."
    )
    pre_mitigation: list[str] = Field(
        default_factory=lambda: ["no_mitigations", "model_refusals_only"], min_length=1
    )
    post_mitigation: str = "system_mitigations_and_model_refusals"
    statistic: Statistic = "lower"
    threshold_sets: dict[str, list[Band]] = Field(
        default_factory=dict,
        description="Named band lists to reuse with YAML aliases (``&name`` … ``*name``); rules "
        "validate them where they are used.",
    )
    categories: list[TrackedCategory] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Scorecard:
        policy = _POLICY.get() or default_policy()
        policy_ids = [c.id for c in policy.categories]
        seen: set[str] = set()
        for i, category in enumerate(self.categories):
            if category.id in seen:
                raise _rule(f"categories.{i}.id: {category.id!r} is listed twice", "categories", i)
            seen.add(category.id)
            known = FRONTIER_CATEGORIES if category.framework == "frontier" else policy_ids
            if category.id not in known:
                raise _rule(
                    f"categories.{i}.id: unknown {category.framework} category {category.id!r}; "
                    f"known: {', '.join(known)}",
                    "categories",
                    i,
                    "id",
                )
            for j, rule in enumerate(category.evidence):
                inherits_lower = rule.statistic is None and self.statistic == "lower"
                if inherits_lower and rule.metric == "not_unsafe_corrected":
                    raise _rule(
                        f"categories.{i}.evidence.{j}: not_unsafe_corrected has no interval; "
                        "set statistic: point on this rule",
                        "categories",
                        i,
                        "evidence",
                        j,
                    )
                name = rule.category
                if name != "overall" and not name.startswith("attack:") and name not in policy_ids:
                    raise _rule(
                        f"categories.{i}.evidence.{j}.category: unknown category {name!r}; "
                        f"allowed: overall, attack:<method>, {', '.join(policy_ids)}",
                        "categories",
                        i,
                        "evidence",
                        j,
                        "category",
                    )
        return self

    def title_of(self, category: TrackedCategory) -> str:
        if category.title:
            return category.title
        if category.framework == "frontier":
            return FRONTIER_CATEGORIES[category.id]
        return next(c.title for c in self.load_policy().categories if c.id == category.id)

    def load_policy(self) -> Policy:
        return default_policy() if self.policy is None else load_policy(self.policy)


def _policy_of(path: Path, text: str) -> tuple[Policy | None, str | None]:
    """The policy a scorecard names (resolved against its folder), before validating the rest."""
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        return None, None  # the full loader reports the syntax error with its line
    name = raw.get("policy") if isinstance(raw, dict) else None
    if not isinstance(name, str):
        return None, None
    resolved = Path(name) if Path(name).is_absolute() else path.parent / name
    return load_policy(resolved), str(resolved)


def load_scorecard(path: str | Path) -> Scorecard:
    """Read and validate a scorecard file; every failure is a :class:`ConfigError`."""
    path = Path(path)
    text = read_yaml_text(path, what="scorecard file", error=ConfigError)
    policy, resolved = _policy_of(path, text)
    token = _POLICY.set(policy)
    try:
        scorecard = yaml_model_from_text(
            text, Scorecard, what="scorecard file", path=str(path), error=ConfigError
        )
    finally:
        _POLICY.reset(token)
    return scorecard if resolved is None else scorecard.model_copy(update={"policy": resolved})


def default_scorecard() -> Scorecard:
    """The scorecard that ships with safestack."""
    text = DEFAULT_SCORECARD.read_text(encoding="utf-8")
    return yaml_model_from_text(
        text,
        Scorecard,
        path="safestack/scorecard/default.yaml",
        what="scorecard file",
        error=ConfigError,
    )
