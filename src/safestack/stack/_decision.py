"""The decision trace: what each layer saw and did for one request, as loggable data."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.policy import Audience

__all__ = ["ActingLayer", "Decision", "LayerName", "LayerTrace", "StackResult", "Status"]

LayerName = Literal["input", "model", "model_refusal", "output", "monitor"]
ActingLayer = Literal["input", "model", "output"]
#: ``answered`` / ``blocked``: the stack decided. ``unanswered``: the recorded-responses model has
#: no completion for this request (a replay device, not a failure). ``error``: the model failed.
Status = Literal["answered", "blocked", "unanswered", "error"]


class LayerTrace(BaseModel):
    """One layer's part in a decision. A layer that did not run says why in ``skipped``."""

    model_config = ConfigDict(frozen=True)

    layer: LayerName
    ran: bool
    skipped: str | None = Field(default=None, description="Why the layer did not run.")
    flagged: bool = False
    categories: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    label: str | None = None
    clause: str | None = None
    rationale: str | None = None
    error: str | None = Field(default=None, description="Failure, and how it was handled.")
    ms: float = Field(default=0.0, description="Wall-clock time the layer took.")
    component: dict[str, Any] | None = Field(
        default=None, description="Spec of the classifier, monitor or model (name, version, args)."
    )


class Decision(BaseModel):
    """Which layer acted on a request, why, and what it cost.

    ``layer`` is the layer whose action the user sees: ``input`` (prompt blocking), ``model``
    (the model's own refusal, when refusals are counted), ``output`` (output blocking, by the
    classifier or the monitor) — or ``None`` when the answer went through. ``blocked`` is true
    exactly when ``layer`` is set.
    """

    model_config = ConfigDict(frozen=True)

    status: Status
    blocked: bool
    layer: ActingLayer | None
    categories: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    clause: str | None = Field(default=None, description="Policy clause cited, if any.")
    rationale: str | None = None
    audience: Audience
    stack: str = Field(description="Name of the stack configuration.")
    error: str | None = None
    trace: list[LayerTrace]
    timings_ms: dict[str, float] = Field(
        description="Per layer, plus 'added' (safety layers only) and 'total'."
    )


class StackResult(BaseModel):
    """What the caller gets back: the text for the user and the decision behind it.

    ``model_answer`` keeps the model's own text even when the stack withheld it, because an
    evaluation must judge what the model said to score each mitigation layer separately.
    """

    model_config = ConfigDict(frozen=True)

    answer: str
    decision: Decision
    model_answer: str | None = None
