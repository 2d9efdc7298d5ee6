"""Any model behind an OpenAI-compatible ``POST /chat/completions``: hosted APIs, vLLM, TGI,
llama.cpp's server, Ollama.

Spoken over plain httpx (the shared :mod:`safestack.http_endpoint` transport), not the ``openai``
package: the adapter needs one route, and the transport already has the retries, timeouts and
key masking that every remote component shares.

Decisions a reader may look for:

* A structured refusal (``message.refusal`` with no ``content``, as OpenAI returns under
  structured outputs) is the model's answer, not a failure: it comes back as ``text`` with
  ``finish_reason="refusal"``, so the stack's refusal detection and the user both see it. In a
  stream, refusal deltas are yielded like content deltas.
* ``finish_reason="content_filter"`` (the upstream's own filter) is returned as it is, with
  whatever text came before the cut.
* An answer without text (tool calls only) is a :class:`~safestack.errors.ModelError`: the
  adapter does not support tools. ``tool`` messages are sent as they are; endpoints that
  require a ``tool_call_id`` will reject them with an HTTP 400, which is reported.
* ``max_tokens`` is sent as ``max_tokens``, the field every compatible server reads (OpenAI's
  newer ``max_completion_tokens`` is not).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from safestack.errors import InputError, ModelError, ModelTimeoutError, SafestackError
from safestack.http_endpoint import ChatCompletion, HTTPEndpoint, describe_validation_error
from safestack.models._protocol import ChatMessage, ModelReply, ModelSpec, as_conversation
from safestack.models._registry import register_model

__all__ = ["OpenAICompatibleModel"]

_PATH = "chat/completions"
_DONE = "[DONE]"
_SHOW = 120


class _Delta(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    content: str | None = None
    refusal: str | None = None


class _ChunkChoice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int = 0
    delta: _Delta = _Delta()
    finish_reason: str | None = None


class _Chunk(BaseModel):
    # ``choices`` may be empty: a usage-only chunk, or Azure's prompt-filter chunk.
    model_config = ConfigDict(extra="ignore", frozen=True)

    choices: list[_ChunkChoice]


def _show(text: str) -> str:
    return repr(text if len(text) <= _SHOW else text[: _SHOW - 3] + "...")


def _positive_int_or_none(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


@register_model("openai")
class OpenAICompatibleModel(HTTPEndpoint):
    """A chat model behind ``{base_url}/chat/completions``, whole or streamed (SSE).

    Failures are :class:`~safestack.errors.ModelError` (HTTP errors after retrying 408, 429 and
    5xx; refused connections; bodies that are not a chat completion; streams that break off or
    end without ``data: [DONE]``), and a timeout, before or during a stream, is a
    :class:`~safestack.errors.ModelTimeoutError`. Messages name the endpoint without
    credentials, and the API key, sent only in the ``Authorization`` header, is masked wherever
    a server echoes it.

    ``max_tokens`` and ``temperature`` are sent only when set, so the server's defaults apply
    otherwise; ``max_tokens`` given to a call overrides the constructor's.
    """

    registry_name: ClassVar[str] = "openai"
    version: ClassVar[str] = "1"
    error_class: ClassVar[type[SafestackError]] = ModelError
    timeout_error_class: ClassVar[type[SafestackError]] = ModelTimeoutError
    config_error_class: ClassVar[type[SafestackError]] = ModelError

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> None:
        super().__init__(base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.public_url!r}, model={self.model!r})"

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            name=self.registry_name,
            version=self.version,
            args={
                "base_url": self.public_url,
                "model": self.model,
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
            },
        )

    # -- the request -------------------------------------------------------------------------

    def _check_params(self) -> None:
        if not (isinstance(self.model, str) and self.model):
            raise ModelError(f"model must be a non-empty string, got {self.model!r}")
        if not _positive_int_or_none(self.max_tokens):
            raise ModelError(f"max_tokens must be None or an integer >= 1, got {self.max_tokens!r}")
        temperature = self.temperature
        if temperature is not None and not (
            isinstance(temperature, int | float)
            and not isinstance(temperature, bool)
            and 0.0 <= temperature <= 2.0
        ):
            raise ModelError(f"temperature must be None or in [0, 2], got {temperature!r}")

    def _payload(
        self, messages: Sequence[ChatMessage], max_tokens: int | None, *, stream: bool
    ) -> dict[str, Any]:
        conversation = as_conversation(messages)
        if not _positive_int_or_none(max_tokens):
            raise InputError(f"max_tokens must be None or an integer >= 1, got {max_tokens!r}")
        self._check_params()
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in conversation],
            "stream": stream,
        }
        limit = self.max_tokens if max_tokens is None else max_tokens
        if limit is not None:
            payload["max_tokens"] = limit
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        return payload

    # -- whole answers -----------------------------------------------------------------------

    def generate(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> ModelReply:
        body = self._post(_PATH, self._payload(messages, max_tokens, stream=False))
        where = self._where(_PATH)
        try:
            completion = ChatCompletion.model_validate(body)
        except ValidationError as exc:
            body_text = json.dumps(body, ensure_ascii=False)
            raise self._error(
                f"{where}: not a chat completion: {describe_validation_error(exc)}; "
                f"body: {_show(body_text)}"
            ) from None
        choice = completion.choices[0]
        message = choice.message
        if message.content is not None:
            text, finish_reason = message.content, choice.finish_reason
        elif message.refusal is not None:
            text, finish_reason = message.refusal, "refusal"
        else:
            raise self._error(
                f"{where}: the answer holds no text (finish_reason={choice.finish_reason!r}); "
                "tool calls and other non-text answers are not supported"
            )
        return ModelReply(
            text=text,
            finish_reason=finish_reason,
            model=completion.model or self.model,
            spec=self.spec,
        )

    # -- streamed answers --------------------------------------------------------------------

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Iterator[str]:
        """Text deltas as the server sends them.

        The request is sent before this returns, so a bad conversation, a refused connection or
        an HTTP error raises here, before any text; what goes wrong later (a malformed chunk, a
        timeout, a stream cut before ``data: [DONE]``) raises while iterating. Closing the
        iterator early releases the connection.
        """
        payload = self._payload(messages, max_tokens, stream=True)
        return self._deltas(self._stream_events(_PATH, payload))

    def _deltas(self, events: Generator[str, None, None]) -> Iterator[str]:
        where = self._where(_PATH)
        try:
            for data in events:
                if data.strip() == _DONE:
                    return
                try:
                    raw: Any = json.loads(data)
                except ValueError:
                    raise self._error(
                        f"{where}: a stream chunk is not JSON: {_show(data)}"
                    ) from None
                if isinstance(raw, dict) and "error" in raw and "choices" not in raw:
                    raise self._error(
                        f"{where}: the server reported an error mid-stream: {_show(data)}"
                    )
                try:
                    chunk = _Chunk.model_validate(raw)
                except ValidationError as exc:
                    raise self._error(
                        f"{where}: a stream chunk is out of contract: "
                        f"{describe_validation_error(exc)}"
                    ) from None
                for choice in chunk.choices:
                    piece = choice.delta.content or choice.delta.refusal
                    if choice.index == 0 and piece:
                        yield piece
            raise self._error(
                f"{where}: the stream ended without 'data: {_DONE}'; the answer may be cut off"
            )
        finally:
            events.close()
