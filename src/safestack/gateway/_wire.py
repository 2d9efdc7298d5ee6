"""The OpenAI request and response shapes the gateway speaks, plus its ``safestack`` extension.

Requests accept what the ``openai`` client sends and ignore sampling fields the stack does not
forward (``temperature``, ``top_p`` …) rather than rejecting them, so clients work unchanged.
Responses add one field, ``safestack``, that clients which do not know it simply ignore.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "MAX_MODERATION_INPUTS",
    "NO_NUL_PATTERN",
    "TEXT_PATTERN",
    "ChatCompletionRequest",
    "ErrorBody",
    "ModerationRequest",
    "SafestackExtension",
    "error_body",
    "message_text",
]

#: Some text, and no NUL character: the store refuses blank text and NULs (PostgreSQL cannot
#: keep them), so request schemas say so rather than a 400 surprising a client that followed
#: them. Bodies that use it validate with Python's regular expressions (``regex_engine``), as
#: the fuzzers that read the schema do: what the schema allows is what the route accepts.
TEXT_PATTERN = r"^\s*[^\s\x00][^\x00]*$"
#: Any text without a NUL character (optional notes and descriptions).
NO_NUL_PATTERN = r"^[^\x00]*$"


#: Texts one moderation request may hold.
MAX_MODERATION_INPUTS = 256

_IMAGE_PARTS = ("image_url", "input_image", "image", "input_audio", "file")


class TextPart(BaseModel):
    """A text part of a message's content, ``{"type": "text", "text": "..."}``."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text"]
    text: str


class RequestMessage(BaseModel):
    """One message of a chat request. ``developer`` is OpenAI's newer name for ``system``."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _no_media(cls, value: Any) -> Any:
        # Said plainly, before the union's "does not match any of the expected tags": a model
        # must not answer a request whose images no safety layer looked at.
        if isinstance(value, list):
            for j, part in enumerate(value):
                if isinstance(part, dict) and part.get("type") in _IMAGE_PARTS:
                    raise ValueError(
                        f"part {j} is {part['type']!r}: only text parts are accepted on "
                        "/v1/chat/completions"
                    )
        return value


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

    input: str | Annotated[list[str], Field(min_length=1, max_length=MAX_MODERATION_INPUTS)]
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


def message_text(message: RequestMessage) -> dict[str, str]:
    """A request message as the stack's ``{"role", "content"}``; text parts are joined."""
    role = "system" if message.role == "developer" else message.role
    content = message.content
    if content is None:
        return {"role": role, "content": ""}
    if isinstance(content, str):
        return {"role": role, "content": content}
    return {"role": role, "content": "\n".join(part.text for part in content)}
