"""``/v1``: the OpenAI-compatible endpoints, with the safety stack in the middle.

Classifier inference and model calls are synchronous code; they run in worker threads (bounded
by ``workers``), never on the event loop, so one process serves many concurrent streams.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from functools import partial
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from safestack.classify import create_classifier
from safestack.gateway._auth import Caller, GatewayDep, HTTPProblem
from safestack.gateway._state import Gateway
from safestack.gateway._wire import (
    ChatCompletionRequest,
    ModerationRequest,
    SafestackExtension,
    message_text,
)
from safestack.policy import OPENAI_MODERATION_CATEGORIES, Audience
from safestack.stack import Decision, SafetyStack, StreamPiece, review_reasons
from safestack.store import Account

__all__ = ["router"]

_Stack = TypeVar("_Stack")

log = logging.getLogger("safestack.gateway")
router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

_TIMEOUT_ERRORS = ("ModelTimeoutError", "LayerTimeout")


def _served(stacks: Mapping[str, _Stack], model: str, *, what: str = "model") -> _Stack:
    """The stack serving ``model``; an unknown name is a 404 that lists the served ones."""
    stack = stacks.get(model)
    if stack is None:
        served = ", ".join(sorted(stacks))
        raise HTTPProblem(
            404,
            f"unknown {what} {model!r}; this gateway serves: {served}",
            code="model_not_found",
            param="model",
        )
    return stack


def _stack_for(gateway: Gateway, model: str) -> SafetyStack:
    return _served(gateway.stacks, model)


def _upstream_problem(model: str, decision: Decision) -> HTTPProblem:
    """A failed model call as 504 (it timed out) or 502 (it failed or answered garbage)."""
    error = decision.error or "the upstream model failed"
    if error.startswith(_TIMEOUT_ERRORS):
        return HTTPProblem(
            504,
            f"upstream model {model!r} timed out: {error}",
            type="upstream_error",
            code="upstream_timeout",
        )
    return HTTPProblem(
        502,
        f"upstream model {model!r} failed: {error}",
        type="upstream_error",
        code="upstream_error",
    )


def _extension(request_id: str, decision: Decision) -> dict[str, Any]:
    return SafestackExtension(
        request_id=request_id,
        status=decision.status,
        blocked=decision.blocked,
        layer=decision.layer,
        categories=decision.categories,
        clause=decision.clause,
        audience=decision.audience.value,
        stack=decision.stack,
    ).model_dump()


#: The most recent messages of a conversation a review item keeps.
REVIEW_MESSAGES = 20

#: Builds the request-specific part of a review item's details, given ``max_text_chars``; only
#: called for a request that is queued, so ordinary traffic never pays for the copy.
ReviewDetails = Callable[[int], dict[str, Any]]


def cut(text: str | None, limit: int) -> tuple[str | None, bool]:
    """``text`` cut to ``limit`` characters for a review item, and whether it was cut.

    NUL characters become U+FFFD: PostgreSQL cannot store them in a JSON document, and a user
    who sends one must not keep their request out of the queue.
    """
    if text is None:
        return None, False
    text = text.replace("\x00", "\ufffd")
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def chat_review_details(
    messages: list[dict[str, str]], answer: str, model_answer: str | None, limit: int
) -> dict[str, Any]:
    """The conversation (its last :data:`REVIEW_MESSAGES` messages), the answer the user got
    and the model's own text when the stack withheld it, each cut to ``limit`` characters."""
    kept: list[dict[str, str]] = []
    messages_cut = len(messages) > REVIEW_MESSAGES
    for message in messages[-REVIEW_MESSAGES:]:
        content, was_cut = cut(message["content"], limit)
        messages_cut = messages_cut or was_cut
        kept.append({"role": message["role"], "content": content or ""})
    shown, answer_cut = cut(answer, limit)
    withheld, model_answer_cut = cut(model_answer if model_answer != answer else None, limit)
    return {
        "messages": kept,
        "earlier_messages": max(0, len(messages) - REVIEW_MESSAGES),
        "answer": shown,
        "model_answer": withheld,
        "truncated": {
            "messages": messages_cut,
            "answer": answer_cut,
            "model_answer": model_answer_cut,
        },
    }


def _decision_summary(decision: Decision) -> dict[str, Any]:
    return {
        "status": decision.status,
        "blocked": decision.blocked,
        "layer": decision.layer,
        "categories": decision.categories,
        "scores": decision.scores,
        "clause": decision.clause,
        "rationale": decision.rationale,
        "audience": decision.audience.value,
        "stack": decision.stack,
    }


