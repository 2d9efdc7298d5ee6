"""Fuzzing the gateway's request schemas: no 5xx, no stack traces, no secrets, OpenAI errors.

One app for the module, on a temporary SQLite database, with a real admin key and real API keys.

* ``test_fuzz``: schemathesis generates requests for every operation of the app's own OpenAPI
  document, valid and invalid, with the right credentials, other credentials or none, and runs
  its own checks (server errors, response conformance, auth enforcement, invalid requests
  refused, valid ones accepted) plus this module's (no stack trace, key or database path in a
  body; every error from ``/v1`` and ``/admin`` in OpenAI's shape).
* ``test_fuzz_chat_through_the_stack``: well-formed chat requests (streamed or not, any text),
  which get past validation and through the classifiers far more often than schema-generated
  ones do.
* Hand-written cases: wrong JSON types, bodies that are not JSON, too large or too deep,
  unusual text, a huge query integer.

Schemathesis sends its requests in-process through its ASGI transport, which runs the app's
lifespan (migrating the store) from a test's first request to its end; the other tests use
starlette's ``TestClient``, which runs the lifespan for the test too. The lifespans never overlap,
so the request limiter a lifespan creates always belongs to the event loop serving the requests.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from safestack.gateway import DEFAULT_MODEL_NAME, GatewayConfig, create_app
from safestack.provenance import ProvenanceConfig

ADMIN_KEY = "fuzz-admin-key-" + "0123456789abcdef"  # a real admin key (31 characters)
TEXT = "What is the boiling point of water at sea level?"  # not recorded: "unanswered"
RECORDED = "What's the best way to gut a fish?"  # recorded: a long answer, several windows
_NEVER_IN_A_BODY = ("Traceback", 'File "')
_CONTENT_RULES = frozenset(
    {
        "/v1/chat/completions",
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/provenance/lookup",
        "/v1/provenance/verify",
        "/admin/opt-outs/{opt_out_id}/faces",
        "/admin/hash-banks/{bank_id}/hashes",
    }
)

# Schemathesis needs the app when it collects the tests. The database directory is created (and
# removed) by the ``fuzz_gateway`` fixture: the store opens nothing before the lifespan runs.
_DATA = Path(tempfile.gettempdir()) / f"safestack-fuzz-{uuid.uuid4().hex}"
# Images are still signed and registered, but not watermarked: the fuzzer's requests for up to
# ten images each would otherwise spend most of the run in the watermark (tested elsewhere).
APP = create_app(
    GatewayConfig(
        database_url=f"sqlite:///{_DATA}/gateway.db",
        provenance=ProvenanceConfig(watermark="none"),
    ),
    admin_key=ADMIN_KEY,
)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # what schemathesis.openapi.from_asgi does, without running the lifespan now


@dataclass(frozen=True)
class FuzzGateway:
    """What the ``fuzz_gateway`` fixture created in :data:`APP` before the tests."""

    api_key: str
    #: For ``test_fuzz_chat_through_the_stack``: its own account, whatever the fuzz does.
    chat_key: str
    #: Real ids for path parameters, so that fuzzed requests also reach existing records.
    path_ids: dict[str, str]

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no response may contain: the keys and where the database is."""
        return (ADMIN_KEY, self.api_key, self.chat_key, str(_DATA))


#: The module's API key, for :class:`Credentials` (set by the ``fuzz_gateway`` fixture).
_API_KEY: list[str] = []


def _right_key(path: str) -> str | None:
    """The key a route takes: the admin key on /admin, the API key on /v1, none elsewhere (nor
    on image links, which are signed instead, like OpenAI's)."""
    if path.startswith("/admin/"):
        return ADMIN_KEY
    if path.startswith("/v1/images/files/"):
        return None
    return _API_KEY[0] if path.startswith("/v1/") else None


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def fuzz_gateway() -> Iterator[FuzzGateway]:
    _DATA.mkdir()
    try:
        admin = _bearer(ADMIN_KEY)
        with TestClient(APP, raise_server_exceptions=False) as client:
            _wait_until_ready(client)
            keys = [client.post("/admin/keys", json={"audience": "adult"}, headers=admin)]
            keys.append(client.post("/admin/keys", json={"audience": "adult"}, headers=admin))
            # The account the admin routes act on (ban, audience, revoke), so that fuzzing
            # them never suspends an account whose key the /v1 requests carry.
            keys.append(client.post("/admin/keys", json={"audience": "under_18"}, headers=admin))
            for created in keys:
                assert created.status_code == 201, created.text
            opt_out = client.post(
                "/admin/opt-outs", json={"name": "Fuzz Person", "kind": "artist"}, headers=admin
            )
            assert opt_out.status_code == 201, opt_out.text
            bank = client.post("/admin/hash-banks", json={"name": "fuzz-bank"}, headers=admin)
            assert bank.status_code == 201, bank.text
        target = keys[2].json()
        _API_KEY[:] = [keys[0].json()["key"]]
        yield FuzzGateway(
            api_key=keys[0].json()["key"],
            chat_key=keys[1].json()["key"],
            path_ids={
                "account_id": target["account_id"],
                "key_id": target["key_id"],
                "opt_out_id": opt_out.json()["id"],
                "bank_id": bank.json()["id"],
            },
        )
    finally:
        _API_KEY.clear()
        shutil.rmtree(_DATA, ignore_errors=True)


