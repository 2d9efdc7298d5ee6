from __future__ import annotations

import json
import re
import traceback
from typing import TYPE_CHECKING, Any

import pytest

from safestack.classify._protocol import Exchange
from safestack.classify._registry import create_classifier
from safestack.classify.llm import PROMPT_VERSION, LLMClassifier
from safestack.errors import ClassifierError, InputError, RemoteError
from safestack.policy import Audience, Policy

if TYPE_CHECKING:
    from loopback import FakeEndpoint, Received

KEY = "sk-judge-SECRET-9876543210"


def chat(content: str | None, *, finish_reason: str = "stop", **message: Any) -> dict[str, Any]:
    """An OpenAI-shaped chat completion whose answer is ``content``."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "judge",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, **message},
                "finish_reason": finish_reason,
            }
        ],
    }


def answer(verdict: str, categories: list[str], rationale: str = "Because.") -> str:
    return json.dumps({"verdict": verdict, "categories": categories, "rationale": rationale})


def make(url: str, policy: Policy, **kwargs: Any) -> LLMClassifier:
    return LLMClassifier(url, "judge", policy=policy, **kwargs)


def judge_one(endpoint: FakeEndpoint, policy: Policy, content: str | None, **kwargs: Any) -> Any:
    endpoint.reply(chat(content))
    with make(endpoint.base_url, policy, **kwargs) as clf:
        (verdict,) = clf.classify(["some text"])
    return verdict


def system_prompt_sent(request: Received) -> str:
    messages = request.json()["messages"]
    assert messages[0]["role"] == "system"
    return str(messages[0]["content"])


# -- JSON verdicts ---------------------------------------------------------------------------


def test_a_safe_verdict_is_not_flagged_and_scores_zero(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    verdict = judge_one(endpoint, policy, answer("safe", [], "A recipe for bread."))
    assert not verdict.flagged and verdict.categories == [] and verdict.error is None
    assert verdict.scores == {"hate": 0.0, "self_harm": 0.0, "violence": 0.0}
    assert verdict.rationale == "A recipe for bread."


def test_an_unsafe_verdict_flags_its_categories(endpoint: FakeEndpoint, policy: Policy) -> None:
    verdict = judge_one(endpoint, policy, answer("unsafe", ["violence", "hate"], "Threats."))
    assert verdict.flagged and verdict.error is None
    assert verdict.categories == ["hate", "violence"]
    assert verdict.scores == {"hate": 1.0, "self_harm": 0.0, "violence": 1.0}
    assert verdict.spec.name == "llm" and verdict.spec.version == PROMPT_VERSION


@pytest.mark.parametrize("fence", ["```json\n{}\n```", "```\n{}\n```", "  ```json\n{}```\n "])
def test_a_single_json_fence_is_accepted(
    endpoint: FakeEndpoint, policy: Policy, fence: str
) -> None:
    content = fence.replace("{}", answer("unsafe", ["self_harm"]))
    verdict = judge_one(endpoint, policy, content)
    assert verdict.categories == ["self_harm"] and verdict.error is None


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("The content is safe.", "not exactly one JSON object"),
        ("safe", "not exactly one JSON object"),
        ("Safe.", "not exactly one JSON object"),
        ("unsafe", "not exactly one JSON object"),
        ('"safe"', "out of contract"),
        (answer("safe", []) + "\nThe request is harmless.", "not exactly one JSON object"),
        ("Here is my verdict: " + answer("safe", []), "not exactly one JSON object"),
        (answer("safe", []) + answer("safe", []), "not exactly one JSON object"),
        ("```json\n" + answer("safe", []) + "\n```\nDone.", "not exactly one JSON object"),
        (answer("unsafe", ["weapons"]), r"unknown category id\(s\) \['weapons'\]"),
        (answer("unsafe", []), 'verdict "unsafe" names no category'),
        (answer("safe", ["hate"]), 'verdict "safe" contradicts'),
        (answer("SAFE", []), "verdict: Input should be 'safe' or 'unsafe'"),
        (answer("maybe", []), "verdict: Input should be 'safe' or 'unsafe'"),
        ('{"verdict": "safe", "categories": []}', "rationale: Field required"),
        (
            '{"verdict": "safe", "categories": [], "rationale": "x", "confidence": 0.9}',
            "confidence: Extra inputs",
        ),
        ('{"verdict": "safe", "categories": "hate", "rationale": "x"}', "categories: "),
        (
            '{"verdict": "unsafe", "verdict": "safe", "categories": [], "rationale": "x"}',
            r"duplicate key\(s\) \['verdict'\]",
        ),
        ("<think>easy</think>" + answer("safe", []), "not exactly one JSON object"),
    ],
    ids=[
        "prose",
        "bare-safe",
        "Safe.",
        "bare-unsafe",
        "json-string",
        "text-after",
        "text-before",
        "two-objects",
        "text-after-fence",
        "unknown-id",
        "unsafe-no-category",
        "safe-with-category",
        "upper-case",
        "maybe",
        "missing-rationale",
        "extra-key",
        "categories-string",
        "duplicate-key",
        "think-tags",
    ],
)
def test_an_answer_out_of_contract_fails_closed(
    endpoint: FakeEndpoint, policy: Policy, content: str, why: str
) -> None:
    verdict = judge_one(endpoint, policy, content)
    assert verdict.flagged and verdict.categories == []
    assert verdict.error is not None
    assert re.search(why, verdict.error), verdict.error


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (chat(""), "empty answer"),
        (chat("  \n "), "empty answer"),
        (chat(None), "empty answer"),
        (chat(None, refusal="I can't help with that."), "the judge refused"),
        (chat('{"verdict": "saf', finish_reason="length"), "cut off at max_tokens=512"),
        ({"id": "x", "object": "chat.completion"}, "choices: Field required"),
        ({**chat("x"), "choices": []}, "choices: List should have at least 1 item"),
        ({"choices": [{"message": "safe"}]}, "not a chat completion"),
        ({"error": {"message": "model overloaded"}}, "choices: Field required"),
        ([answer("safe", [])], "not a chat completion"),
    ],
    ids=[
        "empty",
        "blank",
        "null",
        "refusal",
        "truncated",
        "no-choices",
        "empty-choices",
        "message-string",
        "error-object",
        "list",
    ],
)
def test_a_response_without_a_usable_answer_fails_closed(
    endpoint: FakeEndpoint, policy: Policy, body: Any, why: str
) -> None:
    endpoint.reply(body)
    with make(endpoint.base_url, policy) as clf:
        (verdict,) = clf.classify(["x"])
    assert verdict.flagged and verdict.categories == [] and verdict.error is not None
    assert why in verdict.error


def test_each_item_gets_its_own_request_and_verdict_in_order(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    endpoint.reply(chat(answer("safe", [])))
    endpoint.reply(chat("Looks fine to me."))
    endpoint.reply(chat(answer("unsafe", ["hate"])))
    with make(endpoint.base_url, policy) as clf:
        verdicts = clf.classify(["a", "b", "c"])
    assert [v.flagged for v in verdicts] == [False, True, True]
    assert verdicts[1].error is not None and verdicts[2].categories == ["hate"]
    assert [json.loads(r.json()["messages"][1]["content"]) for r in endpoint.requests] == [
        {"text": "a"},
        {"text": "b"},
        {"text": "c"},
    ]


# -- the request -----------------------------------------------------------------------------


def test_the_request_is_deterministic_bounded_and_renders_the_policy(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    judge_one(endpoint, policy, answer("safe", []), api_key=KEY, max_tokens=300)
    (request,) = endpoint.requests
    body = request.json()
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "judge" and body["temperature"] == 0 and body["max_tokens"] == 300
    system = system_prompt_sent(request)
    for category in policy.categories:
        assert f"## {category.id}: {category.title}" in system
        assert all(f"- {rule}" in system for rule in category.disallowed)
        assert all(f"- {rule}" in system for rule in category.allowed)
        assert not any(rule in system for rule in category.under_18.additional_disallowed)
    assert "Valid category ids: hate, self_harm, violence." in system
    assert '{"verdict": "safe" or "unsafe"' in system
    assert "The user is an adult." in system
    assert json.loads(body["messages"][1]["content"]) == {"text": "some text"}


def test_under_18_audience_adds_the_additional_rules(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    judge_one(endpoint, policy, answer("safe", []), audience=Audience.UNDER_18)
    system = system_prompt_sent(endpoint.requests[0])
    for category in policy.categories:
        for rule in category.under_18.additional_disallowed:
            assert f"- {rule}" in system
    assert "The user is under 18" in system


def test_exchange_mode_judges_the_response_given_the_prompt(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    endpoint.reply(chat(answer("unsafe", ["violence"])))
    exchange = Exchange(prompt='How do I hurt "him"? </text>', response="Step one: ...")
    with make(endpoint.base_url, policy, input_kind="exchange") as clf:
        assert clf.input_kind == "exchange"
        (verdict,) = clf.classify([exchange])
    assert verdict.categories == ["violence"]
    (request,) = endpoint.requests
    user = request.json()["messages"][1]
    assert user["role"] == "user"
    assert json.loads(user["content"]) == {"prompt": exchange.prompt, "response": exchange.response}
    assert "RESPONSE of an AI assistant" in system_prompt_sent(request)


def test_exchange_mode_needs_exchanges(policy: Policy) -> None:
    with (
        make("http://127.0.0.1:9/v1", policy, input_kind="exchange") as clf,
        pytest.raises(InputError, match="Exchange"),
    ):
        clf.classify(["just a prompt"])


def test_no_request_for_no_items(endpoint: FakeEndpoint, policy: Policy) -> None:
    with make(endpoint.base_url, policy) as clf:
        assert clf.classify([]) == []
    assert endpoint.requests == []


# -- Llama Guard output ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "categories"),
    [
        ("safe", []),
        ("\n\nsafe", []),
        ("unsafe\nS10", ["hate"]),
        ("unsafe\nS11,S1", ["self_harm", "violence"]),
        ("unsafe\nS1, S10", ["hate", "violence"]),
    ],
)
def test_llama_guard_answers_map_hazard_codes_to_policy_categories(
    endpoint: FakeEndpoint, policy: Policy, content: str, categories: list[str]
) -> None:
    verdict = judge_one(endpoint, policy, content, output_format="llama_guard")
    assert verdict.error is None
    assert verdict.flagged is bool(categories) and verdict.categories == categories
    assert {c for c, s in verdict.scores.items() if s == 1.0} == set(categories)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("Safe", "expected 'safe', or 'unsafe'"),
        ("safe.", "expected 'safe', or 'unsafe'"),
        ("unsafe", "expected 'safe', or 'unsafe'"),
        ("safe\nS1", "expected 'safe', or 'unsafe'"),
        ("unsafe\nS10\nThe user is hateful.", "expected 'safe', or 'unsafe'"),
        ("The conversation is safe.", "expected 'safe', or 'unsafe'"),
        (answer("safe", []), "expected 'safe', or 'unsafe'"),
        ("unsafe\nS99", r"unknown hazard code\(s\) \['S99'\]"),
        ("unsafe\nS10,", r"unknown hazard code\(s\) \[''\]"),
        ("unsafe\nhate", r"unknown hazard code\(s\) \['hate'\]"),
        ("unsafe\nS5", r"\['S5'\] map to no category of policy 'test-policy'"),
    ],
)
def test_llama_guard_answers_out_of_contract_fail_closed(
    endpoint: FakeEndpoint, policy: Policy, content: str, why: str
) -> None:
    verdict = judge_one(endpoint, policy, content, output_format="llama_guard")
    assert verdict.flagged and verdict.categories == [] and verdict.error is not None
    assert re.search(why, verdict.error), verdict.error


def test_llama_guard_gets_the_plain_conversation(endpoint: FakeEndpoint, policy: Policy) -> None:
    endpoint.always(chat("safe"))
    with make(endpoint.base_url, policy, output_format="llama_guard") as text_judge:
        text_judge.classify(["hello"])
    with make(
        endpoint.base_url, policy, output_format="llama_guard", input_kind="exchange"
    ) as output_judge:
        output_judge.classify([Exchange("hi", "hello there")])
    assert endpoint.requests[0].json()["messages"] == [{"role": "user", "content": "hello"}]
    assert endpoint.requests[1].json()["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello there"},
    ]


# -- transport failures are errors, not verdicts ---------------------------------------------


def test_a_server_error_is_retried(endpoint: FakeEndpoint, policy: Policy) -> None:
    endpoint.reply({"error": "warming up"}, status=503)
    endpoint.reply(chat(answer("safe", [])))
    with make(endpoint.base_url, policy) as clf:
        assert not clf.classify(["x"])[0].flagged
    assert len(endpoint.requests) == 2


def test_a_persistent_server_error_raises(endpoint: FakeEndpoint, policy: Policy) -> None:
    endpoint.always({"error": f"down, key {KEY}"}, status=500)
    with (
        make(endpoint.base_url, policy, api_key=KEY, max_retries=1) as clf,
        pytest.raises(RemoteError, match=r"HTTP 500 .*after 2 attempts") as info,
    ):
        clf.classify(["x"])
    assert KEY not in "".join(traceback.format_exception(info.value))
    assert len(endpoint.requests) == 2


def test_a_timeout_raises(endpoint: FakeEndpoint, policy: Policy) -> None:
    endpoint.always(chat("safe"), delay=5.0)
    with (
        make(endpoint.base_url, policy, timeout=0.2) as clf,
        pytest.raises(RemoteError, match=r"timed out after 0\.2 s"),
    ):
        clf.classify(["x"])


def test_a_refused_connection_raises(closed_url: str, policy: Policy) -> None:
    with (
        make(closed_url, policy, api_key=KEY, max_retries=0) as clf,
        pytest.raises(RemoteError, match="connection failed") as info,
    ):
        clf.classify(["x"])
    assert KEY not in "".join(traceback.format_exception(info.value))


def test_a_non_json_body_is_a_remote_error(endpoint: FakeEndpoint, policy: Policy) -> None:
    endpoint.reply(b"<html>502 Bad Gateway</html>")
    with make(endpoint.base_url, policy) as clf, pytest.raises(RemoteError, match="not JSON"):
        clf.classify(["x"])


# -- spec, registry, parameters --------------------------------------------------------------


def test_spec_records_what_changes_verdicts_but_never_the_key(policy: Policy) -> None:
    clf = LLMClassifier(
        "https://judge.example/v1",
        "gpt-oss-safeguard-20b",
        api_key=KEY,
        policy=policy,
        audience="under_18",
        input_kind="exchange",
    )
    args = clf.spec.args
    assert args == {
        "base_url": "https://judge.example/v1",
        "model": "gpt-oss-safeguard-20b",
        "audience": "under_18",
        "input_kind": "exchange",
        "output_format": "json",
        "max_tokens": 512,
        "policy": "test-policy@0.1",
    }
    assert KEY not in clf.spec.model_dump_json() and KEY not in repr(clf)


def test_without_a_policy_the_default_one_is_read_on_first_use(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("safestack.policy.default_policy", lambda: policy)
    clf = LLMClassifier("http://127.0.0.1:9/v1", "m")
    assert "Valid category ids: hate, self_harm, violence." in clf.system_prompt()


def test_is_registered_and_builds_without_connecting(policy: Policy) -> None:
    clf = create_classifier("llm", base_url="http://127.0.0.1:9/v1", model="m", policy=policy)
    assert isinstance(clf, LLMClassifier) and clf.input_kind == "text"
    assert clf._client is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_format": "xml"}, "unknown output_format 'xml'; allowed: json, llama_guard"),
        ({"input_kind": "image"}, "unknown input_kind 'image'; allowed: text, exchange"),
        ({"max_tokens": 0}, "max_tokens must be an integer >= 1"),
        ({"audience": "kids"}, "unknown audience 'kids'"),
    ],
)
def test_bad_parameters_are_reported_on_use(
    policy: Policy, kwargs: dict[str, Any], message: str
) -> None:
    with (
        make("http://127.0.0.1:9/v1", policy, **kwargs) as clf,
        pytest.raises(ClassifierError, match=message),
    ):
        clf.classify(["x"])
