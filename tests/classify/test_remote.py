from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

import pytest

from safestack.classify._registry import create_classifier
from safestack.classify.remote import RemoteModerationClassifier
from safestack.errors import ClassifierError, InputError, RemoteError
from safestack.policy import OPENAI_MODERATION_CATEGORIES, Audience, Policy

if TYPE_CHECKING:
    from loopback import FakeEndpoint, Received

KEY = "sk-test-SECRET-0123456789"


def result(**scores: float) -> dict[str, Any]:
    """One OpenAI-shaped moderation result; keyword names use ``_`` for ``/`` and ``-``."""
    named = {k.replace("__", "/").replace("_", "-"): v for k, v in scores.items()}
    all_scores = {name: named.get(name, 0.0) for name in sorted(OPENAI_MODERATION_CATEGORIES)}
    return {
        "flagged": any(v >= 0.5 for v in all_scores.values()),
        "categories": {name: v >= 0.5 for name, v in all_scores.items()},
        "category_scores": all_scores,
    }


def moderation(*results: dict[str, Any]) -> dict[str, Any]:
    return {"id": "modr-1", "model": "omni-moderation-latest", "results": list(results)}


def make(endpoint_url: str, policy: Policy, **kwargs: Any) -> RemoteModerationClassifier:
    return RemoteModerationClassifier(endpoint_url, policy=policy, **kwargs)


