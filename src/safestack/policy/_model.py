"""The written policy as typed data: categories, what each allows and disallows, audiences.

The policy is the single source of truth that classifiers, the monitor and the evaluations read:
thresholds live here (not in code) so that tightening a category is a reviewed change to one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "MLCOMMONS_HAZARDS",
    "OPENAI_MODERATION_CATEGORIES",
    "Audience",
    "Category",
    "Clause",
    "ClauseKind",
    "Examples",
    "Policy",
    "Severity",
    "Under18Rule",
]

#: MLCommons AILuminate hazard codes (as used by Llama Guard 3): the vocabulary a verdict can be
#: reported in for comparison with published hazard tables.
MLCOMMONS_HAZARDS: dict[str, str] = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}

#: The category names of the OpenAI moderation endpoint (omni-moderation).
OPENAI_MODERATION_CATEGORIES: frozenset[str] = frozenset(
    {
        "sexual",
        "sexual/minors",
        "harassment",
        "harassment/threatening",
        "hate",
        "hate/threatening",
        "illicit",
        "illicit/violent",
        "self-harm",
        "self-harm/intent",
        "self-harm/instructions",
        "violence",
        "violence/graphic",
    }
)

_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def _rule_error(reason: str, *, at: tuple[str | int, ...]) -> PydanticCustomError:
    """An error from a check that spans several fields, pointing at the field to blame.

    Pydantic locates a model-level error at the model itself; ``ctx["at"]`` carries the path,
    relative to that model, of the field a reader should fix (the policy loader turns it into a
    line number). ``reason`` is passed through the context so that braces in it are not read as
    template fields.
    """
    return PydanticCustomError("policy_rule", "{reason}", {"reason": reason, "at": at})


class Audience(StrEnum):
    """Who the content is for. How the audience is decided is the caller's business."""

    ADULT = "adult"
    UNDER_18 = "under_18"


class Examples(BaseModel):
    """Labelled examples: the policy's golden set, and documentation for reviewers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    disallowed: list[str] = Field(default_factory=list)
    allowed: list[str] = Field(default_factory=list)


ClauseKind = Literal["disallowed", "allowed", "under_18"]
Severity = Literal["low", "medium", "high", "critical"]


@dataclass(frozen=True, slots=True)
class Clause:
    """One rule of the written policy, citable by id (see :meth:`Policy.clauses`)."""

    id: str
    category: str
    kind: ClauseKind
    text: str

    @property
    def forbids(self) -> bool:
        """True for a disallowed or under-18 rule, false for an allowed one."""
        return self.kind != "allowed"


class Under18Rule(BaseModel):
    """The stricter rule for users under 18: a lower threshold and extra disallowed content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(ge=0.0, le=1.0)
    additional_disallowed: list[str] = Field(default_factory=list)