def _record(
    gateway: Gateway,
    account: Account,
    request_id: str,
    endpoint: str,
    model: str | None,
    decision: Decision,
    latency_ms: float,
    review_details: ReviewDetails,
) -> None:
    """Store the decision, apply strikes and queue it for review if it deserves a look.

    Runs in a worker thread. A red teamer's request (role ``red_teamer``) is recorded as
    ``red_team`` traffic: it never counts towards strikes, nor as real-world data, and is never
    queued (red teamers label their own exchanges in the console).

    Queueing comes last and its failure is logged (error level, with the request id), never
    raised: the user's answer does not depend on the review queue, and the decision row and any
    suspension are already written. The decision and the review item are separate transactions
    for the same reason.
    """
    red_team = account.role == "red_teamer"
    record = gateway.decision_record(
        decision,
        request_id=request_id,
        account_id=account.id,
        endpoint=endpoint,
        model=model,
        latency_ms=latency_ms,
        traffic="red_team" if red_team else "real_world",
    )
    severity = record.severity
    gateway.store.record_decision(record)
    if red_team:
        return
    strikes = gateway.config.strikes
    if (
        strikes.enabled
        and decision.layer in ("input", "output")
        and severity in strikes.severities
        and gateway.store.apply_strikes(account.id, strikes) is not None
    ):
        gateway.metrics.suspensions.inc()
        log.warning("account %s suspended after repeated violations", account.id)
    review = gateway.config.review
    if not review.enabled:
        return
    reasons = review_reasons(
        decision,
        gateway.policy,
        under_18_blocks=review.under_18_blocks,
        monitor_disagreements=review.monitor_disagreements,
        near_threshold=review.near_threshold,
    )
    if not reasons:
        return
    try:
        details = {
            "endpoint": endpoint,
            "model": model,
            **review_details(review.max_text_chars),
            "decision": _decision_summary(decision),
        }
        gateway.store.review.add(
            "decision",
            reasons=reasons,
            account_id=account.id,
            request_id=request_id,
            details=details,
        )
    except Exception as exc:  # the answer does not depend on the queue
        log.error("request %s: decision not queued for review (%s): %s", request_id, reasons, exc)


def _conversation(body: ChatCompletionRequest) -> list[dict[str, str]]:
    return [message_text(m) for m in body.messages]


@router.post(
    "/chat/completions",
    summary="Create a chat completion (streamed or not)",
    responses={
        200: {
            "description": "A chat completion, or with ``stream: true`` server-sent events of "
            "chat.completion.chunk objects ending with ``data: [DONE]``.",
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "properties": {"data": {"type": "string"}},
                        "required": ["data"],
                    }
                }
            },
        }
    },
)
async def chat_completions(
    body: ChatCompletionRequest, gateway: GatewayDep, account: Caller, request: Request
) -> Any:
    request_id = request.state.request_id
    stack = _stack_for(gateway, body.model)
    messages = _conversation(body)
    max_tokens = body.max_completion_tokens or body.max_tokens
    created = int(time.time())
    started = time.perf_counter()
    if body.stream:
        return await _stream(gateway, stack, account, body.model, messages, max_tokens, request_id)

    result = await anyio.to_thread.run_sync(
        lambda: stack.run(messages, audience=account.audience, max_tokens=max_tokens),
        limiter=gateway.limiter,
    )
    decision = result.decision
    gateway.metrics.observe_decision(decision)
    latency_ms = (time.perf_counter() - started) * 1000
    details = partial(chat_review_details, messages, result.answer, result.model_answer)
    await run_in_threadpool(
        _record, gateway, account, request_id, "chat", body.model, decision, latency_ms, details
    )
    if decision.status == "error":
        raise _upstream_problem(body.model, decision)
    finish = "content_filter" if decision.layer in ("input", "output") else "stop"
    completion = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "safestack": _extension(request_id, decision),
    }
    return JSONResponse(completion, headers={"Server-Timing": _server_timing(decision)})


def _server_timing(decision: Decision) -> str:
    """Where the time went (W3C Server-Timing): each layer, the model, and all safety layers.

    Lets a client or a benchmark separate the gateway's own overhead from the classifiers'
    and the upstream's time without access to the server's metrics.
    """
    return ", ".join(
        f"{name};dur={ms:.3f}" for name, ms in decision.timings_ms.items() if name != "total"
    )