def test_scores_map_onto_policy_categories_and_flag_by_threshold(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    endpoint.reply(
        moderation(
            result(hate=0.2, hate__threatening=0.9, self_harm=0.1, violence=0.3, sexual=0.99),
            result(),
        )
    )
    with make(endpoint.base_url, policy) as clf:
        first, second = clf.classify(["some text", "other text"])

    assert first.scores == {"hate": 0.9, "self_harm": 0.1, "violence": 0.3}  # max; no 'sexual'
    assert first.flagged and first.categories == ["hate"]
    assert not second.flagged and second.scores == {"hate": 0.0, "self_harm": 0.0, "violence": 0.0}
    (request,) = endpoint.requests
    assert request.method == "POST" and request.path == "/v1/moderations"
    assert request.json() == {
        "model": "omni-moderation-latest",
        "input": ["some text", "other text"],
    }


def test_under_18_audience_flags_at_the_stricter_threshold(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    endpoint.always(moderation(result(violence=0.35)))
    with (
        make(endpoint.base_url, policy) as adult,
        make(endpoint.base_url, policy, audience=Audience.UNDER_18) as minor,
    ):
        assert not adult.classify(["x"])[0].flagged
        assert minor.classify(["x"])[0].categories == ["violence"]


def test_a_category_the_endpoint_does_not_score_is_absent(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    older = {
        "flagged": False,
        "categories": {"hate": False},
        "category_scores": {"hate": 0.7, "illicit": 0.99},
    }
    endpoint.reply(moderation(older))
    with make(endpoint.base_url, policy) as clf:
        (verdict,) = clf.classify(["x"])
    assert verdict.scores == {"hate": 0.7}
    assert verdict.categories == ["hate"]


def test_texts_are_sent_in_batches_and_verdicts_keep_their_order(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    def score_by_index(request: Received) -> dict[str, Any]:
        texts = request.json()["input"]
        return moderation(*(result(hate=int(t.split()[1]) / 100) for t in texts))

    endpoint.respond(score_by_index)
    texts = [f"text {i}" for i in range(70)]
    with make(endpoint.base_url, policy, batch_size=32) as clf:
        verdicts = clf.classify(texts)

    assert [len(r.json()["input"]) for r in endpoint.requests] == [32, 32, 6]
    assert [v.scores["hate"] for v in verdicts] == [i / 100 for i in range(70)]
    assert [v.flagged for v in verdicts] == [i >= 50 for i in range(70)]


def test_no_request_for_no_texts(endpoint: FakeEndpoint, policy: Policy) -> None:
    with make(endpoint.base_url, policy) as clf:
        assert clf.classify([]) == []
    assert endpoint.requests == []


def test_authorization_header_is_sent_only_with_a_key(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    endpoint.always(moderation(result()))
    with (
        make(endpoint.base_url, policy, api_key=KEY) as keyed,
        make(endpoint.base_url, policy) as anonymous,
    ):
        keyed.classify(["x"])
        anonymous.classify(["x"])
    assert endpoint.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in endpoint.requests[1].headers


def test_a_server_error_is_retried(endpoint: FakeEndpoint, policy: Policy) -> None:
    endpoint.reply({"error": "boom"}, status=500)
    endpoint.reply(moderation(result(hate=0.8)))
    with make(endpoint.base_url, policy) as clf:
        (verdict,) = clf.classify(["x"])
    assert verdict.categories == ["hate"]
    assert len(endpoint.requests) == 2


def test_rate_limiting_is_retried_after_the_servers_delay(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    endpoint.reply({"error": "slow down"}, status=429, headers={"Retry-After": "0"})
    endpoint.reply(moderation(result()))
    with make(endpoint.base_url, policy) as clf:
        assert not clf.classify(["x"])[0].flagged
    assert len(endpoint.requests) == 2


def test_a_persistent_server_error_raises_after_bounded_retries(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    endpoint.always({"error": "still down"}, status=503)
    with (
        make(endpoint.base_url, policy, max_retries=2) as clf,
        pytest.raises(RemoteError, match=r"HTTP 503 .*after 3 attempts.*still down"),
    ):
        clf.classify(["x"])
    assert len(endpoint.requests) == 3


def test_a_client_error_is_not_retried(endpoint: FakeEndpoint, policy: Policy) -> None:
    endpoint.always({"error": "bad model"}, status=400)
    with make(endpoint.base_url, policy) as clf, pytest.raises(RemoteError, match="HTTP 400"):
        clf.classify(["x"])
    assert len(endpoint.requests) == 1


def test_a_timeout_raises_without_retrying(endpoint: FakeEndpoint, policy: Policy) -> None:
    endpoint.always(moderation(result()), delay=5.0)
    with (
        make(endpoint.base_url, policy, timeout=0.2) as clf,
        pytest.raises(RemoteError, match=r"timed out after 0\.2 s"),
    ):
        clf.classify(["x"])
    assert len(endpoint.requests) == 1


def test_a_refused_connection_raises(closed_url: str, policy: Policy) -> None:
    with (
        make(closed_url, policy, max_retries=1) as clf,
        pytest.raises(RemoteError, match="connection failed after 2 attempt") as info,
    ):
        clf.classify(["x"])
    assert isinstance(info.value, ClassifierError)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (moderation(result(), result()), r"2 result\(s\) for 1 input"),
        (moderation(), r"0 result\(s\) for 1 input"),
        (moderation(result(hate=1.7)), r"category_scores\.hate: .*less than or equal to 1"),
        (moderation(result(hate=-0.1)), r"category_scores\.hate: .*greater than or equal to 0"),
        (
            moderation({**result(), "category_scores": {"hate": "0.4"}}),
            r"category_scores\.hate: .*valid number",
        ),
        (
            moderation({"flagged": False, "categories": {}}),
            r"results\.0\.category_scores: .*"
            r"Field required",
        ),
        ({"id": "x"}, r"results: Field required"),
        ([1, 2], "out of contract"),
        (b"<html>bad gateway</html>", r"not JSON: '<html>bad gateway</html>'"),
        (
            b'{"results": [{"flagged": false, "categories": {}, '
            b'"category_scores": {"hate": NaN}}]}',
            r"finite number",
        ),
    ],
    ids=[
        "too-many",
        "none",
        "above-1",
        "below-0",
        "string-score",
        "no-category-scores",
        "no-results",
        "not-an-object",
        "not-json",
        "nan",
    ],
)
def test_an_answer_out_of_contract_raises(
    endpoint: FakeEndpoint, policy: Policy, body: Any, message: str
) -> None:
    endpoint.reply(body)
    with make(endpoint.base_url, policy) as clf, pytest.raises(RemoteError, match=message):
        clf.classify(["x"])


@pytest.mark.parametrize(
    ("body", "status", "delay"),
    [
        ({"error": {"message": f"Incorrect API key provided: {KEY}"}}, 401, 0.0),
        ({"error": f"key {KEY} overloaded"}, 500, 0.0),
        (f"not json {KEY}".encode(), 200, 0.0),
        (moderation(result(hate=3.0)), 200, 0.0),
        (moderation(result()), 200, 5.0),
    ],
    ids=["401-echo", "500-echo", "not-json-echo", "bad-score", "timeout"],
)
def test_the_api_key_never_appears_in_errors_or_logs(
    endpoint: FakeEndpoint,
    policy: Policy,
    body: Any,
    status: int,
    delay: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint.always(body, status=status, delay=delay)
    caplog.set_level(logging.DEBUG)
    with (
        make(endpoint.base_url, policy, api_key=KEY, timeout=0.3) as clf,
        pytest.raises(RemoteError) as info,
    ):
        clf.classify(["x"])
    assert endpoint.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in "".join(traceback.format_exception(info.value))  # causes included
    if KEY in str(body):
        assert "***" in str(info.value)  # the server's echo is masked, the rest kept
    assert KEY not in caplog.text


def test_refused_connection_error_hides_the_key_and_url_credentials(
    closed_url: str, policy: Policy
) -> None:
    url = closed_url.replace("http://", f"http://user:{KEY}@") + f"?key={KEY}"
    with make(url, policy, api_key=KEY, max_retries=0) as clf, pytest.raises(RemoteError) as info:
        clf.classify(["x"])
    assert KEY not in str(info.value)
    assert KEY not in repr(clf) and KEY not in str(clf.spec)


def test_spec_names_the_endpoint_and_model_but_not_the_key(policy: Policy) -> None:
    clf = RemoteModerationClassifier(
        "https://moderation.example/v1",
        api_key=KEY,
        model="omni-moderation-2024-09-26",
        policy=policy,
    )
    spec = clf.spec
    assert spec.name == "remote-moderation"
    assert spec.args["base_url"] == "https://moderation.example/v1"
    assert spec.args["model"] == "omni-moderation-2024-09-26"
    assert spec.args["policy"] == "test-policy@0.1"
    assert KEY not in spec.model_dump_json() and KEY not in repr(clf)


def test_is_registered_and_builds_without_connecting(policy: Policy) -> None:
    clf = create_classifier("remote-moderation", base_url="http://127.0.0.1:9/v1", policy=policy)
    assert isinstance(clf, RemoteModerationClassifier)
    assert clf.input_kind == "text"
    assert clf._client is None  # nothing opened until the first classify()


def test_close_releases_the_client_and_a_closed_classifier_reopens(
    endpoint: FakeEndpoint, policy: Policy
) -> None:
    endpoint.always(moderation(result()))
    clf = make(endpoint.base_url, policy)
    clf.classify(["x"])
    clf.close()
    assert clf._client is None
    clf.classify(["y"])
    clf.close()
    assert len(endpoint.requests) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"base_url": "ftp://host/v1"}, "must be an http:// or https:// URL"),
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"audience": "teen"}, "unknown audience 'teen'; allowed: adult, under_18"),
    ],
)
def test_bad_parameters_are_reported_on_use(
    policy: Policy, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"base_url": "http://127.0.0.1:9/v1", "policy": policy, **kwargs}
    with RemoteModerationClassifier(**args) as clf, pytest.raises(ClassifierError, match=message):
        clf.classify(["x"])


