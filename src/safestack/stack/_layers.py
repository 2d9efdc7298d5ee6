"""The stack's layers: prompt blocking, the model-refusal check, and output blocking + monitor.

Each layer builds its components from the registry, once per audience (an under-18 classifier has
stricter thresholds and, for judges that read the policy, extra rules), and reports a
:class:`LayerTrace`. A component that raises or overruns its time budget is handled by the
layer's failure mode: under-18 requests always fail closed; for adults the configuration decides.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import safestack.monitor  # noqa: F401  (registers the monitors the configurations name)
from safestack.classify import Classifier, ClassifierInput, Exchange, Verdict, create_classifier
from safestack.classify._embedding import WINDOW_CHARS
from safestack.errors import ConfigError, SafestackError
from safestack.policy import Audience, Policy
from safestack.stack._config import ComponentConfig, MonitorConfig, OnError
from safestack.stack._conversation import Conversation, chunks
from safestack.stack._decision import LayerName, LayerTrace

__all__ = ["InputLayer", "LayerOutcome", "ModelRefusalCheck", "OutputLayer", "run_bounded"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Worker threads that enforce time budgets. A component that ignores its own timeout keeps
#: one busy until it returns; the request itself is answered on time regardless.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="safestack")


class LayerTimeout(SafestackError):
    """A component did not answer within its layer's time budget."""


