"""Replaying a sample's own recorded answer, so the stack's layers can be judged on real attacks.

JailbreakBench ships each attack prompt with the target model's real reply. To measure what prompt
and output blocking do to those attacks, the stack must see exactly that reply for exactly that
sample — even when several targets received the same prompt and answered differently, which a
prompt-keyed replay cannot tell apart. The evaluation sets :data:`recorded_response` around each
sample; :class:`SampleReplayModel` answers with it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence

from safestack.errors import NoRecordingError
from safestack.models import ChatMessage, ModelReply, ModelSpec

__all__ = ["SampleReplayModel", "recorded_response"]

recorded_response: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "recorded_response", default=None
)


class SampleReplayModel:
    """A model whose answer is the recorded response of the sample being evaluated."""

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(name="sample-replay", version="1", args={})

    def generate(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> ModelReply:
        text = recorded_response.get()
        if text is None:
            raise NoRecordingError("this sample carries no recorded response to replay")
        return ModelReply(text=text, finish_reason="stop", model="sample-replay", spec=self.spec)

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Iterator[str]:
        yield self.generate(messages, max_tokens=max_tokens).text
