"""What every classifier returns: a typed verdict that carries the spec of its producer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ClassifierSpec", "Verdict"]


class ClassifierSpec(BaseModel):
    """Enough to say, from a log alone, which classifier produced a verdict.

    A scorecard or system card is rebuilt from logs, never from live objects, so the spec pins the
    artefact by hash and records the arguments that change behaviour (thresholds, endpoint model).
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Registry name, e.g. 'embedded-prompt'.")
    version: str = Field(description="Version of the implementation or of the trained artefact.")
    artifact_sha256: str | None = Field(
        default=None, description="SHA-256 of the trained artefact, if the classifier has one."
    )
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments that matter.")


class Verdict(BaseModel):
    """One classifier's judgement of one piece of content.

    ``scores`` holds a probability-like score in [0, 1] for every category the classifier knows;
    ``categories`` lists the flagged ones (score at or above their threshold), highest first.
    Special states have named constructors instead of sentinel values.
    """

    model_config = ConfigDict(frozen=True)

    flagged: bool
    categories: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    label: str | None = Field(
        default=None, description="A classifier-specific label, e.g. 'refusal' for the detector."
    )
    rationale: str | None = Field(default=None, description="Why, when the classifier says so.")
    clause: str | None = Field(
        default=None,
        description="Id of the policy clause the verdict rests on (see Policy.clauses), when the "
        "classifier cites one, e.g. 'violence.disallowed.2'.",
    )
    error: str | None = Field(
        default=None, description="Set when the verdict is a fail-closed stand-in for an error."
    )
    spec: ClassifierSpec

    @classmethod
    def from_scores(
        cls,
        scores: Mapping[str, float],
        thresholds: Mapping[str, float],
        spec: ClassifierSpec,
        *,
        label: str | None = None,
        rationale: str | None = None,
    ) -> Verdict:
        """Flag every category whose score reaches its threshold.

        Categories without a threshold are reported but never flagged: a score the policy does not
        act on must not block anything.
        """
        clean = {k: float(min(1.0, max(0.0, v))) for k, v in scores.items()}
        flagged = sorted(
            (c for c, s in clean.items() if c in thresholds and s >= thresholds[c]),
            key=lambda c: -clean[c],
        )
        return cls(
            flagged=bool(flagged),
            categories=flagged,
            scores=clean,
            label=label,
            rationale=rationale,
            spec=spec,
        )

    @classmethod
    def fail_closed(
        cls, spec: ClassifierSpec, error: str, *, categories: list[str] | None = None
    ) -> Verdict:
        """A flagged verdict that stands in for an answer the classifier could not trust.

        Used when a remote judge answers in prose or out of contract: treating that as safe would
        let anything through that confuses the judge.
        """
        cats = categories or []
        return cls(
            flagged=True,
            categories=cats,
            scores={c: 1.0 for c in cats},
            error=error,
            rationale=error,
            spec=spec,
        )
