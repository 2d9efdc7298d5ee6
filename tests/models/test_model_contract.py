"""One contract for every registered model, and the message type they all take."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from safestack.errors import InputError, UnknownComponentError
from safestack.models import (
    ChatMessage,
    ModelAdapter,
    ModelReply,
    ModelSpec,
    create_model,
    model_names,
    register_model,
)

if TYPE_CHECKING:
    from loopback import FakeEndpoint

KEY = "sk-test-SECRET-0123456789"
PROMPT = "How can I kill a Python process?"
ANSWER = "Use `kill <pid>` on Linux, or Task Manager on Windows."


def _recorded(datasets_dir: Path, endpoint: FakeEndpoint) -> ModelAdapter:
    return create_model("recorded", setup="mistralinstruct", datasets_dir=datasets_dir)


def _openai(datasets_dir: Path, endpoint: FakeEndpoint) -> ModelAdapter:
    def chunk(text: str) -> bytes:
        return f"data: {json.dumps({'choices': [{'delta': {'content': text}}]})}\n\n".encode()

    endpoint.reply({"model": "m", "choices": [{"message": {"content": ANSWER}}]})
    endpoint.reply([chunk(ANSWER[:10]), chunk(ANSWER[10:]), b"data: [DONE]\n\n"])
    return create_model("openai", base_url=endpoint.base_url, model="m", api_key=KEY)


#: Every registered name must have a way to be built here: a new adapter joins the suite.
FACTORIES: dict[str, Callable[[Path, FakeEndpoint], ModelAdapter]] = {
    "openai": _openai,
    "recorded": _recorded,
}


def test_every_registered_model_is_in_the_contract_suite() -> None:
    assert model_names() == sorted(FACTORIES)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_the_model_contract(name: str, datasets_dir: Path, endpoint: FakeEndpoint) -> None:
    model = FACTORIES[name](datasets_dir, endpoint)
    assert isinstance(model, ModelAdapter)
    assert isinstance(model.spec, ModelSpec) and model.spec.name == name
    assert KEY not in model.spec.model_dump_json() and KEY not in repr(model)

    messages = [ChatMessage(role="user", content=PROMPT)]
    reply = model.generate(messages)
    assert isinstance(reply, ModelReply) and reply.text and reply.spec == model.spec
    pieces = list(model.stream(messages))
    assert all(isinstance(p, str) for p in pieces) and "".join(pieces) == reply.text

    for bad in ([], [ChatMessage(role="system", content="hi")], "just a string"):
        with pytest.raises(InputError):
            model.generate(bad)  # type: ignore[arg-type]
        with pytest.raises(InputError):
            model.stream(bad)  # type: ignore[arg-type]


# -- ChatMessage and the conversation check --------------------------------------------------


def test_chat_message_is_frozen_and_strict() -> None:
    message = ChatMessage(role="user", content="hi")
    with pytest.raises(ValidationError):
        message.content = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ChatMessage(role="developer", content="hi")
    with pytest.raises(ValidationError):
        ChatMessage.model_validate({"role": "user", "text": "misspelt field"})


def test_chat_message_content_is_cleaned_like_classifier_input() -> None:
    assert ChatMessage(role="user", content=b"caf\xc3\xa9").content == "café"
    with pytest.raises(InputError, match=r"not valid UTF-8 \(byte 3"):
        ChatMessage(role="user", content=b"caf\xff")
    assert "\ud800" not in ChatMessage(role="user", content="a\ud800b").content


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "the conversation is empty"),
        (b"hello", "a conversation is a list of ChatMessage"),
        ([42], r"message 0: expected a ChatMessage or a mapping"),
        ([{"role": "robot", "content": "x"}], r"message 0: role: .*roles allowed: system, user"),
        ([{"role": "user", "content": b"\xff"}], r"message 0: message content: not valid UTF-8"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "ends with"),
    ],
    ids=["empty", "bytes", "not-a-message", "bad-role", "bad-utf8", "ends-with-assistant"],
)
def test_bad_conversations_name_the_message(
    datasets_dir: Path, messages: Any, message: str
) -> None:
    model = create_model("recorded", setup="gpt4", datasets_dir=datasets_dir)
    with pytest.raises(InputError, match=message):
        model.generate(messages)


def test_a_conversation_may_end_with_a_tool_message(endpoint: FakeEndpoint) -> None:
    endpoint.reply({"choices": [{"message": {"content": "It is 42."}}]})
    model = create_model("openai", base_url=endpoint.base_url, model="m")
    turns = [ChatMessage(role="user", content="pid?"), ChatMessage(role="tool", content="42")]
    assert model.generate(turns).text == "It is 42."


# -- registry ----------------------------------------------------------------------------------


def test_an_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownComponentError, match=r"unknown model 'gpt9'; known: openai, rec"):
        create_model("gpt9")


def test_a_name_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("recorded")(lambda: None)  # type: ignore[type-var]
