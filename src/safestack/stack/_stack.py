"""SafetyStack: prompt blocking, the model (and its own refusals), output blocking + monitor."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safestack.classify._embedding import WINDOW_CHARS
from safestack.errors import InputError, ModelError, ModelTimeoutError, NoRecordingError
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

__all__ = ["STREAM_WINDOW_CHARS", "SafetyStack", "StreamPiece"]

Request = str | Sequence[ChatMessage | Mapping[str, Any]]

#: Streamed text is released in pieces of at least this many characters, each only after the
#: output layer has judged it (see :meth:`SafetyStack.stream`).
STREAM_WINDOW_CHARS = 400


@dataclass(frozen=True, slots=True)
class StreamPiece:
    """A piece of a streamed answer that the stack let through.

    The last piece of a stream carries the :class:`Decision`; when the stack blocked, its text is
    the refusal (after whatever had already passed the checks) and ``decision.blocked`` is true.
    """

    text: str
    decision: Decision | None = None

    @property
    def finish_reason(self) -> str | None:
        """OpenAI's name for how the stream ended (``content_filter`` when a layer blocked)."""
        if self.decision is None:
            return None
        if self.decision.layer in ("input", "output"):
            return "content_filter"
        return "stop"


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

    def with_model(self, model: ModelAdapter, *, name: str | None = None) -> SafetyStack:
        """The same layers (and loaded components) around another model.

        A gateway serving several upstream models keeps one set of classifiers in memory.
        """
        other = SafetyStack(
            model=model,
            policy=self.policy,
            input_layer=self.input_layer,
            output_layer=self.output_layer,
            model_refusals=self.model_refusals,
            model_timeout_s=self.model_timeout_s,
            max_chars=self.max_chars,
            name=name or self.name,
        )
        other._warm = self._warm
        other._warm_lock = self._warm_lock
        return other

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

    def run(
        self,
        request: Request,
        *,
        audience: Audience | str = Audience.ADULT,
        max_tokens: int | None = None,
    ) -> StackResult:
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

        blocked = self._judge_input(conversation, who, trace, started)
        if blocked is not None:
            return blocked

        reply, model_trace = self._call_model(conversation, max_tokens)
        trace.append(model_trace)
        if reply is None:
            error = model_trace.error or "the model failed"
            status: Status = (
                "unanswered" if error.startswith(NoRecordingError.__name__) else "error"
            )
            decision = self._decision(status, None, trace, who, started, error=error)
            return StackResult(answer=unavailable_message(error), decision=decision)
        return self._judge_answer(conversation, reply.text, who, trace, started)

    def stream(
        self,
        request: Request,
        *,
        audience: Audience | str = Audience.ADULT,
        window_chars: int = STREAM_WINDOW_CHARS,
        max_tokens: int | None = None,
    ) -> Generator[StreamPiece, None, None]:
        """Handle one request while the model streams: text is released only once judged.

        The model's deltas are buffered; whenever ``window_chars`` new characters have arrived,
        the output layer judges the text about to be released — the answer so far while it fits
        one classifier window (1,000 characters, the judge reads openings best), then the full
        window that ends at the release point — and only then is it sent. So no span reaches the
        caller before the output layer has seen it. When the model is done, the whole answer gets
        exactly the checks :meth:`run` applies (refusal detection, output layer on every window),
        and the last piece carries the :class:`Decision`. A block ends the stream with the
        refusal; text released before it had passed its window's check.

        Raises :class:`~safestack.errors.InputError` like :meth:`run`, before anything is sent.
        """
        if window_chars < 1:
            raise InputError(f"window_chars must be at least 1, got {window_chars}")
        who = _audience(audience)
        conversation = conversation_from(request, max_chars=self.max_chars)
        self.warm_up(who)
        started = time.perf_counter()
        trace: list[LayerTrace] = []

        blocked = self._judge_input(conversation, who, trace, started)
        if blocked is not None:
            yield StreamPiece(blocked.answer, blocked.decision)
            return

        answer, released = "", 0
        model_start = time.perf_counter()
        try:
            spec: dict[str, Any] | None = self.model.spec.model_dump()
        except Exception:
            spec = None
        deltas = _BoundedStream(
            lambda: self.model.stream(conversation.messages, max_tokens=max_tokens),
            self.model_timeout_s,
        )
        try:
            for delta in deltas:
                answer += delta
                if self.output_layer is None or len(answer) - released < window_chars:
                    if self.output_layer is None and delta:
                        released = len(answer)
                        yield StreamPiece(delta)
                    continue
                cut = len(answer)
                judged = answer[:cut] if cut <= WINDOW_CHARS else answer[cut - WINDOW_CHARS : cut]
                outcome = self.output_layer.judge(conversation, judged, who)
                if outcome.blocked:
                    trace.append(_model_trace(model_start, spec, label="stopped by the stack"))
                    trace += outcome.traces
                    result = self._blocked(
                        "output", outcome, trace, who, started, model_answer=answer
                    )
                    yield StreamPiece(_after(answer[:released], result.answer), result.decision)
                    return
                trace += outcome.traces
                yield StreamPiece(answer[released:cut])
                released = cut
        except Exception as exc:  # the model failed mid-stream: a decision, never a crash
            error = f"{type(exc).__name__}: {exc}"
            trace.append(_model_trace(model_start, spec, error=error))
            status: Status = "unanswered" if isinstance(exc, NoRecordingError) else "error"
            decision = self._decision(status, None, trace, who, started, error=error)
            yield StreamPiece(_after(answer[:released], unavailable_message(error)), decision)
            return
        finally:
            deltas.close()
        trace.append(_model_trace(model_start, spec, label="stop"))

        result = self._judge_answer(conversation, answer, who, trace, started)
        if result.decision.layer == "output":
            yield StreamPiece(_after(answer[:released], result.answer), result.decision)
        else:
            yield StreamPiece(answer[released:], result.decision)

    def _judge_input(
        self, conversation: Conversation, who: Audience, trace: list[LayerTrace], started: float
    ) -> StackResult | None:
        """The input layer's turn: the refusal when it blocks, else None (trace extended)."""
        if self.input_layer is None:
            trace.append(LayerTrace(layer="input", ran=False, skipped="disabled"))
            return None
        outcome = self.input_layer.judge(conversation, who)
        trace += outcome.traces
        if outcome.blocked:
            return self._blocked("input", outcome, trace, who, started, model_answer=None)
        return None

    def _judge_answer(
        self,
        conversation: Conversation,
        answer: str,
        who: Audience,
        trace: list[LayerTrace],
        started: float,
    ) -> StackResult:
        """A complete answer through the refusal check and the output layer: the result."""
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
        else:
            decision = self._decision("answered", None, trace, who, started)
        return StackResult(answer=answer, decision=decision, model_answer=answer)

    def _call_model(
        self, conversation: Conversation, max_tokens: int | None
    ) -> tuple[ModelReply | None, LayerTrace]:
        start = time.perf_counter()
        try:
            spec: dict[str, Any] | None = self.model.spec.model_dump()
        except Exception:
            spec = None
        try:
            reply = run_bounded(
                lambda: self.model.generate(conversation.messages, max_tokens=max_tokens),
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
        timings: dict[str, float] = {}
        for t in trace:  # a streamed answer is judged window by window: the layer's total
            if t.ran:
                timings[t.layer] = round(timings.get(t.layer, 0.0) + t.ms, 3)
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


def _after(released: str, refusal: str) -> str:
    """The refusal that ends a stream, set apart from text already sent."""
    return f"\n\n{refusal}" if released else refusal


def _model_trace(
    start: float, spec: dict[str, Any] | None, *, label: str | None = None, error: str | None = None
) -> LayerTrace:
    ms = (time.perf_counter() - start) * 1000
    return LayerTrace(layer="model", ran=True, label=label, error=error, ms=ms, component=spec)


class _BoundedStream:
    """A model's stream pulled by a worker thread, so a silent model cannot hold the caller.

    The whole stream shares one budget of ``timeout_s`` seconds, like :meth:`SafetyStack.run`'s
    model call; overrunning raises :class:`ModelTimeoutError`. ``close`` stops the worker at
    its next delta (it cannot interrupt a blocked read; the adapter's own timeouts end that).
    """

    _DONE = object()

    def __init__(self, open_stream: Callable[[], Iterable[str]], timeout_s: float) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self._deadline = time.monotonic() + timeout_s
        self._timeout_s = timeout_s
        self._worker = threading.Thread(
            target=self._pull, args=(open_stream,), name="safestack-stream", daemon=True
        )
        self._worker.start()

    def _pull(self, open_stream: Callable[[], Iterable[str]]) -> None:
        try:
            for delta in open_stream():
                if self._stop.is_set():
                    return
                self._put(("delta", delta))
            self._put(("done", None))
        except BaseException as exc:
            self._put(("error", exc))

    def _put(self, item: tuple[str, Any]) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        remaining = self._deadline - time.monotonic()
        try:
            kind, value = self._queue.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            self.close()
            raise ModelTimeoutError(
                f"the model did not finish streaming within {self._timeout_s:g} s"
            ) from None
        if kind == "done":
            raise StopIteration
        if kind == "error":
            raise value
        return str(value)

    def close(self) -> None:
        self._stop.set()