def run_bounded(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """``fn()`` with a wall-clock budget; overrunning raises :class:`LayerTimeout`.

    ``fn`` runs in the caller's context (context variables included), as if called directly.
    """
    future = _POOL.submit(contextvars.copy_context().run, fn)
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise LayerTimeout(f"{what} did not answer within {timeout_s:g} s") from None


ComponentChoice = ComponentConfig | Classifier


def warm_up(component: object) -> None:
    """Let a component load its weights before the first timed call, if it has a hook for it.

    Remote components have none: calling an endpoint just to warm it would send traffic the
    operator did not ask for. A failure here is logged and left for the real call, where the
    layer's failure mode handles it.
    """
    hook = getattr(component, "warm_up", None)
    if callable(hook):
        try:
            hook()
        except Exception as exc:
            log.warning("warm-up of %s failed: %s", type(component).__name__, exc)


@dataclass
class _PerAudience:
    """A component built from the registry once per audience, or one given instance."""

    choice: ComponentChoice
    policy: Policy
    _built: dict[Audience, Classifier] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Constructors only store parameters, so building both audiences now is cheap, and a
        # misspelt name or argument fails when the stack is built, not on some later request.
        for audience in Audience:
            self.get(audience)

    def get(self, audience: Audience) -> Classifier:
        if not isinstance(self.choice, ComponentConfig):
            return self.choice
        if audience not in self._built:
            try:
                self._built[audience] = create_classifier(
                    self.choice.name, policy=self.policy, audience=audience, **self.choice.args
                )
            except TypeError as exc:
                raise ConfigError(f"{self.choice.name}: bad arguments: {exc}") from None
        return self._built[audience]


def _spec(component: Classifier) -> dict[str, Any] | None:
    try:
        return component.spec.model_dump()
    except SafestackError:
        return None


@dataclass(frozen=True)
class LayerOutcome:
    """What a layer decided: its traces (one per component) and whether it blocks."""

    traces: list[LayerTrace]
    blocked: bool
    categories: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    clause: str | None = None
    rationale: str | None = None
    failed: bool = False


def _max_scores(verdicts: Sequence[Verdict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for verdict in verdicts:
        for category, score in verdict.scores.items():
            out[category] = max(out.get(category, 0.0), score)
    return out


def _merge_flags(verdicts: Sequence[Verdict], scores: dict[str, float]) -> list[str]:
    flagged = {c for v in verdicts for c in v.categories}
    return sorted(flagged, key=lambda c: -scores.get(c, 1.0))


def _fails_closed(on_error: OnError, audience: Audience) -> bool:
    return audience is Audience.UNDER_18 or on_error == "block"


def _failure(
    layer: LayerName, exc: Exception, on_error: OnError, audience: Audience, ms: float, spec: Any
) -> tuple[LayerTrace, bool]:
    closed = _fails_closed(on_error, audience)
    handled = "blocked (fail-closed)" if closed else "allowed (fail-open, configured for adults)"
    trace = LayerTrace(
        layer=layer,
        ran=True,
        flagged=closed,
        error=f"{type(exc).__name__}: {exc}; {handled}",
        ms=ms,
        component=spec,
    )
    return trace, closed


def _judged(
    layer: LayerName,
    classifier: Classifier,
    items: Sequence[ClassifierInput],
    *,
    timeout_s: float,
    on_error: OnError,
    audience: Audience,
) -> tuple[LayerTrace, bool]:
    """Run one classifier over ``items`` within its budget; its trace and whether it blocks.

    Several items (chunks of a long text, windows of an answer) make one judgement: per
    category the highest score, and every category any item flagged. A failure of any kind is
    handled by the failure mode and recorded on the trace, never raised.
    """
    start = time.perf_counter()
    try:
        verdicts = run_bounded(
            lambda: classifier.classify(items), timeout_s, f"the {layer} classifier"
        )
    except Exception as exc:  # any failure is handled by the failure mode, and recorded
        ms = (time.perf_counter() - start) * 1000
        return _failure(layer, exc, on_error, audience, ms, _spec(classifier))
    scores = _max_scores(verdicts)
    categories = _merge_flags(verdicts, scores)
    trace = LayerTrace(
        layer=layer,
        ran=True,
        flagged=bool(categories),
        categories=categories,
        scores=scores,
        rationale=next((v.rationale for v in verdicts if v.flagged and v.rationale), None),
        ms=(time.perf_counter() - start) * 1000,
        component=_spec(classifier),
    )
    return trace, bool(categories)


def _outcome(traces: list[LayerTrace], blocked: bool, acting: LayerTrace) -> LayerOutcome:
    return LayerOutcome(
        traces,
        blocked=blocked,
        categories=acting.categories,
        scores=acting.scores,
        failed=acting.error is not None and blocked,
    )


class InputLayer:
    """Prompt blocking: judges the conversation before the model sees it."""

    def __init__(
        self,
        classifier: ComponentChoice | str = "embedded-prompt",
        *,
        policy: Policy,
        window: int = 6,
        timeout_s: float = 10.0,
        on_error: OnError = "allow",
    ) -> None:
        if isinstance(classifier, str):
            classifier = ComponentConfig(name=classifier)
        self.classifier = _PerAudience(classifier, policy)
        self.window = window
        self.timeout_s = timeout_s
        self.on_error = on_error

    def judge(self, conversation: Conversation, audience: Audience) -> LayerOutcome:
        texts = [piece for text in conversation.input_texts(self.window) for piece in chunks(text)]
        trace, blocked = _judged(
            "input",
            self.classifier.get(audience),
            texts,
            timeout_s=self.timeout_s,
            on_error=self.on_error,
            audience=audience,
        )
        return _outcome([trace], blocked, trace)

    def warm_up(self, audience: Audience) -> None:
        warm_up(self.classifier.get(audience))


class ModelRefusalCheck:
    """Did the model refuse? Reported as the ``model`` layer acting when refusals are counted.

    A failure of the detector is recorded and otherwise ignored: not knowing whether the model
    refused never makes an answer less safe (the output layer judges it either way).
    """

    def __init__(
        self,
        detector: ComponentChoice | str = "refusal",
        *,
        policy: Policy,
        timeout_s: float = 10.0,
    ) -> None:
        if isinstance(detector, str):
            detector = ComponentConfig(name=detector)
        self.detector = _PerAudience(detector, policy)
        self.timeout_s = timeout_s

    def judge(self, prompt: str, answer: str, audience: Audience) -> LayerTrace:
        detector = self.detector.get(audience)
        start = time.perf_counter()
        try:
            (verdict,) = run_bounded(
                lambda: detector.classify([Exchange(prompt, answer)]),
                self.timeout_s,
                "the refusal detector",
            )
        except Exception as exc:
            return LayerTrace(
                layer="model_refusal",
                ran=True,
                error=f"{type(exc).__name__}: {exc}; treated as not refused",
                ms=(time.perf_counter() - start) * 1000,
                component=_spec(detector),
            )
        return LayerTrace(
            layer="model_refusal",
            ran=True,
            flagged=verdict.flagged,
            scores=verdict.scores,
            label=verdict.label,
            ms=(time.perf_counter() - start) * 1000,
            component=_spec(detector),
        )

    def warm_up(self, audience: Audience) -> None:
        warm_up(self.detector.get(audience))


def answer_pieces(answer: str) -> list[str]:
    """The answer as the output judge reads it: whole (its opening), then every later window.

    The judge was trained on the opening of responses, where refusals and framing sit; the later
    windows are judged too so that harmful text after a harmless preamble is not missed.
    """
    if len(answer) <= WINDOW_CHARS:
        return [answer]
    step = WINDOW_CHARS - WINDOW_CHARS // 5
    return [answer, *(answer[s : s + WINDOW_CHARS] for s in range(step, len(answer), step))]


class OutputLayer:
    """Output blocking: the output classifier, and the policy monitor where it adds value.

    The monitor runs ``always`` or only when the classifier is ``uncertain`` (its top score
    within ``uncertain_band`` × threshold), per audience. In the uncertain band the monitor's
    verdict decides for adults; outside it, and always for under-18 users, either judge flagging
    blocks — the monitor can add a reason to refuse but never remove the classifier's.
    """

    def __init__(
        self,
        classifier: ComponentChoice | str = "embedded-output",
        *,
        policy: Policy,
        monitor: MonitorConfig | None = None,
        monitor_component: ComponentChoice | None = None,
        timeout_s: float = 10.0,
        on_error: OnError = "block",
    ) -> None:
        if isinstance(classifier, str):
            classifier = ComponentConfig(name=classifier)
        self.policy = policy
        self.classifier = _PerAudience(classifier, policy)
        self.monitor_config = monitor or MonitorConfig(enabled=False)
        chosen = monitor_component or self.monitor_config.monitor
        self.monitor = _PerAudience(chosen, policy) if self.monitor_config.enabled else None
        self.timeout_s = timeout_s
        self.on_error = on_error

    def _monitor_due(self, audience: Audience, scores: dict[str, float]) -> str | None:
        """Why the monitor should run, or None."""
        cfg = self.monitor_config
        if not cfg.enabled:
            return None
        when = cfg.when_under_18 if audience is Audience.UNDER_18 else cfg.when_adult
        if when == "always":
            return "always"
        if (
            when == "uncertain"
            and cfg.uncertain_band[0] <= self._ratio(audience, scores) < (cfg.uncertain_band[1])
        ):
            return "uncertain"
        return None

    def _ratio(self, audience: Audience, scores: dict[str, float]) -> float:
        thresholds = self.policy.thresholds(audience)
        ratios = [s / thresholds[c] for c, s in scores.items() if thresholds.get(c)]
        return max(ratios, default=0.0)

    def judge(self, conversation: Conversation, answer: str, audience: Audience) -> LayerOutcome:
        prompt = conversation.last_user_text
        classifier = self.classifier.get(audience)
        # A text-only judge (a moderation endpoint) reads the answer alone; others the exchange.
        items: list[ClassifierInput] = (
            list(answer_pieces(answer))
            if getattr(classifier, "input_kind", "exchange") == "text"
            else [Exchange(prompt, piece) for piece in answer_pieces(answer)]
        )
        out_trace, blocked = _judged(
            "output",
            classifier,
            items,
            timeout_s=self.timeout_s,
            on_error=self.on_error,
            audience=audience,
        )
        if out_trace.error:
            return _outcome([out_trace], blocked, out_trace)
        categories, scores = out_trace.categories, out_trace.scores
        due = self._monitor_due(audience, scores)
        if due is None or self.monitor is None:
            skipped = "disabled" if not self.monitor_config.enabled else "classifier confident"
            monitor_trace = LayerTrace(layer="monitor", ran=False, skipped=skipped)
            return LayerOutcome(
                [out_trace, monitor_trace],
                blocked=bool(categories),
                categories=categories,
                scores=scores,
            )
        return self._with_monitor(
            self.monitor.get(audience), conversation, answer, audience, out_trace, due
        )

    def _with_monitor(
        self,
        monitor: Classifier,
        conversation: Conversation,
        answer: str,
        audience: Audience,
        out_trace: LayerTrace,
        due: str,
    ) -> LayerOutcome:
        # The monitor reads the conversation as the user built it (the input layer's default
        # window), so a request assembled over turns is judged with the answer it produced.
        context = conversation.input_texts(window=6)[-1]
        start = time.perf_counter()
        try:
            (verdict,) = run_bounded(
                lambda: monitor.classify([Exchange(context, answer)]),
                self.monitor_config.timeout_s,
                "the policy monitor",
            )
        except Exception as exc:
            ms = (time.perf_counter() - start) * 1000
            trace, closed = _failure(
                "monitor", exc, self.monitor_config.on_error, audience, ms, _spec(monitor)
            )
            blocked = closed or out_trace.flagged
            return LayerOutcome(
                [out_trace, trace],
                blocked=blocked,
                categories=out_trace.categories,
                scores=out_trace.scores,
                failed=closed and not out_trace.flagged,
            )
        ms = (time.perf_counter() - start) * 1000
        monitor_trace = LayerTrace(
            layer="monitor",
            ran=True,
            skipped=None,
            flagged=verdict.flagged,
            categories=verdict.categories,
            scores=verdict.scores,
            clause=verdict.clause,
            rationale=verdict.rationale,
            error=verdict.error,
            label=due,
            ms=ms,
            component=_spec(monitor),
        )
        decides = due == "uncertain" and audience is Audience.ADULT
        blocked = verdict.flagged if decides else (verdict.flagged or out_trace.flagged)
        if verdict.flagged and (decides or not out_trace.flagged):
            categories = verdict.categories or out_trace.categories
            return LayerOutcome(
                [out_trace, monitor_trace],
                blocked=blocked,
                categories=categories,
                scores=out_trace.scores,
                clause=verdict.clause,
                rationale=verdict.rationale,
            )
        return LayerOutcome(
            [out_trace, monitor_trace],
            blocked=blocked,
            categories=out_trace.categories if blocked else [],
            scores=out_trace.scores,
            clause=verdict.clause if blocked else None,
            rationale=verdict.rationale if blocked else None,
        )

    def warm_up(self, audience: Audience) -> None:
        warm_up(self.classifier.get(audience))
        if self.monitor is not None:
            warm_up(self.monitor.get(audience))
