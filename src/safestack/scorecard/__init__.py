"""The Preparedness-style scorecard: risk levels before and after mitigations, and the gate.

A :class:`Scorecard` (a YAML file, :func:`load_scorecard`) names the tracked categories — the
published framework's frontier categories and the content policy's — the evidence that informs
each and the thresholds, with their rationale, that map it to a :class:`RiskLevel`.
:func:`assess` scores it against finished evaluation run logs and returns a
:class:`ScorecardResult` whose :class:`GateDecision` follows the published rule: deploy only at a
post-mitigation level of Medium or below, develop further only at High or below.
"""

from safestack.scorecard._assess import (
    CategoryResult,
    Measurement,
    RuleResult,
    ScorecardResult,
    assess,
)
from safestack.scorecard._definition import (
    DEFAULT_SCORECARD,
    FRONTIER_CATEGORIES,
    Assessment,
    Band,
    EvidenceRule,
    Metric,
    Scorecard,
    Statistic,
    TrackedCategory,
    default_scorecard,
    load_scorecard,
)
from safestack.scorecard._levels import GateDecision, RiskLevel, gate_decision

__all__ = [
    "DEFAULT_SCORECARD",
    "FRONTIER_CATEGORIES",
    "Assessment",
    "Band",
    "CategoryResult",
    "EvidenceRule",
    "GateDecision",
    "Measurement",
    "Metric",
    "RiskLevel",
    "RuleResult",
    "Scorecard",
    "ScorecardResult",
    "Statistic",
    "TrackedCategory",
    "assess",
    "default_scorecard",
    "gate_decision",
    "load_scorecard",
]
