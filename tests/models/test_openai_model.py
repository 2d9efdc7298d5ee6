from __future__ import annotations

import json
import logging
import traceback
from typing import TYPE_CHECKING, Any

import pytest

from safestack.errors import InputError, ModelError, ModelTimeoutError
from safestack.models import ChatMessage, ModelReply, OpenAICompatibleModel, create_model

if TYPE_CHECKING:
    from loopback import FakeEndpoint

KEY = "sk-test-SECRET-0123456789"
HELLO = [ChatMessage(role="user", content="hello")]


def chat(
    content: str | None = "Hi there.",
    *,
    finish_reason: str | None = "stop",
    refusal: str | None = None,
    model: str = "upstream-model-2025",
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }


def sse(*events: Any, done: bool = True) -> list[bytes]:
    """Server-sent events, one piece each: dicts as JSON ``data``, strings as raw lines."""
    pieces = [(e if isinstance(e, str) else f"data: {json.dumps(e)}\n\n").encode() for e in events]
    return [*pieces, b"data: [DONE]\n\n"] if done else pieces


def delta(content: str | None = None, *, finish_reason: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": finish_reason}
    if content is not None:
        choice["delta"]["content"] = content
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]}


def make(base_url: str, **kwargs: Any) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(base_url, "test-model", **kwargs)


# -- whole answers -----------------------------------------------------------------------------


def test_generate_posts_the_conversation_and_returns_the_reply(endpoint: FakeEndpoint) -> None:
    endpoint.reply(chat("Hi there."))
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="hello"),
    ]
    with make(endpoint.base_url, temperature=0.0, max_tokens=64) as model:
        reply = model.generate(messages)

    assert isinstance(reply, ModelReply)
    assert reply.text == "Hi there." and reply.finish_reason == "stop"
    assert reply.model == "upstream-model-2025"  # what the upstream says it ran
    assert reply.spec == model.spec
    (request,) = endpoint.requests
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.json() == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello"},
        ],
        "stream": False,
        "max_tokens": 64,
        "temperature": 0.0,
    }


def test_unset_options_are_not_sent_and_a_call_overrides_max_tokens(
    endpoint: FakeEndpoint,
) -> None:
    endpoint.always(chat())
    with make(endpoint.base_url, max_tokens=64) as capped, make(endpoint.base_url) as free:
        capped.generate(HELLO, max_tokens=8)
        free.generate(HELLO)
    assert endpoint.requests[0].json()["max_tokens"] == 8
    assert "max_tokens" not in endpoint.requests[1].json()
    assert "temperature" not in endpoint.requests[1].json()


def test_mapping_messages_are_accepted(endpoint: FakeEndpoint) -> None:
    endpoint.reply(chat())
    with make(endpoint.base_url) as model:
        model.generate([{"role": "user", "content": "hi"}])  # type: ignore[list-item]
    assert endpoint.requests[0].json()["messages"] == [{"role": "user", "content": "hi"}]


def test_the_upstreams_content_filter_is_returned_as_it_is(endpoint: FakeEndpoint) -> None:
    endpoint.reply(chat("Here is", finish_reason="content_filter"))
    with make(endpoint.base_url) as model:
        reply = model.generate(HELLO)
    assert (reply.text, reply.finish_reason) == ("Here is", "content_filter")


def test_a_structured_refusal_is_the_answer_with_finish_reason_refusal(
    endpoint: FakeEndpoint,
) -> None:
    endpoint.reply(chat(None, refusal="I can't help with that."))
    with make(endpoint.base_url) as model:
        reply = model.generate(HELLO)
    assert (reply.text, reply.finish_reason) == ("I can't help with that.", "refusal")


