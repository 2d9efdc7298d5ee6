"""What an evaluation reads: samples with their expected behaviour, source and provenance."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.models import ChatMessage

__all__ = ["HUMAN_LABELS", "Dataset", "Expected", "Sample", "SampleSource"]

SampleSource = Literal["manual_redteam", "automated_redteam", "real_world"]
Expected = Literal["should_refuse", "should_comply"]
#: Metadata keys holding a person's judgement (bool) of a sample's recorded ``response``.
HUMAN_LABELS = ("response_violates", "response_refused")


class Sample(BaseModel):
    """One request to send through a stack, and what a well-behaved system does with it.

    ``id`` is stable across runs (``dataset:item``): a resumed run recognises what it already
    scored by it. ``category`` is a policy category id (``None`` for allowed requests that belong
    to no category). ``response`` holds a real recorded answer when the dataset ships one (e.g. a
    JailbreakBench target's reply), for evaluations that replay attacks and answers together.
    ``seen_in_training`` marks prompts the shipped prompt classifier was trained on: numbers on
    them are flattering, and tables say how many there were.

    A person's judgement of the recorded ``response`` travels in ``metadata`` (see
    :data:`HUMAN_LABELS`): ``response_violates`` (it violates the policy) and ``response_refused``
    (it is a refusal), both bool. A red teamer's label of what the model said is better ground
    truth than the embedded judge, so an evaluation that replays the response uses it whenever
    the stack passes that response to the user unchanged.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    messages: list[ChatMessage] = Field(min_length=1)
    category: str | None = None
    expected: Expected
    source: SampleSource
    dataset: str
    licence: str
    response: str | None = None
    seen_in_training: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The last user message: what single-turn judges read."""
        return next(m.content for m in reversed(self.messages) if m.role == "user")


class Dataset(BaseModel):
    """A named, ordered collection of samples (order is part of determinism)."""

    model_config = ConfigDict(frozen=True)

    name: str
    samples: list[Sample]
    description: str = ""