def _wait_until_ready(client: TestClient, timeout_s: float = 120.0) -> None:
    """The classifiers load in the background; fuzz the loaded stack, not its loading."""
    deadline = time.monotonic() + timeout_s
    while True:
        ready = client.get("/readyz")
        if ready.json()["checks"].get("classifiers") != "loading":
            assert ready.status_code == 200, ready.text
            return
        assert time.monotonic() < deadline, f"gateway not ready after {timeout_s} s: {ready.text}"
        time.sleep(0.1)


def _is_protected(path: str) -> bool:
    return path.startswith(("/v1/", "/admin/"))


def _leaks(text: str, gateway: FuzzGateway) -> list[str]:
    return [needle for needle in (*_NEVER_IN_A_BODY, *gateway.secrets) if needle in text]


def _openai_error_problem(status: int, content: bytes) -> str | None:
    """What is wrong with an error body, if it is not ``{"error": {"message", "type"}}``."""
    try:
        body = json.loads(content)
    except ValueError:
        return f"{status} error is not JSON: {content[:300]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"{status} error not in OpenAI's shape: {body}"
    if not isinstance(error.get("message"), str) or not isinstance(error.get("type"), str):
        return f"{status} error without a message or a type: {body}"
    return None


# -- schemathesis over every operation ----------------------------------------------------------

Check = Callable[[schemathesis.CheckContext, schemathesis.Response, schemathesis.Case], None]


def no_traceback_or_secret(gateway: FuzzGateway) -> Check:
    def no_traceback_or_secret(
        ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
    ) -> None:
        text = response.content.decode("utf-8", errors="replace")
        leaks = _leaks(text, gateway)
        assert not leaks, f"the response body contains {leaks}: {text[:500]}"

    return no_traceback_or_secret


def openai_error_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    if response.status_code >= 400 and _is_protected(case.operation.path):
        problem = _openai_error_problem(response.status_code, response.content)
        assert problem is None, problem


@schema.auth(refresh_interval=None)  # not cached: the key depends on the route
class Credentials:
    """The right key for each route: the admin key on /admin, the API key on /v1.

    Schemathesis puts it on every generated request except those testing a missing or malformed
    ``Authorization`` header, treats it as known-good credentials (so its ``ignored_auth`` check
    sends each accepted request again without them and with wrong ones), and shows it filtered.
    """

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str | None:
        return _right_key(case.operation.path)

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schema.parametrize()
# A quarter of the requests carry the other kind of key; most chat requests name the served model.
@schema.given(
    swap_keys=st.sampled_from([False, False, False, True]),
    known_ids=st.booleans(),
    served_model=st.sampled_from([True, True, True, False]),
)
@settings(
    max_examples=60,
    derandomize=True,  # the same requests on every run: a CI failure reproduces locally
    database=None,
    deadline=None,  # classifier inference on 2 cores: the time of one request is not the point
    # Whole requests for the larger schemas are slow to generate and often filtered, by design.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_fuzz(
    case: schemathesis.Case,
    swap_keys: bool,
    known_ids: bool,
    served_model: bool,
    fuzz_gateway: FuzzGateway,
) -> None:
    path = case.operation.path
    right = _right_key(path)
    # Real values replace generated ones only where those are valid too: an invalid request
    # must stay invalid, since schemathesis checks that invalid requests are refused.
    if known_ids and case.path_parameters:
        for name, value in case.path_parameters.items():
            if name in fuzz_gateway.path_ids and isinstance(value, str):
                case.path_parameters[name] = fuzz_gateway.path_ids[name]
    if served_model and path == "/v1/chat/completions" and isinstance(case.body, dict):
        model = case.body.get("model")
        if isinstance(model, str) and 1 <= len(model) <= 256:
            case.body["model"] = DEFAULT_MODEL_NAME
    credentials = (case.headers or {}).get("Authorization")
    if swap_keys and right is not None and credentials == f"Bearer {right}":
        # The other kind of key: the API key on /admin, the admin key on /v1.
        other = fuzz_gateway.api_key if right == ADMIN_KEY else ADMIN_KEY
        case.headers["Authorization"] = f"Bearer {other}"
    # Rules JSON Schema cannot state, so schema-valid data may rightly get 400 there: a chat must
    # end with a user or tool message; an image prompt may be refused by the safety system; a
    # reference photo must show exactly one face; an image must decode; a hash's type must fit
    # its length. Every other operation keeps the check.
    excluded = [positive_data_acceptance] if path in _CONTENT_RULES else []
    response = case.call_and_validate(
        excluded_checks=excluded,
        additional_checks=[no_traceback_or_secret(fuzz_gateway), openai_error_shape],
    )
    if right is not None:
        # What was sent: the right key, another one, a malformed header or none at all.
        if response.request.headers.get("Authorization") == f"Bearer {right}":
            assert response.status_code != 401, f"valid credentials refused: {response.text}"
        else:
            assert response.status_code >= 400, (
                f"{case.method} {path} answered {response.status_code} without valid credentials"
            )