def test_without_a_model_field_the_configured_model_is_reported(endpoint: FakeEndpoint) -> None:
    body = chat()
    del body["model"]
    endpoint.reply(body)
    with make(endpoint.base_url) as model:
        assert model.generate(HELLO).model == "test-model"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>502 Bad Gateway</html>", r"not JSON: '<html>502 Bad Gateway</html>'"),
        ({"id": "x", "object": "chat.completion"}, r"not a chat completion: choices: Field"),
        ({"choices": []}, r"choices: List should have at least 1 item"),
        ({"choices": [{"text": "legacy completion"}]}, r"choices\.0\.message: Field required"),
        ({"choices": [{"message": {"content": 7}}]}, r"content: Input should be a valid string"),
        (b"[1, 2]", r"not a chat completion: .*body: '\[1, 2\]'"),
        (chat(None, finish_reason="tool_calls"), r"holds no text \(finish_reason='tool_calls'\)"),
    ],
    ids=["not-json", "no-choices", "empty-choices", "legacy", "bad-content", "array", "tools"],
)
def test_an_answer_out_of_contract_is_a_model_error(
    endpoint: FakeEndpoint, body: Any, message: str
) -> None:
    endpoint.reply(body)
    with make(endpoint.base_url) as model, pytest.raises(ModelError, match=message) as info:
        model.generate(HELLO)
    assert f"{endpoint.base_url}/chat/completions" in str(info.value)
    assert not isinstance(info.value, ModelTimeoutError)


# -- transport -------------------------------------------------------------------------------


def test_rate_limiting_is_retried_after_the_servers_delay(endpoint: FakeEndpoint) -> None:
    endpoint.reply({"error": "slow down"}, status=429, headers={"Retry-After": "0"})
    endpoint.reply(chat("ok"))
    with make(endpoint.base_url) as model:
        assert model.generate(HELLO).text == "ok"
    assert len(endpoint.requests) == 2


def test_a_persistent_server_error_raises_after_bounded_retries(endpoint: FakeEndpoint) -> None:
    endpoint.always({"error": "still down"}, status=500)
    with (
        make(endpoint.base_url, max_retries=1) as model,
        pytest.raises(ModelError, match=r"HTTP 500 .*after 2 attempts.*still down"),
    ):
        model.generate(HELLO)
    assert len(endpoint.requests) == 2


def test_a_client_error_is_not_retried(endpoint: FakeEndpoint) -> None:
    endpoint.always({"error": {"message": "unknown model"}}, status=404)
    with make(endpoint.base_url) as model, pytest.raises(ModelError, match="HTTP 404"):
        model.generate(HELLO)
    assert len(endpoint.requests) == 1


def test_a_timeout_is_a_model_timeout_error_without_retry(endpoint: FakeEndpoint) -> None:
    endpoint.always(chat(), delay=5.0)
    with (
        make(endpoint.base_url, timeout=0.3) as model,
        pytest.raises(ModelTimeoutError, match=r"timed out after 0\.3 s"),
    ):
        model.generate(HELLO)
    assert len(endpoint.requests) == 1


def test_a_refused_connection_is_a_model_error(closed_url: str) -> None:
    with (
        make(closed_url, max_retries=1) as model,
        pytest.raises(ModelError, match="connection failed after 2 attempt"),
    ):
        model.generate(HELLO)


def test_the_authorization_header_carries_the_key(endpoint: FakeEndpoint) -> None:
    endpoint.always(chat())
    with make(endpoint.base_url, api_key=KEY) as keyed, make(endpoint.base_url) as anonymous:
        keyed.generate(HELLO)
        anonymous.generate(HELLO)
    assert endpoint.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in endpoint.requests[1].headers


