"""What every wrapped model takes and returns, and the one protocol it implements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from safestack.classify._inputs import clean_text
from safestack.errors import InputError

__all__ = ["ChatMessage", "ModelAdapter", "ModelReply", "ModelSpec", "Role", "as_conversation"]

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
#: Roles a model can answer: the conversation must end with one of them.
_ANSWERABLE: tuple[Role, ...] = ("user", "tool")


class ChatMessage(BaseModel):
    """One turn of a conversation, in the OpenAI chat shape.

    ``content`` is cleaned like every text safestack judges (bytes must be UTF-8, lone
    surrogates are replaced) at construction, so what the model sees is exactly what the
    classifiers saw. Unknown fields are rejected: a misspelt ``text=`` must not become an empty
    message.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _clean(cls, value: object) -> str:
        return clean_text(value, where="message content")


class ModelSpec(BaseModel):
    """Enough to say, from a log alone, which model answered and how it was configured.

    Never holds a secret: endpoints appear without credentials, keys not at all.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Registry name, e.g. 'recorded' or 'openai'.")
    version: str = Field(description="Version of the adapter (or of the data it replays).")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments that matter.")


class ModelReply(BaseModel):
    """One completion: the text, why it stopped, and who produced it."""

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: str | None = Field(
        default=None,
        description="The upstream's reason ('stop', 'length', 'content_filter', …); 'refusal' "
        "when the upstream answered with a structured refusal instead of content.",
    )
    model: str = Field(
        description="The model id the upstream reported, or the recorded setup that answered."
    )
    spec: ModelSpec


@runtime_checkable
class ModelAdapter(Protocol):
    """Anything the safety stack can wrap: a conversation in, text out, whole or streamed.

    ``generate`` and ``stream`` take the same conversation; ``stream`` yields text deltas in
    order. Both raise :class:`~safestack.errors.InputError` for a conversation that cannot be
    sent (empty, or not ending with a ``user`` or ``tool`` message) and a
    :class:`~safestack.errors.ModelError` when the model gives no usable answer. Adapters
    connect and load data lazily, on first use, never at construction or import.
    """

    @property
    def spec(self) -> ModelSpec: ...

    def generate(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> ModelReply: ...

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Iterator[str]: ...


def as_conversation(messages: Sequence[ChatMessage | Mapping[str, Any]]) -> list[ChatMessage]:
    """Check a conversation once at the adapter boundary; errors name the message.

    Mappings with ``role`` and ``content`` (the JSON of an OpenAI request) are accepted beside
    :class:`ChatMessage`, because that is what a gateway receives.
    """
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InputError(
            "a conversation is a list of ChatMessage(role=..., content=...), "
            f"got {type(messages).__name__} {messages!r:.60}"
        )
    if not messages:
        raise InputError("the conversation is empty; send at least one user message")
    out: list[ChatMessage] = []
    for i, raw in enumerate(messages):
        if isinstance(raw, ChatMessage):
            out.append(raw)
            continue
        if not isinstance(raw, Mapping):
            raise InputError(
                f"message {i}: expected a ChatMessage or a mapping with role and content, "
                f"got {type(raw).__name__} {raw!r:.60}"
            )
        try:
            out.append(ChatMessage.model_validate(dict(raw)))
        except InputError as exc:
            raise InputError(f"message {i}: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise InputError(
                f"message {i}: {problems} (roles allowed: {', '.join(ROLES)})"
            ) from None
    last = out[-1].role
    if last not in _ANSWERABLE:
        raise InputError(
            f"the conversation ends with a {last!r} message; the model answers the last "
            f"message, which must come from {' or '.join(repr(r) for r in _ANSWERABLE)}"
        )
    return out
