"""SafetyStack: prompt blocking, the model (and its own refusals), output blocking + monitor."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safestack.errors import InputError, ModelError, NoRecordingError
from safestack.models import ChatMessage, ModelAdapter, ModelReply, create_model
from safestack.policy import Audience, Policy, default_policy, load_policy
from safestack.stack._config import PRESETS, StackConfig, load_stack_config
from safestack.stack._conversation import Conversation, conversation_from
from safestack.stack._decision import ActingLayer, Decision, LayerTrace, StackResult, Status
from safestack.stack._layers import (
    InputLayer,
    LayerOutcome,
    ModelRefusalCheck,
    OutputLayer,
    run_bounded,
)
from safestack.stack._refusal import refusal_message, unavailable_message

__all__ = ["SafetyStack"]

Request = str | Sequence[ChatMessage | Mapping[str, Any]]


def _audience(value: Audience | str) -> Audience:
    try:
        return Audience(value)
    except ValueError:
        allowed = ", ".join(a.value for a in Audience)
        raise InputError(f"unknown audience {value!r}; allowed: {allowed}") from None


class SafetyStack:
    """The safety layers around a model, for one request at a time.

    Build one from parts (``SafetyStack(model=..., input_layer=..., output_layer=...)``; a layer
    set to ``None`` is off) or from a configuration (:meth:`from_config`, a preset name or a
    YAML file). :meth:`run` takes a prompt or a chat and an audience and returns the text for the
    user with the :class:`Decision` behind it. Components load on first use; the first request
    also warms them up outside the time budgets, so a cold start is not mistaken for a timeout.
    """

    def __init__(
        self,
        *,
        model: ModelAdapter,
        policy: Policy | None = None,
        input_layer: InputLayer | None = None,
        output_layer: OutputLayer | None = None,
        model_refusals: ModelRefusalCheck | None = None,
        model_timeout_s: float = 120.0,
        max_chars: int = 100_000,
        name: str = "custom",
    ) -> None:
        self.policy = policy or default_policy()
        self.model = model
        self.input_layer = input_layer
        self.output_layer = output_layer
        self.model_refusals = model_refusals
        self.model_timeout_s = model_timeout_s
        self.max_chars = max_chars
        self.name = name
        self._warm: set[Audience] = set()
        self._warm_lock = threading.Lock()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: StackConfig | str | Path | None = None,
        *,
        model: ModelAdapter | None = None,
        policy: Policy | None = None,
    ) -> SafetyStack:
        """A stack from a configuration, a preset name, or a YAML file (default: the
        ``system_mitigations_and_model_refusals`` preset around the recorded model).

        ``model`` and ``policy`` override what the configuration names, e.g. to run the same
        configuration around a live endpoint.
        """
        if config is None:
            config = PRESETS["system_mitigations_and_model_refusals"]
        elif isinstance(config, str) and config in PRESETS:
            config = PRESETS[config]
        elif not isinstance(config, StackConfig):
            config = load_stack_config(config)
        if policy is None:
            policy = load_policy(config.policy) if config.policy else default_policy()
        if model is None:
            args = dict(config.model.args)
            if config.model.name == "recorded":
                args["setup"] = config.recorded_setups()
            model = create_model(config.model.name, **args)
        inp, out = config.input, config.output
        return cls(
            model=model,
            policy=policy,
            input_layer=InputLayer(
                inp.classifier,
                policy=policy,
                window=inp.window,
                timeout_s=inp.timeout_s,
                on_error=inp.on_error,
            )
            if inp.enabled
            else None,
            output_layer=OutputLayer(
                out.classifier,
                policy=policy,
                monitor=out.monitor,
                timeout_s=out.timeout_s,
                on_error=out.on_error,
            )
            if out.enabled
            else None,
            model_refusals=ModelRefusalCheck(config.refusal_detector, policy=policy)
            if config.model_refusals
            else None,
            model_timeout_s=config.model.timeout_s,
            max_chars=config.max_chars,
            name=config.name,
        )

    def warm_up(self, audience: Audience | str = Audience.ADULT) -> None:
        """Load every component for ``audience`` (weights, sessions) before the first request."""
        who = _audience(audience)
        with self._warm_lock:
            if who in self._warm:
                return
            for layer in (self.input_layer, self.model_refusals, self.output_layer):
                if layer is not None:
                    layer.warm_up(who)
            self._warm.add(who)

    # -- one request -------------------------------------------------------------------------

    def run(self, request: Request, *, audience: Audience | str = Audience.ADULT) -> StackResult:
        """Handle one request: a prompt, or chat messages (``{"role", "content"}`` or models).

        Raises :class:`~safestack.errors.InputError` for a request that cannot be judged
        (empty, wrong roles, not text, too long). Every other failure is a decision: a layer
        that fails is handled by its failure mode, a model that fails gives status ``error``.
        """
        who = _audience(audience)
        conversation = conversation_from(request, max_chars=self.max_chars)
        self.warm_up(who)
        started = time.perf_counter()
        trace: list[LayerTrace] = []

        if self.input_layer is None:
            trace.append(LayerTrace(layer="input", ran=False, skipped="disabled"))
        else:
            outcome = self.input_layer.judge(conversation, who)
            trace += outcome.traces
            if outcome.blocked:
                return self._blocked("input", outcome, trace, who, started, model_answer=None)

        reply, model_trace = self._call_model(conversation)
        trace.append(model_trace)
        if reply is None:
            error = model_trace.error or "the model failed"
            status: Status = (
                "unanswered" if error.startswith(NoRecordingError.__name__) else "error"
            )
            decision = self._decision(status, None, trace, who, started, error=error)
            return StackResult(answer=unavailable_message(error), decision=decision)
        answer = reply.text

        refused: LayerTrace | None = None
        if self.model_refusals is None:
            trace.append(LayerTrace(layer="model_refusal", ran=False, skipped="not counted"))
        else:
            refused = self.model_refusals.judge(conversation.last_user_text, answer, who)
            trace.append(refused)

        if self.output_layer is None:
            trace.append(LayerTrace(layer="output", ran=False, skipped="disabled"))
        else:
            outcome = self.output_layer.judge(conversation, answer, who)
            trace += outcome.traces
            if outcome.blocked:
                return self._blocked("output", outcome, trace, who, started, model_answer=answer)

        if refused is not None and refused.flagged:
            decision = self._decision("blocked", "model", trace, who, started)
            return StackResult(answer=answer, decision=decision, model_answer=answer)
        decision = self._decision("answered", None, trace, who, started)
        return StackResult(answer=answer, decision=decision, model_answer=answer)

    def _call_model(self, conversation: Conversation) -> tuple[ModelReply | None, LayerTrace]:
        start = time.perf_counter()
        try:
            spec: dict[str, Any] | None = self.model.spec.model_dump()
        except Exception:
            spec = None
        try:
            reply = run_bounded(
                lambda: self.model.generate(conversation.messages),
                self.model_timeout_s,
                "the model",
            )
        except ModelError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a custom adapter's bug is still a decision, not a crash
            error = f"{type(exc).__name__}: {exc}"
        else:
            ms = (time.perf_counter() - start) * 1000
            return reply, LayerTrace(
                layer="model", ran=True, label=reply.finish_reason, ms=ms, component=spec
            )
        ms = (time.perf_counter() - start) * 1000
        return None, LayerTrace(layer="model", ran=True, error=error, ms=ms, component=spec)

    # -- decisions ---------------------------------------------------------------------------

    def _blocked(
        self,
        layer: ActingLayer,
        outcome: LayerOutcome,
        trace: list[LayerTrace],
        audience: Audience,
        started: float,
        *,
        model_answer: str | None,
    ) -> StackResult:
        failed = next((t.error for t in outcome.traces if t.error), None)
        decision = self._decision(
            "blocked",
            layer,
            trace,
            audience,
            started,
            categories=outcome.categories,
            scores=outcome.scores,
            clause=outcome.clause,
            rationale=outcome.rationale,
            error=failed if outcome.failed else None,
        )
        answer = refusal_message(
            self.policy,
            outcome.categories,
            audience=audience,
            clause=outcome.clause,
            reason="a safety check could not be completed" if outcome.failed else None,
        )
        return StackResult(answer=answer, decision=decision, model_answer=model_answer)

    def _decision(
        self,
        status: Status,
        layer: ActingLayer | None,
        trace: list[LayerTrace],
        audience: Audience,
        started: float,
        *,
        categories: list[str] | None = None,
        scores: dict[str, float] | None = None,
        clause: str | None = None,
        rationale: str | None = None,
        error: str | None = None,
    ) -> Decision:
        timings: dict[str, float] = {t.layer: round(t.ms, 3) for t in trace if t.ran}
        added = sum(ms for name, ms in timings.items() if name != "model")
        timings["added"] = round(added, 3)
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        if scores is None:
            ran = [t for t in trace if t.ran and t.layer in ("output", "input") and t.scores]
            scores = ran[-1].scores if ran else {}
        return Decision.model_validate(
            {
                "status": status,
                "blocked": layer is not None,
                "layer": layer,
                "categories": categories or [],
                "scores": scores,
                "clause": clause,
                "rationale": rationale,
                "audience": audience,
                "stack": self.name,
                "error": error,
                "trace": trace,
                "timings_ms": timings,
            }
        )
