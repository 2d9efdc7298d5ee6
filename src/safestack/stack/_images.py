"""The image path of the safety stack: generations and edits, checked on the way in and out.

One image request flows::

    prompt ──► text classifiers (the chat stack's input layer) ──► prompt rules
               (living-artist styles, public figures who are minors, opted-out people)
    upload ──► decode (refused if it cannot be decoded) ──► known-bad hash matching
               ──► image classifiers (sexual content, photorealistic person / minor)
               ──► opted-out faces ──► no edits of photorealistic minors
           ──► image model
    output ──► decode ──► hash matching ──► image classifiers ──► opted-out faces

Every check reports a :class:`LayerTrace` (``input`` before the model, ``output`` after), so an
image request has the same :class:`Decision` as a chat request and the gateway logs, meters and
enforces both alike.

Failure modes differ from the chat path on purpose: **every image check fails closed, for
every audience.** A chat answer that could not be judged can be withheld and the prompt retried;
an image that could not be checked for sexual content involving a minor, or that could not be
hashed against known-bad media, must never pass.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from safestack.classify import Classifier, Verdict
from safestack.errors import ImageError, InputError, ModelError
from safestack.hashing._types import Action, ImageHashes, Match
from safestack.media import DEFAULT_LIMITS, DecodedImage, ImageLimits, decode_image
from safestack.models.images import MAX_IMAGES, ImageModel
from safestack.policy import Audience, Policy, default_policy
from safestack.stack._conversation import conversation_from
from safestack.stack._decision import ActingLayer, Decision, LayerName, LayerTrace, Status
from safestack.stack._layers import InputLayer, run_bounded
from safestack.stack._refusal import refusal_message, unavailable_message

__all__ = ["PHOTOREALISTIC_CHILD", "HashMatching", "ImageResult", "ImageSafetyStack"]

#: The person label under which an upload may not be edited (the published card's rule).
PHOTOREALISTIC_CHILD = "photorealistic_child"
#: The category a known-bad media match is recorded under: hash banks hold confirmed
#: child-sexual-abuse material first of all, and this category has no exceptions.
KNOWN_BAD_CATEGORY = "sexual_minors"
#: Edits of photorealistic minors are refused under the privacy category: the upload is
#: usually an ordinary family photograph, so the refusal must not count as a severe strike.
MINOR_EDIT_CATEGORY = "privacy"


class HashMatching(Protocol):
    """What the stack needs of known-bad media matching (see :mod:`safestack.hashing`)."""

    def match(self, hashes: ImageHashes) -> Match | None: ...


@dataclass
class ImageResult:
    """The images for the caller (empty when blocked), the decision, and what enforcement needs.

    ``hash_match`` is set whenever an upload or an output matched a known-bad bank, whether or
    not that bank rejects: the caller (the gateway) reports and bans according to the bank's
    actions. ``upload_hashes`` / ``output_hashes`` let it record the evidence without the bytes.
    """

    images: list[bytes]
    decision: Decision
    refusal: str | None = None
    hash_match: Match | None = None
    matched_hashes: ImageHashes | None = None
    upload_hashes: ImageHashes | None = None
    output_hashes: list[ImageHashes] = field(default_factory=list)


@dataclass
class _Check:
    """One request's running state: traces so far, and the first block."""

    audience: Audience
    started: float
    trace: list[LayerTrace] = field(default_factory=list)
    blocked: LayerTrace | None = None
    hash_match: Match | None = None
    matched_hashes: ImageHashes | None = None

    def add(self, trace: LayerTrace) -> bool:
        self.trace.append(trace)
        if trace.flagged and self.blocked is None:
            self.blocked = trace
        return trace.flagged


