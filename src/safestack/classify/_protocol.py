"""The one protocol every detector implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from safestack.classify._verdict import ClassifierSpec, Verdict
from safestack.media import DecodedImage

__all__ = ["Classifier", "ClassifierInput", "Exchange", "InputKind"]

InputKind = Literal["text", "exchange", "image"]


@dataclass(frozen=True, slots=True)
class Exchange:
    """A request and the model's response to it: what output judges and refusal detectors read."""

    prompt: str
    response: str


ClassifierInput = str | Exchange | DecodedImage


@runtime_checkable
class Classifier(Protocol):
    """Anything that turns content into verdicts, in batches.

    ``input_kind`` says what each item is: ``"text"`` (a prompt or any text), ``"exchange"``
    (a prompt with the response to judge) or ``"image"`` (a :class:`DecodedImage`).
    ``classify`` returns one verdict per item, in order.
    Implementations load their weights lazily, on first use, never at construction or import.
    """

    @property
    def spec(self) -> ClassifierSpec: ...

    @property
    def input_kind(self) -> InputKind: ...

    def classify(self, items: Sequence[ClassifierInput]) -> list[Verdict]: ...
