"""The endpoint-backed monitor against a real HTTP server on 127.0.0.1.

The server plays the monitor model; every answer shape a real model has been seen to produce —
prose, extra keys, clauses that do not exist or do not fit the verdict — must fail closed.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from safestack.classify import Exchange, classifier_names, create_classifier
from safestack.errors import ClassifierError, RemoteError
from safestack.monitor import MONITOR_PROMPT_VERSION, PolicyMonitor
from safestack.policy import Policy

if TYPE_CHECKING:
    from loopback import FakeEndpoint, Received

KEY = "sk-monitor-SECRET-0123456789"
EXCHANGE = Exchange("How do I hurt my neighbour?", "Step one: wait until he is alone ...")


def chat(content: str | None, *, finish_reason: str = "stop") -> dict[str, Any]:
    """An OpenAI-shaped chat completion whose answer is ``content``."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "monitor",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
    }


def answer(
    verdict: str, categories: list[str], clause: str | None, rationale: str = "Because."
) -> str:
    return json.dumps(
        {"verdict": verdict, "categories": categories, "clause": clause, "rationale": rationale}
    )


def judge_one(endpoint: FakeEndpoint, policy: Policy, content: str | None, **kwargs: Any) -> Any:
    endpoint.reply(chat(content))
    with PolicyMonitor(endpoint.base_url, "monitor", policy=policy, **kwargs) as monitor:
        (verdict,) = monitor.classify([EXCHANGE])
    return verdict


def system_prompt_sent(request: Received) -> str:
    messages = request.json()["messages"]
    assert messages[0]["role"] == "system"
    return str(messages[0]["content"])


# -- verdicts in contract --------------------------------------------------------------------


def test_an_unsafe_verdict_is_parsed_with_its_clause(
    endpoint: FakeEndpoint, small_policy: Policy
) -> None:
    content = answer(
        "unsafe", ["hate", "violence"], "violence.disallowed.1", "Step-by-step plan to hurt."
    )
    verdict = judge_one(endpoint, small_policy, content)
    assert verdict.flagged and verdict.error is None
    assert verdict.clause == "violence.disallowed.1"
    assert verdict.categories == ["violence", "hate"]  # the cited clause's category first
    assert verdict.scores == {"hate": 1.0, "self_harm": 0.0, "violence": 1.0}
    assert verdict.rationale == "Step-by-step plan to hurt."
    assert verdict.spec.name == "policy-monitor" and verdict.spec.version == MONITOR_PROMPT_VERSION


@pytest.mark.parametrize("clause", [None, "violence.allowed.2"])
def test_a_safe_verdict_may_cite_an_allowed_clause_or_none(
    endpoint: FakeEndpoint, small_policy: Policy, clause: str | None
) -> None:
    verdict = judge_one(endpoint, small_policy, answer("safe", [], clause, "News report."))
    assert not verdict.flagged and verdict.error is None and verdict.categories == []
    assert verdict.clause == clause and verdict.rationale == "News report."
    assert set(verdict.scores.values()) == {0.0}


def test_an_under_18_monitor_accepts_an_under_18_clause(
    endpoint: FakeEndpoint, small_policy: Policy
) -> None:
    content = answer("unsafe", ["violence"], "violence.under_18.1", "A dangerous challenge.")
    verdict = judge_one(endpoint, small_policy, content, audience="under_18")
    assert verdict.flagged and verdict.error is None and verdict.clause == "violence.under_18.1"


def test_a_single_json_fence_is_tolerated(endpoint: FakeEndpoint, small_policy: Policy) -> None:
    fenced = "```json\n" + answer("safe", [], None) + "\n```"
    assert judge_one(endpoint, small_policy, fenced).error is None