class ImageSafetyStack:
    """Safety checks around an image model, for one generation or edit at a time.

    Parts that are ``None`` are off: ``prompt_layer`` (the chat stack's input layer, so prompts
    are judged by the same text classifiers as chat), ``prompt_rules`` (text classifiers such as
    the living-artist and public-figure rules), ``image_classifier`` (one verdict per image with
    a person label; categories thresholded by the policy per audience), ``face_matcher`` (an
    image classifier that flags opted-out people), ``hash_matcher`` with ``hash_image``.
    """

    def __init__(
        self,
        *,
        model: ImageModel,
        policy: Policy | None = None,
        prompt_layer: InputLayer | None = None,
        prompt_rules: Sequence[Classifier] = (),
        image_classifier: Classifier | None = None,
        face_matcher: Classifier | None = None,
        hash_matcher: HashMatching | None = None,
        hash_image: Callable[[DecodedImage], ImageHashes] | None = None,
        limits: ImageLimits = DEFAULT_LIMITS,
        model_timeout_s: float = 180.0,
        check_timeout_s: float = 60.0,
        max_prompt_chars: int = 32_000,
        name: str = "images",
    ) -> None:
        if hash_matcher is not None and hash_image is None:
            from safestack.hashing import hash_image as default_hash_image

            hash_image = default_hash_image
        self.model = model
        self.policy = policy or default_policy()
        self.prompt_layer = prompt_layer
        self.prompt_rules = list(prompt_rules)
        self.image_classifier = image_classifier
        self.face_matcher = face_matcher
        self.hash_matcher = hash_matcher
        self.hash_image = hash_image
        self.limits = limits
        self.model_timeout_s = model_timeout_s
        self.check_timeout_s = check_timeout_s
        self.max_prompt_chars = max_prompt_chars
        self.name = name

    def with_model(self, model: ImageModel, *, name: str | None = None) -> ImageSafetyStack:
        """The same checks (and loaded components) around another image model."""
        twin = copy.copy(self)  # components are shared, never mutated per stack
        twin.model = model
        twin.name = name or self.name
        return twin

    def warm_up(self, audience: Audience | str = Audience.ADULT) -> None:
        """Load the classifiers' weights before the first request."""
        who = Audience(audience)
        if self.prompt_layer is not None:
            self.prompt_layer.warm_up(who)
        for component in (*self.prompt_rules, self.image_classifier, self.face_matcher):
            # Image classifiers load their weights with load(); others may offer warm_up().
            for name in ("warm_up", "load"):
                warm = getattr(component, name, None)
                if callable(warm):
                    warm()
                    break

    # -- requests ------------------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        *,
        audience: Audience | str = Audience.ADULT,
        n: int = 1,
        size: str | None = None,
    ) -> ImageResult:
        """Judge the prompt, make the images, judge every image; the images or a refusal.

        Raises :class:`~safestack.errors.InputError` for a prompt that cannot be judged (empty,
        too long).
        """
        _check_count(n)
        check = _Check(Audience(audience), time.perf_counter())
        self._judge_prompt(prompt, check)
        if check.blocked is not None:
            return self._refused(check, "input")
        return self._call_and_judge(
            lambda: self.model.generate(prompt, n=n, size=size), check, upload=None
        )

    def edit(
        self,
        image: bytes | DecodedImage,
        prompt: str,
        *,
        audience: Audience | str = Audience.ADULT,
        mask: bytes | None = None,
        n: int = 1,
        size: str | None = None,
    ) -> ImageResult:
        """Judge the upload and the prompt, edit, judge every output.

        An upload that cannot be decoded raises :class:`~safestack.errors.ImageError` (the
        request is refused as bad input; nothing about it is passed on). So does a mask.
        """
        _check_count(n)
        check = _Check(Audience(audience), time.perf_counter())
        upload = image if isinstance(image, DecodedImage) else decode_image(image, self.limits)
        if mask is not None:
            decode_image(mask, self.limits)
        upload_hashes = self._judge_image(upload, check, "input")
        if check.blocked is None:
            self._judge_prompt(prompt, check)
        if check.blocked is not None:
            result = self._refused(check, "input")
            result.upload_hashes = upload_hashes
            return result
        result = self._call_and_judge(
            lambda: self.model.edit(upload.data, prompt, mask=mask, n=n, size=size),
            check,
            upload=upload,
        )
        result.upload_hashes = upload_hashes
        return result

    # -- steps ---------------------------------------------------------------------------------

    def _judge_prompt(self, prompt: str, check: _Check) -> None:
        conversation = conversation_from(prompt, max_chars=self.max_prompt_chars)
        if self.prompt_layer is None:
            check.add(LayerTrace(layer="input", ran=False, skipped="disabled"))
        else:
            outcome = self.prompt_layer.judge(conversation, check.audience)
            for trace in outcome.traces:
                check.add(trace.model_copy(update={"flagged": outcome.blocked}))
            if check.blocked is not None:
                return
        for rule in self.prompt_rules:
            if check.add(self._run("input", rule, [conversation.last_user_text], check)):
                return

    def _judge_image(
        self, image: DecodedImage, check: _Check, layer: LayerName
    ) -> ImageHashes | None:
        """Hash matching, then the classifiers, then faces; stops at the first block."""
        hashes = None
        if self.hash_matcher is not None and self.hash_image is not None:
            hashes = self._match_hashes(image, check, layer)
            if check.blocked is not None:
                return hashes
        if self.image_classifier is not None:
            trace = self._run(layer, self.image_classifier, [image], check, thresholded=True)
            if (
                layer == "input"
                and not trace.flagged
                and trace.label == PHOTOREALISTIC_CHILD
                and not trace.error
            ):
                trace = trace.model_copy(
                    update={
                        "flagged": True,
                        "categories": [MINOR_EDIT_CATEGORY],
                        "label": "photorealistic_minor_edit",
                        "rationale": "the uploaded image appears to show a child, and edits "
                        "of photorealistic images of minors are not allowed",
                    }
                )
            if check.add(trace):
                return hashes
        if self.face_matcher is not None:
            check.add(self._run(layer, self.face_matcher, [image], check))
        return hashes

    def _match_hashes(
        self, image: DecodedImage, check: _Check, layer: LayerName
    ) -> ImageHashes | None:
        assert self.hash_matcher is not None and self.hash_image is not None
        start = time.perf_counter()
        component = {"name": "hash-matching", "version": "1", "args": {}}
        try:
            hashes = self.hash_image(image)
            match = self.hash_matcher.match(hashes)
        except Exception as exc:  # fail closed: an image that was not matched never passes
            check.add(
                LayerTrace(
                    layer=layer,
                    ran=True,
                    flagged=True,
                    categories=[KNOWN_BAD_CATEGORY],
                    label="hash_matching_failed",
                    error=f"{type(exc).__name__}: {exc}; blocked (fail-closed)",
                    ms=_ms(start),
                    component=component,
                )
            )
            return None
        if match is None:
            check.add(LayerTrace(layer=layer, ran=True, ms=_ms(start), component=component))
            return hashes
        if check.hash_match is None:
            check.hash_match, check.matched_hashes = match, hashes
        rejects = Action.REJECT in match.actions
        how = f"PDQ distance {match.distance}" if match.distance is not None else "exact"
        check.add(
            LayerTrace(
                layer=layer,
                ran=True,
                flagged=rejects,
                categories=[KNOWN_BAD_CATEGORY],
                scores={KNOWN_BAD_CATEGORY: 1.0},
                label="known_bad_media",
                rationale=f"matched hash bank {match.bank!r} ({match.hash_type}, {how})",
                ms=_ms(start),
                component=component,
            )
        )
        return hashes

    def _run(
        self,
        layer: LayerName,
        classifier: Classifier,
        items: list[Any],
        check: _Check,
        *,
        thresholded: bool = False,
    ) -> LayerTrace:
        """One classifier within its budget; its trace (failures block: fail-closed)."""
        start = time.perf_counter()
        try:
            spec: dict[str, Any] | None = classifier.spec.model_dump()
        except Exception:
            spec = None
        try:
            verdicts: list[Verdict] = run_bounded(
                lambda: classifier.classify(items), self.check_timeout_s, f"the {layer} check"
            )
        except Exception as exc:
            return LayerTrace(
                layer=layer,
                ran=True,
                flagged=True,
                error=f"{type(exc).__name__}: {exc}; blocked (fail-closed)",
                ms=_ms(start),
                component=spec,
            )
        scores: dict[str, float] = {}
        flagged: set[str] = set()
        for verdict in verdicts:
            for category, score in verdict.scores.items():
                scores[category] = max(scores.get(category, 0.0), score)
            flagged.update(verdict.categories)
            if verdict.error:
                flagged.update(verdict.categories or [KNOWN_BAD_CATEGORY])
        if thresholded:  # the policy's threshold for this audience applies to image scores too
            limits = self.policy.thresholds(check.audience)
            flagged.update(c for c, s in scores.items() if c in limits and s >= limits[c])
        categories = sorted(flagged, key=lambda c: -scores.get(c, 1.0))
        errors = [v.error for v in verdicts if v.error]
        return LayerTrace(
            layer=layer,
            ran=True,
            flagged=bool(categories),
            categories=categories,
            scores=scores,
            label=_worst_label(verdicts),
            rationale=next((v.rationale for v in verdicts if v.flagged and v.rationale), None),
            error="; ".join(errors) if errors else None,
            ms=_ms(start),
            component=spec,
        )

    def _call_and_judge(
        self, call: Callable[[], list[bytes]], check: _Check, *, upload: DecodedImage | None
    ) -> ImageResult:
        start = time.perf_counter()
        try:
            spec: dict[str, Any] | None = self.model.spec.model_dump()
        except Exception:
            spec = None
        try:
            outputs = run_bounded(call, self.model_timeout_s, "the image model")
            if not outputs:
                raise ModelError("the image model returned no image")
        except Exception as exc:  # any failure of the model is a decision, not a crash
            error = f"{type(exc).__name__}: {exc}"
            check.trace.append(
                LayerTrace(layer="model", ran=True, error=error, ms=_ms(start), component=spec)
            )
            decision = self._decision(check, "error", None, error=error)
            return ImageResult(images=[], decision=decision, refusal=unavailable_message(error))
        check.trace.append(LayerTrace(layer="model", ran=True, ms=_ms(start), component=spec))

        output_hashes: list[ImageHashes] = []
        for index, data in enumerate(outputs):
            try:
                decoded = decode_image(data, self.limits)
            except ImageError as exc:
                check.add(
                    LayerTrace(
                        layer="output",
                        ran=True,
                        flagged=True,
                        label="undecodable_output",
                        error=f"output image {index}: {exc}; blocked (fail-closed)",
                    )
                )
                break
            hashes = self._judge_image(decoded, check, "output")
            if hashes is not None:
                output_hashes.append(hashes)
            if check.blocked is not None:
                break
        if check.blocked is not None:
            result = self._refused(check, "output")
            result.output_hashes = output_hashes
            return result
        decision = self._decision(check, "answered", None)
        return ImageResult(
            images=list(outputs),
            decision=decision,
            hash_match=check.hash_match,
            matched_hashes=check.matched_hashes,
            output_hashes=output_hashes,
        )

    # -- decisions -----------------------------------------------------------------------------

    def _refused(self, check: _Check, layer: ActingLayer) -> ImageResult:
        acting = check.blocked
        assert acting is not None
        categories = acting.categories
        failed = acting.error is not None
        decision = self._decision(
            check,
            "blocked",
            layer,
            categories=categories,
            scores=acting.scores,
            rationale=acting.rationale,
            error=acting.error,
        )
        if acting.label and acting.rationale and not failed and acting.label != "known_bad_media":
            # A specific rule acted (an artist's style, an opted-out person, a minor's photo):
            # its own reason says more than the category's first rule. A known-bad match is
            # never explained to the uploader (which bank, how close): that would teach evasion.
            refusal = f"I can't create this image: {acting.rationale}."
        else:
            refusal = refusal_message(
                self.policy,
                categories,
                audience=check.audience,
                reason="a safety check could not be completed" if failed else None,
            )
        return ImageResult(
            images=[],
            decision=decision,
            refusal=refusal,
            hash_match=check.hash_match,
            matched_hashes=check.matched_hashes,
        )

    def _decision(
        self,
        check: _Check,
        status: Status,
        layer: ActingLayer | None,
        *,
        categories: list[str] | None = None,
        scores: dict[str, float] | None = None,
        rationale: str | None = None,
        error: str | None = None,
    ) -> Decision:
        timings: dict[str, float] = {}
        for t in check.trace:
            if t.ran:
                timings[t.layer] = round(timings.get(t.layer, 0.0) + t.ms, 3)
        timings["added"] = round(sum(ms for n, ms in timings.items() if n != "model"), 3)
        timings["total"] = round(_ms(check.started), 3)
        return Decision(
            status=status,
            blocked=layer is not None,
            layer=layer,
            categories=categories or [],
            scores=scores or {},
            rationale=rationale,
            audience=check.audience,
            stack=self.name,
            error=error,
            trace=check.trace,
            timings_ms=timings,
        )


_LABEL_RANK = {PHOTOREALISTIC_CHILD: 2, "photorealistic_adult": 1}


def _worst_label(verdicts: Sequence[Verdict]) -> str | None:
    """The most restrictive label among the verdicts (a child in any frame makes it child)."""
    labels = [v.label for v in verdicts if v.label]
    if not labels:
        return None
    return max(labels, key=lambda label: _LABEL_RANK.get(label, 0))


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise InputError(f"n must be an integer from 1 to {MAX_IMAGES}, got {n!r}")


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
