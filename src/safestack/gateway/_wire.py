"""The OpenAI request and response shapes the gateway speaks, plus its ``safestack`` extension.

Requests accept what the ``openai`` client sends and ignore sampling fields the stack does not
forward (``temperature``, ``top_p`` …) rather than rejecting them, so clients work unchanged.
Responses add one field, ``safestack``, that clients which do not know it simply ignore.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.errors import InputError

__all__ = [
    "ChatCompletionRequest",
    "ErrorBody",
    "ModerationRequest",
    "SafestackExtension",
    "error_body",
    "message_text",
]


class RequestMessage(BaseModel):
    """One message of a chat request. ``developer`` is OpenAI's newer name for ``system``."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``: the fields the gateway acts on."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    messages: list[RequestMessage] = Field(min_length=1, max_length=2048)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=1, description="One choice per request.")


class ModerationRequest(BaseModel):
    """``POST /v1/moderations``: one text or a list of texts."""

    model_config = ConfigDict(extra="allow")

    input: str | list[str]
    model: str | None = None


class SafestackExtension(BaseModel):
    """What the stack decided, on every completion and on the last chunk of a stream."""

    request_id: str
    status: str
    blocked: bool
    layer: str | None
    categories: list[str]
    clause: str | None = None
    audience: str
    stack: str


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None
    reason: str | None = Field(default=None, description="Why, for a banned account.")
    request_id: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape, which the ``openai`` client turns into typed exceptions."""

    error: ErrorDetail


def error_body(
    message: str,
    *,
    type: str,
    code: str | None = None,
    param: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    detail = ErrorDetail(
        message=message, type=type, code=code, param=param, reason=reason, request_id=request_id
    )
    return ErrorBody(error=detail).model_dump(exclude_none=True)


def message_text(index: int, message: RequestMessage) -> dict[str, str]:
    """A request message as the stack's ``{"role", "content"}``; text parts are joined.

    Image parts are refused with a clear error rather than dropped: a model must not answer a
    request whose images no safety layer looked at.
    """
    role = "system" if message.role == "developer" else message.role
    content = message.content
    if content is None:
        return {"role": role, "content": ""}
    if isinstance(content, str):
        return {"role": role, "content": content}
    texts: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("image_url", "input_image", "image"):
            raise InputError(
                f"messages.{index}.content.{j}: image inputs are not accepted on "
                "/v1/chat/completions; only text parts are"
            )
        else:
            raise InputError(
                f"messages.{index}.content.{j}: unsupported content part {kind!r}; "
                "expected {'type': 'text', 'text': '...'}"
            )
    return {"role": role, "content": "\n".join(texts)}