@pytest.mark.parametrize(
    ("body", "status", "delay"),
    [
        ({"error": {"message": f"Incorrect API key provided: {KEY}"}}, 401, 0.0),
        ({"error": f"key {KEY} overloaded"}, 503, 0.0),
        (f"not json {KEY}".encode(), 200, 0.0),
        ({"choices": [{"message": {"content": 1}}], "echo": KEY}, 200, 0.0),
        (chat(), 200, 5.0),
        (sse({"error": {"message": f"bad key {KEY}"}}), 200, 0.0),
    ],
    ids=["401-echo", "503-echo", "not-json-echo", "bad-body", "timeout", "stream-error-echo"],
)
def test_the_api_key_never_appears_in_errors_logs_or_repr(
    endpoint: FakeEndpoint,
    body: Any,
    status: int,
    delay: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint.always(body, status=status, delay=delay)
    caplog.set_level(logging.DEBUG)
    with (
        make(endpoint.base_url, api_key=KEY, timeout=0.3, max_retries=1) as model,
        pytest.raises(ModelError) as info,
    ):
        if isinstance(body, list):
            "".join(model.stream(HELLO))
        else:
            model.generate(HELLO)
    assert KEY not in "".join(traceback.format_exception(info.value))  # causes included
    if KEY in str(body):
        assert "***" in str(info.value)  # the server's echo is masked, the rest kept
    assert KEY not in caplog.text
    assert KEY not in repr(model) and KEY not in model.spec.model_dump_json()


def test_credentials_in_the_url_never_appear(closed_url: str) -> None:
    url = closed_url.replace("http://", f"http://user:{KEY}@") + f"?key={KEY}"
    with make(url, api_key=KEY, max_retries=0) as model, pytest.raises(ModelError) as info:
        model.generate(HELLO)
    assert KEY not in str(info.value)
    assert KEY not in repr(model) and KEY not in str(model.spec)
    assert model.spec.args["base_url"] == closed_url


# -- streaming ---------------------------------------------------------------------------------


def test_stream_yields_the_deltas_in_order(endpoint: FakeEndpoint) -> None:
    endpoint.reply(
        sse(
            ": keep-alive comment\n\n",
            {"id": "c", "choices": []},  # e.g. a prompt-filter or usage chunk
            delta(""),
            delta("Hel"),
            "event: message\nid: 3\n",  # other fields are skipped
            delta("lo, "),
            delta("world"),
            delta(finish_reason="stop"),
        )
    )
    with make(endpoint.base_url, api_key=KEY) as model:
        pieces = list(model.stream(HELLO, max_tokens=5))
    assert pieces == ["Hel", "lo, ", "world"]
    (request,) = endpoint.requests
    assert request.json()["stream"] is True and request.json()["max_tokens"] == 5
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_a_data_field_may_span_lines_and_the_last_event_its_blank_line(
    endpoint: FakeEndpoint,
) -> None:
    first = json.dumps(delta("a"), indent=1)  # several lines, split outside any string
    lines = "".join(f"data:{line}\n" for line in first.splitlines())
    endpoint.reply([f"{lines}\n".encode(), b"data: [DONE]"])
    with make(endpoint.base_url) as model:
        assert list(model.stream(HELLO)) == ["a"]


def test_stream_retries_before_the_first_byte(endpoint: FakeEndpoint) -> None:
    endpoint.reply({"error": "slow down"}, status=429, headers={"Retry-After": "0"})
    endpoint.reply(sse(delta("ok")))
    with make(endpoint.base_url) as model:
        assert list(model.stream(HELLO)) == ["ok"]
    assert len(endpoint.requests) == 2


def test_stream_raises_http_errors_before_returning(endpoint: FakeEndpoint) -> None:
    endpoint.always({"error": "still down"}, status=503)
    with (
        make(endpoint.base_url, max_retries=0) as model,
        pytest.raises(ModelError, match=r"HTTP 503 .*still down"),
    ):
        model.stream(HELLO)  # not iterated: the status is known before any text


def test_a_stream_without_done_is_a_model_error(endpoint: FakeEndpoint) -> None:
    endpoint.reply(sse(delta("partial"), done=False))
    pieces: list[str] = []
    with (
        make(endpoint.base_url) as model,
        pytest.raises(ModelError, match=r"ended without 'data: \[DONE\]'"),
    ):
        pieces.extend(model.stream(HELLO))
    assert pieces == ["partial"]


@pytest.mark.parametrize(
    ("pieces", "message"),
    [
        ([b"data: {not json\n\n"], "a stream chunk is not JSON"),
        ([b'data: {"id": 1}\n\n'], r"out of contract: choices: Field required"),
        ([b'data: {"error": {"message": "overloaded"}}\n\n'], "reported an error mid-stream"),
        ([json.dumps(chat()).encode()], "not a server-sent event stream"),
    ],
    ids=["not-json", "no-choices", "error-event", "json-instead-of-sse"],
)
def test_a_malformed_stream_is_a_model_error(
    endpoint: FakeEndpoint, pieces: list[bytes], message: str
) -> None:
    endpoint.reply(pieces)
    with make(endpoint.base_url) as model, pytest.raises(ModelError, match=message):
        list(model.stream(HELLO))


def test_a_stall_mid_stream_is_a_model_timeout_error(endpoint: FakeEndpoint) -> None:
    endpoint.reply(sse(delta("first"), delta("never")), pause=5.0, pause_after=1)
    pieces: list[str] = []
    with (
        make(endpoint.base_url, timeout=0.3) as model,
        pytest.raises(ModelTimeoutError, match=r"timed out after 0\.3 s in the middle"),
    ):
        pieces.extend(model.stream(HELLO))
    assert pieces == ["first"]


def test_closing_a_stream_early_releases_the_connection(endpoint: FakeEndpoint) -> None:
    endpoint.always(sse(delta("a"), delta("b")))
    with make(endpoint.base_url) as model:
        stream = model.stream(HELLO)
        assert next(stream) == "a"
        stream.close()  # type: ignore[attr-defined]
        assert list(model.stream(HELLO)) == ["a", "b"]  # the client is still usable


# -- parameters, spec, registry --------------------------------------------------------------


def test_spec_records_what_changes_answers_but_never_the_key() -> None:
    model = OpenAICompatibleModel(
        "https://llm.example/v1", "llama-3-70b", api_key=KEY, max_tokens=256, temperature=0.7
    )
    assert model.spec.name == "openai" and model.spec.version == "1"
    assert model.spec.args == {
        "base_url": "https://llm.example/v1",
        "model": "llama-3-70b",
        "max_tokens": 256,
        "temperature": 0.7,
    }
    assert repr(model) == (
        "OpenAICompatibleModel(base_url='https://llm.example/v1', model='llama-3-70b')"
    )


def test_is_registered_and_builds_without_connecting() -> None:
    model = create_model("openai", base_url="http://127.0.0.1:9/v1", model="m")
    assert isinstance(model, OpenAICompatibleModel)
    assert model._client is None  # nothing opened until the first call


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "ftp://host/v1"}, "must be an http:// or https:// URL"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"max_tokens": 0}, r"max_tokens must be None or an integer >= 1, got 0"),
        ({"temperature": 3.5}, r"temperature must be None or in \[0, 2\], got 3.5"),
    ],
)
def test_bad_parameters_are_reported_on_use(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"base_url": "http://127.0.0.1:9/v1", "model": "m", **kwargs}
    with OpenAICompatibleModel(**args) as model, pytest.raises(ModelError, match=message):
        model.generate(HELLO)


def test_bad_conversations_are_input_errors_and_send_nothing(endpoint: FakeEndpoint) -> None:
    with make(endpoint.base_url) as model:
        with pytest.raises(InputError, match="empty"):
            model.generate([])
        with pytest.raises(InputError, match="ends with a 'assistant' message"):
            model.stream([*HELLO, ChatMessage(role="assistant", content="Hi")])
        with pytest.raises(InputError, match="max_tokens"):
            model.generate(HELLO, max_tokens=-1)
    assert endpoint.requests == []