# -- answers out of contract fail closed -----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("Safe, although the user asks how to hurt someone.", "not exactly one JSON object"),
        ('Verdict: {"verdict": "safe"}', "not exactly one JSON object"),
        (answer("safe", [], None) + answer("safe", [], None), "not exactly one JSON object"),
        (
            '{"verdict": "safe", "categories": [], "clause": null}',
            "rationale: Field required",
        ),
        (
            '{"verdict": "safe", "categories": [], "clause": null, "rationale": "", "score": 0}',
            "score: Extra inputs are not permitted",
        ),
        (
            '{"verdict": "unsafe", "verdict": "safe", "categories": [], "clause": null, '
            '"rationale": ""}',
            r"duplicate key\(s\) \['verdict'\]",
        ),
        (answer("SAFE", [], None), "verdict: Input should be 'safe' or 'unsafe'"),
        (answer("unsafe", ["violence"], "violence.disallowed.9"), "unknown clause id"),
        (answer("unsafe", ["weapons"], "violence.disallowed.1"), r"unknown category id\(s\)"),
        (answer("unsafe", ["violence"], "violence.allowed.1"), "an allowed clause"),
        (answer("unsafe", ["hate"], "violence.disallowed.1"), "not among the named categories"),
        (answer("unsafe", ["violence"], None), "cites no clause"),
        (answer("unsafe", [], "violence.disallowed.1"), "names no category"),
        (answer("unsafe", ["violence"], "violence.disallowed.1", "  "), "gives no rationale"),
        (answer("safe", ["violence"], None), r'"safe" contradicts the categories \[.violence.\]'),
        (answer("safe", [], "violence.disallowed.1"), "a safe verdict cites an allowed clause"),
        # An adult monitor never showed the model the under-18 rules: that id is unknown.
        (answer("unsafe", ["violence"], "violence.under_18.1"), "unknown clause id"),
    ],
    ids=[
        "prose",
        "prose-then-json",
        "two-objects",
        "missing-key",
        "extra-key",
        "duplicate-key",
        "upper-case",
        "unknown-clause",
        "unknown-category",
        "unsafe-cites-allowed",
        "clause-outside-categories",
        "unsafe-without-clause",
        "unsafe-without-category",
        "unsafe-without-rationale",
        "safe-with-categories",
        "safe-cites-forbidding",
        "under-18-clause-for-adult",
    ],
)
def test_an_answer_out_of_contract_fails_closed(
    endpoint: FakeEndpoint, small_policy: Policy, content: str, why: str
) -> None:
    verdict = judge_one(endpoint, small_policy, content)
    assert verdict.flagged and verdict.error is not None
    assert re.search(why, verdict.error), verdict.error
    assert verdict.clause is None  # a clause from an untrusted answer is never passed on


def test_a_fail_closed_verdict_keeps_the_categories_the_monitor_named(
    endpoint: FakeEndpoint, small_policy: Policy
) -> None:
    verdict = judge_one(
        endpoint, small_policy, answer("unsafe", ["violence"], "violence.allowed.1")
    )
    assert verdict.flagged and verdict.error and verdict.categories == ["violence"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (chat(""), "empty answer"),
        (chat(None), "empty answer"),
        (chat('{"verdict": "uns', finish_reason="length"), "cut off at max_tokens=1024"),
        ({"error": {"message": "overloaded"}}, "not a chat completion"),
    ],
    ids=["empty", "null", "truncated", "error-object"],
)
def test_a_completion_without_a_usable_answer_fails_closed(
    endpoint: FakeEndpoint, small_policy: Policy, body: Any, why: str
) -> None:
    endpoint.reply(body)
    with PolicyMonitor(endpoint.base_url, "monitor", policy=small_policy) as monitor:
        (verdict,) = monitor.classify([EXCHANGE])
    assert verdict.flagged and verdict.error and why in verdict.error


# -- the request -----------------------------------------------------------------------------