class Category(BaseModel):
    """One risk category of the policy, with a stable snake_case id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    description: str = Field(description="Markdown prose: what the category covers and why.")
    disallowed: list[str] = Field(min_length=1)
    allowed: list[str] = Field(
        default_factory=list, description="What stays allowed, to prevent over-refusal."
    )
    examples: Examples = Field(default_factory=Examples)
    threshold: float = Field(ge=0.0, le=1.0)
    under_18: Under18Rule
    severity: Severity = Field(
        default="medium",
        description="How grave one violation is. The gateway counts blocked requests in 'high' "
        "and 'critical' categories as strikes towards an automatic suspension.",
    )
    mlcommons: list[str] = Field(default_factory=list)
    openai: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"category id {value!r} must be snake_case (e.g. 'self_harm')")
        return value

    @field_validator("mlcommons")
    @classmethod
    def _known_hazards(cls, value: list[str]) -> list[str]:
        unknown = [code for code in value if code not in MLCOMMONS_HAZARDS]
        if unknown:
            raise ValueError(f"unknown MLCommons hazard code(s) {unknown}; allowed: S1 … S14")
        return value

    @field_validator("openai")
    @classmethod
    def _known_openai(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in OPENAI_MODERATION_CATEGORIES]
        if unknown:
            allowed = ", ".join(sorted(OPENAI_MODERATION_CATEGORIES))
            raise ValueError(f"unknown OpenAI moderation category {unknown}; allowed: {allowed}")
        return value

    @model_validator(mode="after")
    def _minors_are_stricter(self) -> Category:
        if self.under_18.threshold > self.threshold:
            raise _rule_error(
                f"under_18.threshold {self.under_18.threshold} is looser than threshold "
                f"{self.threshold} of category {self.id!r}; the under-18 rule must be at least "
                f"as strict (at most {self.threshold})",
                at=("under_18", "threshold"),
            )
        return self

    def threshold_for(self, audience: Audience | str) -> float:
        if Audience(audience) is Audience.UNDER_18:
            return self.under_18.threshold
        return self.threshold


class Policy(BaseModel):
    """A written content policy: the taxonomy every other component reports in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    description: str = Field(description="Markdown prose: scope and principles of the policy.")
    categories: list[Category] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        seen: dict[str, int] = {}
        for index, category in enumerate(self.categories):
            if category.id in seen:
                raise _rule_error(
                    f"category id {category.id!r} appears more than once (first as "
                    f"categories.{seen[category.id]}); ids must be unique",
                    at=("categories", index, "id"),
                )
            seen[category.id] = index
        return self

    @property
    def category_ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def category(self, category_id: str) -> Category:
        for category in self.categories:
            if category.id == category_id:
                return category
        known = ", ".join(self.category_ids)
        raise KeyError(f"policy {self.name!r} has no category {category_id!r}; known: {known}")

    def clauses(self, audience: Audience | str = Audience.ADULT) -> list[Clause]:
        """Every rule of the policy as a citable clause, in policy order.

        Ids are stable while the policy's bullets keep their order: ``<category>.disallowed.<n>``,
        ``<category>.allowed.<n>`` and, for ``under_18`` only, ``<category>.under_18.<n>``
        (1-based). A monitor cites one of them, so a reviewer can read the rule it applied.
        """
        minor = Audience(audience) is Audience.UNDER_18
        out: list[Clause] = []
        for c in self.categories:
            out += [
                Clause(f"{c.id}.disallowed.{i}", c.id, "disallowed", text)
                for i, text in enumerate(c.disallowed, 1)
            ]
            if minor:
                out += [
                    Clause(f"{c.id}.under_18.{i}", c.id, "under_18", text)
                    for i, text in enumerate(c.under_18.additional_disallowed, 1)
                ]
            out += [
                Clause(f"{c.id}.allowed.{i}", c.id, "allowed", text)
                for i, text in enumerate(c.allowed, 1)
            ]
        return out

    def clause(self, clause_id: str, audience: Audience | str = Audience.UNDER_18) -> Clause:
        """The clause with this id (by default searching the under-18 rules too)."""
        for clause in self.clauses(audience):
            if clause.id == clause_id:
                return clause
        raise KeyError(f"policy {self.name!r} has no clause {clause_id!r}")

    def thresholds(self, audience: Audience | str = Audience.ADULT) -> dict[str, float]:
        """Category id → the score at which content is flagged for ``audience``."""
        return {c.id: c.threshold_for(audience) for c in self.categories}

    def to_openai(self, category_ids: list[str]) -> list[str]:
        """Report flagged categories in the OpenAI moderation vocabulary (sorted, unique)."""
        return sorted({name for cid in category_ids for name in self.category(cid).openai})

    def to_mlcommons(self, category_ids: list[str]) -> list[str]:
        """Report flagged categories as MLCommons hazard codes (in S-number order, unique)."""
        codes = {code for cid in category_ids for code in self.category(cid).mlcommons}
        return sorted(codes, key=lambda code: int(code[1:]))