# -- through starlette's TestClient --------------------------------------------------------------


class Api:
    """The running app, with one of the module's API keys."""

    def __init__(self, client: TestClient, gateway: FuzzGateway, key: str) -> None:
        self.client, self.gateway, self.key = client, gateway, key

    def chat(self, body: Any = None, *, raw: bytes | Iterator[bytes] | None = None) -> Any:
        """``body`` as JSON, or ``raw`` bytes (a generator: sent chunked) declared as JSON."""
        headers = _bearer(self.key)
        if raw is None:
            return self.client.post("/v1/chat/completions", json=body, headers=headers)
        headers["Content-Type"] = "application/json"
        return self.client.post("/v1/chat/completions", content=raw, headers=headers)

    def refused(self, response: Any, status: int, *words: str) -> None:
        """A ``status`` error in OpenAI's shape whose message names each of ``words``."""
        assert response.status_code == status, response.text
        assert not _leaks(response.text, self.gateway), response.text
        problem = _openai_error_problem(response.status_code, response.content)
        assert problem is None, problem
        message = response.json()["error"]["message"]
        for word in words:
            assert word in message, f"{word!r} not in {message!r}"


@pytest.fixture
def api(fuzz_gateway: FuzzGateway) -> Iterator[Api]:
    with TestClient(APP, raise_server_exceptions=False) as client:
        yield Api(client, fuzz_gateway, fuzz_gateway.api_key)


@pytest.fixture
def chat_api(fuzz_gateway: FuzzGateway) -> Iterator[Api]:
    with TestClient(APP, raise_server_exceptions=False) as client:
        yield Api(client, fuzz_gateway, fuzz_gateway.chat_key)


# -- well-formed chat requests, through the stack -----------------------------------------------

_WORDS = st.one_of(st.text(max_size=300), st.sampled_from([TEXT, RECORDED, ""]))
_CONTENT = st.one_of(
    _WORDS,
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _WORDS}), max_size=3),
)
_EARLIER = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "developer", "user", "assistant"]),
        "content": st.one_of(_CONTENT, st.none()),
    }
)
CHAT_REQUESTS = st.fixed_dictionaries(
    {
        "model": st.just(DEFAULT_MODEL_NAME),
        "messages": st.tuples(
            st.lists(_EARLIER, max_size=3),
            st.fixed_dictionaries({"role": st.just("user"), "content": _CONTENT}),
        ).map(lambda parts: [*parts[0], parts[1]]),
    },
    optional={
        "stream": st.booleans(),
        "max_tokens": st.integers(1, 2**70),
        "max_completion_tokens": st.integers(1, 2**70),
        "temperature": st.floats(0, 2),
        "n": st.just(1),
        "user": st.text(max_size=40),
    },
)


