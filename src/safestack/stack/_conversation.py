"""Turning a request into the texts each layer judges.

The input layer reads the conversation, not only the last message: an attack spread over turns
("I'm writing a thriller." … "Now the exact quantities.") is harmless in every single message. It
judges two texts and keeps, per category, the higher score:

* the last user (or tool) message on its own — so a long, benign history cannot dilute it;
* the latest ``window`` user and tool messages joined in order — so a request assembled over turns
  is read whole. Assistant and system messages are not judged: the assistant's words were already
  checked on the way out, and the system prompt is the operator's, not the user's.

Texts longer than a classifier reads at once are cut into overlapping chunks that are judged
separately, so that nothing in a long message goes unread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from safestack.classify._embedding import MAX_WINDOWS, WINDOW_CHARS, WINDOW_OVERLAP
from safestack.classify._inputs import clean_text
from safestack.errors import InputError
from safestack.models import ChatMessage
from safestack.models._protocol import as_conversation as validated_messages

__all__ = ["Conversation", "chunks", "conversation_from"]

JUDGED_ROLES = ("user", "tool")
#: The longest text a classifier reads whole: MAX_WINDOWS overlapping windows, none skipped.
_CHUNK = (WINDOW_CHARS - WINDOW_OVERLAP) * (MAX_WINDOWS - 1) + WINDOW_CHARS
_OVERLAP = WINDOW_CHARS


class Conversation:
    """A validated request: its messages, and the texts the layers judge."""

    def __init__(self, messages: list[ChatMessage]) -> None:
        self.messages = messages

    @property
    def last_user_text(self) -> str:
        return next(m.content for m in reversed(self.messages) if m.role in JUDGED_ROLES)

    def input_texts(self, window: int) -> list[str]:
        """The texts the input layer judges (see the module docstring)."""
        judged = [m.content for m in self.messages if m.role in JUDGED_ROLES][-window:]
        last = judged[-1]
        if len(judged) == 1:
            return [last]
        return [last, "\n\n".join(judged)]

    @property
    def chars(self) -> int:
        return sum(len(m.content) for m in self.messages)


def conversation_from(
    request: str | Sequence[ChatMessage | Mapping[str, Any]], *, max_chars: int
) -> Conversation:
    """Validate a request: a prompt, or chat messages as models or ``{"role", "content"}`` dicts.

    Raises :class:`InputError` naming the message at fault (see the models' validation: empty
    conversation, unknown role, content that is not text or not UTF-8, a conversation that does
    not end with a user or tool message), or for a conversation longer than ``max_chars``.
    """
    if isinstance(request, str | bytes):
        request = [ChatMessage(role="user", content=clean_text(request, where="prompt"))]
    conversation = Conversation(validated_messages(request))
    if conversation.chars > max_chars:
        raise InputError(
            f"the conversation is {conversation.chars:,} characters long; this stack accepts at "
            f"most {max_chars:,} (max_chars in the stack configuration)"
        )
    return conversation


def chunks(text: str) -> list[str]:
    """``text`` cut into overlapping pieces that a classifier reads entirely (one if short)."""
    if len(text) <= _CHUNK:
        return [text]
    step = _CHUNK - _OVERLAP
    return [text[s : s + _CHUNK] for s in range(0, len(text) - _OVERLAP, step)]
