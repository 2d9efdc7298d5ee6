"""A classifier backed by any endpoint that speaks OpenAI's ``POST /moderations``.

The endpoint's own categories and ``flagged`` bit are not what we act on: its scores are mapped
onto the written policy's categories (``Category.openai``) and flagged by the policy's thresholds
for the audience, so that switching from the embedded classifier to a hosted one changes the
detector, not the policy.

A remote answer is trusted only when it is in contract. Anything else — a wrong number of results,
a score outside [0, 1], a missing field, a non-JSON body, an HTTP error, a timeout — raises
:class:`~safestack.errors.RemoteError`; whether that blocks or lets content through is the
stack's fail-open / fail-closed decision, not this module's.

The HTTP plumbing (:class:`HTTPClassifierBase`) is shared with :mod:`safestack.classify.llm`, and
through :mod:`safestack.http_endpoint` with the remote models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from safestack.classify._inputs import as_texts
from safestack.classify._policy_bound import PolicyBound
from safestack.classify._protocol import ClassifierInput, InputKind
from safestack.classify._registry import register_classifier
from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.errors import ClassifierError, RemoteError, SafestackError
from safestack.http_endpoint import HTTPEndpoint, describe_validation_error
from safestack.policy import Audience, Policy

__all__ = ["HTTPClassifierBase", "RemoteModerationClassifier", "describe_validation_error"]


class HTTPClassifierBase(HTTPEndpoint):
    """The shared transport (:class:`~safestack.http_endpoint.HTTPEndpoint`) as classifiers use it.

    Every transport failure, a timeout included, is a :class:`~safestack.errors.RemoteError`
    (a :class:`~safestack.errors.ClassifierError`), and bad parameters are a
    :class:`~safestack.errors.ClassifierError`: the stack treats an unreachable detector as one
    kind of failure, whatever the cause.
    """

    error_class: ClassVar[type[SafestackError]] = RemoteError
    timeout_error_class: ClassVar[type[SafestackError]] = RemoteError
    config_error_class: ClassVar[type[SafestackError]] = ClassifierError


# -- the moderation endpoint's contract -------------------------------------------------------

Score = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _ModerationResult(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, Score]


class _ModerationResponse(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    results: list[_ModerationResult]


@register_classifier("remote-moderation")
class RemoteModerationClassifier(PolicyBound, HTTPClassifierBase):
    """Scores text with a remote moderation endpoint, judged by the written policy.

    A policy category's score is the highest score among the OpenAI categories it maps to
    (``Category.openai``); a category that maps to none, or whose names the endpoint does not
    score, is absent from ``Verdict.scores`` and never flagged by this classifier — pair it with
    another classifier for those. Texts are sent ``batch_size`` at a time, one request each.
    """

    registry_name: ClassVar[str] = "remote-moderation"
    version: ClassVar[str] = "1"
    input_kind: ClassVar[InputKind] = "text"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str = "omni-moderation-latest",
        policy: Policy | None = None,
        audience: Audience | str = Audience.ADULT,
        timeout: float = 10.0,
        batch_size: int = 32,
        max_retries: int = 2,
    ) -> None:
        super().__init__(base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self.model = model
        self.policy = policy
        self.audience = audience
        self.batch_size = batch_size

    @property
    def spec(self) -> ClassifierSpec:
        policy = self._policy
        return ClassifierSpec(
            name=self.registry_name,
            version=self.version,
            args={
                "base_url": self.public_url,
                "model": self.model,
                "audience": self._audience.value,
                "policy": f"{policy.name}@{policy.version}",
            },
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.public_url!r}, model={self.model!r}, "
            f"audience={str(self.audience)!r})"
        )

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]:
        texts = as_texts(items)
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ClassifierError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not texts:
            return []
        spec = self.spec
        thresholds = self._policy.thresholds(self._audience)
        mapping = {c.id: c.openai for c in self._policy.categories if c.openai}
        verdicts: list[Verdict] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            for result in self._moderate(batch):
                scores = _policy_scores(result.category_scores, mapping)
                verdicts.append(Verdict.from_scores(scores, thresholds, spec))
        return verdicts

    def _moderate(self, texts: list[str]) -> list[_ModerationResult]:
        body = self._post("moderations", {"model": self.model, "input": texts})
        where = f"{self.public_url}/moderations"
        try:
            parsed = _ModerationResponse.model_validate(body)
        except ValidationError as exc:
            raise self._error(
                f"{where}: answer out of contract: {describe_validation_error(exc)}"
            ) from None
        if len(parsed.results) != len(texts):
            raise self._error(
                f"{where}: answered {len(parsed.results)} result(s) for {len(texts)} input(s); "
                "results cannot be matched to inputs"
            )
        return parsed.results


def _policy_scores(
    openai_scores: dict[str, float], mapping: dict[str, list[str]]
) -> dict[str, float]:
    """Policy category → max score over the OpenAI categories it maps to (only those scored)."""
    out: dict[str, float] = {}
    for category_id, names in mapping.items():
        scored = [openai_scores[name] for name in names if name in openai_scores]
        if scored:
            out[category_id] = max(scored)
    return out