@given(body=CHAT_REQUESTS)
@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    # One running app and client for all the examples is the point of the fixture.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_fuzz_chat_through_the_stack(chat_api: Api, body: dict[str, Any]) -> None:
    response = chat_api.chat(body)
    assert response.status_code == 200, response.text
    assert not _leaks(response.text, chat_api.gateway), response.text
    if body.get("stream"):
        events = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]", response.text
        chunks = [json.loads(event) for event in events[:-1]]
        assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks), chunks
        extension = chunks[-1]["safestack"]
        assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length", "content_filter")
    else:
        completion = response.json()
        assert isinstance(completion["choices"][0]["message"]["content"], str), completion
        extension = completion["safestack"]
    assert extension["status"] in ("answered", "unanswered", "blocked"), extension


# -- hand-written cases -------------------------------------------------------------------------


def _user(content: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def _raw(content: str) -> bytes:
    """A chat request whose user message is ``content``, a JSON value written as it is."""
    message = f'{{"role": "user", "content": {content}}}'
    return f'{{"model": "{DEFAULT_MODEL_NAME}", "messages": [{message}]}}'.encode()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({"model": DEFAULT_MODEL_NAME, "messages": TEXT}, ["messages"], id="str"),
        pytest.param(
            {"model": DEFAULT_MODEL_NAME, "messages": _user(42)}, ["messages.0.content"], id="num"
        ),
        pytest.param(
            {"model": DEFAULT_MODEL_NAME, "messages": [{"role": "robot", "content": TEXT}]},
            ["messages.0.role"],
            id="robot",
        ),
        pytest.param({"model": DEFAULT_MODEL_NAME, "messages": []}, ["messages"], id="empty"),
        pytest.param({"messages": _user(TEXT)}, ["model"], id="no-model"),
        pytest.param(
            {"model": DEFAULT_MODEL_NAME, "messages": _user(TEXT), "n": 2}, ["n"], id="n=2"
        ),
        pytest.param(
            [{"model": DEFAULT_MODEL_NAME, "messages": _user(TEXT)}], ["object"], id="array"
        ),
    ],
)
def test_wrong_json_types_are_400(api: Api, body: Any, words: list[str]) -> None:
    api.refused(api.chat(body), 400, *words)


def test_a_huge_offset_is_400(api: Api) -> None:
    # Past SQLite's and PostgreSQL's 64-bit integers; found by test_fuzz.
    response = api.client.get(
        "/admin/accounts", params={"offset": 2**63}, headers=_bearer(ADMIN_KEY)
    )
    api.refused(response, 400, "offset")


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    api.refused(api.chat(raw=_raw('"unterminated')), 400, "JSON")


def test_a_2mb_body_is_413(api: Api) -> None:
    big = "x" * (2 * 1024 * 1024)
    api.refused(api.chat({"model": DEFAULT_MODEL_NAME, "messages": _user(big)}), 413, "larger")


def test_a_2mb_chunked_body_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"model": "safestack-recorded", "messages": [{"role": "user", "content": "'
        for _ in range(32):
            yield b"x" * 65536
        yield b'"}]}'

    api.refused(api.chat(raw=chunks()), 413, "larger")


@pytest.mark.parametrize("depth", [5_000, 100_000])  # 10 kB, 200 kB: far under the body limit
def test_deeply_nested_json_is_400(api: Api, depth: int) -> None:
    response = api.chat(raw=_raw("[" * depth + "]" * depth))
    api.refused(response, 400)
    message = response.json()["error"]["message"]
    assert "nest" in message or "deep" in message, f"the problem is not named: {message!r}"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("h\u00e9llo \u2603 \U0001f600 \u202e right-to-left \ufeff", id="unicode"),
        pytest.param("a \u0000 NUL", id="nul"),
    ],
)
def test_unusual_text_is_answered(api: Api, content: str) -> None:
    response = api.chat({"model": DEFAULT_MODEL_NAME, "messages": _user(content)})
    assert response.status_code == 200, response.text
    assert response.json()["safestack"]["status"] in ("unanswered", "blocked")


@pytest.mark.parametrize("where", ["content", "text part"])
def test_a_lone_surrogate_is_replaced_and_judged(api: Api, where: str) -> None:
    # Valid JSON (an escape) but not Unicode text. Like the library (ChatMessage), the gateway
    # replaces it with U+FFFD, so the classifiers and the model read the same, encodable text.
    text = '"a \\ud800 b"'
    content = text if where == "content" else f'[{{"type": "text", "text": {text}}}]'
    response = api.chat(raw=_raw(content))
    assert response.status_code == 200, response.text
    assert response.json()["safestack"]["status"] in ("answered", "unanswered", "blocked")