async def _stream(
    gateway: Gateway,
    stack: SafetyStack,
    account: Account,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int | None,
    request_id: str,
) -> StreamingResponse:
    """Server-sent events; the first piece is computed before the response starts.

    So a bad request, an input-layer refusal or a model that fails before its first window are
    known while an HTTP status can still say so.
    """
    started = time.perf_counter()
    pieces: Generator[StreamPiece, None, None] = stack.stream(
        messages,
        audience=account.audience,
        window_chars=gateway.config.stream_window_chars,
        max_tokens=max_tokens,
    )

    def next_piece() -> StreamPiece | None:
        return next(pieces, None)

    first = await anyio.to_thread.run_sync(next_piece, limiter=gateway.limiter)
    if first is not None and first.decision is not None and first.decision.status == "error":
        gateway.metrics.observe_decision(first.decision)
        latency_ms = (time.perf_counter() - started) * 1000
        details = partial(chat_review_details, messages, first.text, None)
        await run_in_threadpool(
            _record,
            gateway,
            account,
            request_id,
            "chat.stream",
            model,
            first.decision,
            latency_ms,
            details,
        )
        raise _upstream_problem(model, first.decision)
    chunk_id, created = f"chatcmpl-{request_id}", int(time.time())

    def event(
        delta: dict[str, Any], finish: str | None, extra: dict[str, Any] | None = None
    ) -> bytes:
        chunk: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if extra:
            chunk.update(extra)
        return f"data: {json.dumps(chunk)}\n\n".encode()

    async def events() -> AsyncIterator[bytes]:
        piece = first
        sent: list[str] = []  # what the user got, for the review queue
        try:
            yield event({"role": "assistant", "content": ""}, None)
            while piece is not None:
                if piece.text:
                    sent.append(piece.text)
                    yield event({"content": piece.text}, None)
                if piece.decision is not None:
                    decision = piece.decision
                    gateway.metrics.observe_decision(decision)
                    yield event(
                        {},
                        piece.finish_reason,
                        {"safestack": _extension(request_id, decision)},
                    )
                    latency_ms = (time.perf_counter() - started) * 1000
                    try:
                        await run_in_threadpool(
                            _record,
                            gateway,
                            account,
                            request_id,
                            "chat.stream",
                            model,
                            decision,
                            latency_ms,
                            # A stream's last piece does not carry the text it withheld.
                            partial(chat_review_details, messages, "".join(sent), None),
                        )
                    except Exception as exc:  # the answer is out; the record is what failed
                        log.error("request %s: decision not recorded: %s", request_id, exc)
                    break
                piece = await anyio.to_thread.run_sync(next_piece, limiter=gateway.limiter)
            yield b"data: [DONE]\n\n"
        finally:  # also when the client went away: stop pulling from the upstream
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pieces.close)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/moderations", summary="Classify text against the policy (OpenAI's shape)")
async def moderations(body: ModerationRequest, gateway: GatewayDep, account: Caller) -> Any:
    texts = [body.input] if isinstance(body.input, str) else body.input
    stack = next(iter(gateway.stacks.values()))
    audience = Audience(account.audience)
    if stack.input_layer is not None:
        classifier = stack.input_layer.classifier.get(audience)
    else:
        classifier = create_classifier("embedded-prompt", policy=stack.policy, audience=audience)
    verdicts = await anyio.to_thread.run_sync(
        lambda: classifier.classify(texts), limiter=gateway.limiter
    )
    results = []
    for verdict in verdicts:
        flags = dict.fromkeys(sorted(OPENAI_MODERATION_CATEGORIES), False)
        scores = dict.fromkeys(sorted(OPENAI_MODERATION_CATEGORIES), 0.0)
        for category in stack.policy.categories:
            score = float(verdict.scores.get(category.id, 0.0))
            for name in category.openai:
                scores[name] = max(scores[name], score)
                flags[name] = flags[name] or category.id in verdict.categories
        results.append(
            {
                "flagged": verdict.flagged,
                "categories": flags,
                "category_scores": scores,
                "safestack": {"categories": verdict.categories, "scores": verdict.scores},
            }
        )
    return {
        "id": f"modr-{uuid.uuid4().hex}",
        "model": classifier.spec.name,
        "results": results,
    }


@router.get("/models", summary="The model names this gateway serves")
async def list_models(gateway: GatewayDep, account: Caller) -> Any:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "safestack"}
            for name in sorted(gateway.stacks)
        ],
    }