def test_structured_output_sends_the_verdict_schema(
    endpoint: FakeEndpoint, small_policy: Policy
) -> None:
    judge_one(endpoint, small_policy, answer("safe", [], None), api_key=KEY)
    (request,) = endpoint.requests
    body = request.json()
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "monitor" and body["temperature"] == 0
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "policy_verdict" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == ["verdict", "categories", "clause", "rationale"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["verdict"]["enum"] == ["safe", "unsafe"]
    assert schema["properties"]["categories"]["items"]["enum"] == small_policy.category_ids
    ids, null = schema["properties"]["clause"]["anyOf"]
    assert ids["enum"] == [c.id for c in small_policy.clauses("adult")]
    assert null == {"type": "null"}
    assert json.loads(body["messages"][1]["content"]) == {
        "prompt": EXCHANGE.prompt,
        "response": EXCHANGE.response,
    }


def test_without_structured_output_the_request_has_no_response_format(
    endpoint: FakeEndpoint, small_policy: Policy
) -> None:
    judge_one(endpoint, small_policy, answer("safe", [], None), structured_output=False)
    assert "response_format" not in endpoint.requests[0].json()


def test_the_prompt_renders_the_prose_and_every_clause_with_its_id(
    endpoint: FakeEndpoint, small_policy: Policy
) -> None:
    judge_one(endpoint, small_policy, answer("safe", [], None))
    system = system_prompt_sent(endpoint.requests[0])
    assert small_policy.description in system
    for category in small_policy.categories:
        assert f"## {category.id}: {category.title}" in system
        assert category.description.strip() in system
        assert all(f"- {text}" in system for text in category.examples.disallowed)
    for clause in small_policy.clauses("adult"):
        assert f"[{clause.id}]" in system and clause.text in system
    assert "The user is an adult." in system
    assert ".under_18." not in system
    for category in small_policy.categories:
        assert not any(rule in system for rule in category.under_18.additional_disallowed)


def test_an_under_18_prompt_adds_the_under_18_clauses(
    endpoint: FakeEndpoint, small_policy: Policy
) -> None:
    judge_one(endpoint, small_policy, answer("safe", [], None), audience="under_18")
    request = endpoint.requests[0]
    system = system_prompt_sent(request)
    minor = [c for c in small_policy.clauses("under_18") if c.kind == "under_18"]
    assert minor
    for clause in minor:
        assert f"- [{clause.id}] (disallowed for users under 18) {clause.text}" in system
    assert "The user is under 18" in system
    enum = request.json()["response_format"]["json_schema"]["schema"]["properties"]["clause"]
    assert {c.id for c in minor} <= set(enum["anyOf"][0]["enum"])


# -- no answer at all: the stack decides -----------------------------------------------------


def test_a_timeout_raises(endpoint: FakeEndpoint, small_policy: Policy) -> None:
    endpoint.always(chat(answer("safe", [], None)), delay=5.0)
    with (
        PolicyMonitor(endpoint.base_url, "m", policy=small_policy, timeout=0.2) as monitor,
        pytest.raises(RemoteError, match=r"timed out after 0\.2 s"),
    ):
        monitor.classify([EXCHANGE])


def test_a_persistent_server_error_raises_after_one_retry(
    endpoint: FakeEndpoint, small_policy: Policy
) -> None:
    endpoint.always({"error": f"down, key {KEY}"}, status=503)
    with (
        PolicyMonitor(endpoint.base_url, "m", api_key=KEY, policy=small_policy) as monitor,
        pytest.raises(RemoteError, match=r"HTTP 503 .*after 2 attempts") as info,
    ):
        monitor.classify([EXCHANGE])
    assert KEY not in str(info.value) and len(endpoint.requests) == 2


def test_a_refused_connection_raises(closed_url: str, small_policy: Policy) -> None:
    with (
        PolicyMonitor(closed_url, "m", policy=small_policy, max_retries=0) as monitor,
        pytest.raises(RemoteError, match="connection failed"),
    ):
        monitor.classify([EXCHANGE])


# -- spec, registry, parameters --------------------------------------------------------------


def test_is_registered_builds_without_connecting_and_records_its_spec(
    small_policy: Policy,
) -> None:
    assert "policy-monitor" in classifier_names()
    monitor = create_classifier(
        "policy-monitor",
        base_url="https://monitor.example/v1",
        model="gpt-oss-safeguard-20b",
        api_key=KEY,
        policy=small_policy,
        audience="under_18",
    )
    assert isinstance(monitor, PolicyMonitor) and monitor.input_kind == "exchange"
    assert monitor._client is None
    assert monitor.spec.args == {
        "base_url": "https://monitor.example/v1",
        "model": "gpt-oss-safeguard-20b",
        "audience": "under_18",
        "max_tokens": 1024,
        "structured_output": True,
        "policy": "small-policy@0.1",
    }
    assert KEY not in monitor.spec.model_dump_json() and KEY not in repr(monitor)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"structured_output": "yes"}, "structured_output must be true or false"),
        ({"max_tokens": 0}, "max_tokens must be an integer >= 1"),
        ({"audience": "kids"}, "unknown audience 'kids'"),
    ],
)
def test_bad_parameters_are_reported_on_use(
    small_policy: Policy, kwargs: dict[str, Any], message: str
) -> None:
    with (
        PolicyMonitor("http://127.0.0.1:9/v1", "m", policy=small_policy, **kwargs) as monitor,
        pytest.raises(ClassifierError, match=message),
    ):
        monitor.classify([EXCHANGE])