def test_a_single_string_is_refused(policy: Policy) -> None:
    with make("http://127.0.0.1:9/v1", policy) as clf, pytest.raises(InputError):
        clf.classify("one text")  # type: ignore[arg-type]


def test_without_a_policy_the_default_one_is_read_on_first_use(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_default() -> Policy:
        calls.append(1)
        return policy

    monkeypatch.setattr("safestack.policy.default_policy", fake_default)
    clf = RemoteModerationClassifier("http://127.0.0.1:9/v1")
    assert calls == []  # not at construction
    assert clf.spec.args["policy"] == "test-policy@0.1"
    assert clf.spec.args["policy"] == "test-policy@0.1"
    assert calls == [1]  # once


def test_the_cli_talks_to_a_remote_endpoint_with_the_key_from_the_environment(
    endpoint: FakeEndpoint, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`safestack classify -c remote-moderation --base-url …`: the interface, end to end."""
    import json

    from typer.testing import CliRunner

    from safestack.cli import app

    endpoint.reply(moderation(result(self_harm__intent=0.97), result()))
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "first"}\n{"text": "second"}\n')
    monkeypatch.setenv("SAFESTACK_API_KEY", KEY)
    run = CliRunner().invoke(
        app,
        [
            "classify",
            "-i",
            str(path),
            "-c",
            "remote-moderation",
            "--base-url",
            endpoint.base_url,
            "--json",
        ],
    )
    assert run.exit_code == 1, run.output
    first, second = (json.loads(line) for line in run.stdout.splitlines())
    assert first["flagged"] and first["categories"] == ["self_harm"]  # default policy mapping
    assert not second["flagged"]
    (request,) = endpoint.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in run.output

    missing = CliRunner().invoke(app, ["classify", "x", "-c", "remote-moderation"])
    assert missing.exit_code == 2 and "base_url" in missing.stderr
