"""The written policy: categories, audiences, thresholds, and the files that hold them."""

from safestack.policy._load import default_policy, load_policy, policy_from_yaml
from safestack.policy._model import (
    MLCOMMONS_HAZARDS,
    OPENAI_MODERATION_CATEGORIES,
    Audience,
    Category,
    Clause,
    ClauseKind,
    Examples,
    Policy,
    Under18Rule,
)

__all__ = [
    "MLCOMMONS_HAZARDS",
    "OPENAI_MODERATION_CATEGORIES",
    "Audience",
    "Category",
    "Clause",
    "ClauseKind",
    "Examples",
    "Policy",
    "Under18Rule",
    "default_policy",
    "load_policy",
    "policy_from_yaml",
]
