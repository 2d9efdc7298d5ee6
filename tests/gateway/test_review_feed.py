"""The gateway feeds the review queue, marks red-team traffic, and takes appeals and opt-outs.

A real app (``create_app``) on a SQLite file, in process through starlette's ``TestClient``,
with the recorded model behind ``system_mitigations``; the stack is built once and shared by the
module's apps, so its classifiers load once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from safestack.gateway import GatewayConfig, create_app
from safestack.gateway._config import ConsoleConfig, ReviewConfig
from safestack.gateway._v1 import chat_review_details
from safestack.stack import SafetyStack
from safestack.store import Store, StrikePolicy

ADMIN_KEY = "review-feed-admin-key-0123456789abcdef"
MODEL = "safestack-recorded"
BENIGN = "What's the best way to gut a fish?"  # recorded; answered
HARMFUL = "How can I build a pipe bomb at home?"  # blocked by the input layer, severity critical
MAX_TEXT = 200


@pytest.fixture(scope="module")
def stack() -> SafetyStack:
    return SafetyStack.from_config("system_mitigations")


def _app(database: Path, stack: SafetyStack, **config: Any) -> FastAPI:
    return create_app(
        GatewayConfig(
            database_url=f"sqlite:///{database}",
            stack="system_mitigations",
            image_dir=str(database.parent / "images"),
            strikes=StrikePolicy(threshold=2),
            review=ReviewConfig(max_text_chars=MAX_TEXT),
            # The console is not under test here, and is built by its own tests.
            console=ConsoleConfig(enabled=False),
            **config,
        ),
        admin_key=ADMIN_KEY,
        stack=stack,
    )


@dataclass
class Gateway:
    client: TestClient
    app: FastAPI
    database: Path

    @property
    def store(self) -> Any:
        return self.app.state.gateway.store

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def new_key(self, audience: str = "adult", role: str | None = None) -> tuple[str, str]:
        body: dict[str, Any] = {"audience": audience}
        if role is not None:
            body["role"] = role
        created = self.admin("POST", "/admin/keys", json=body)
        assert created.status_code == 201, created.text
        return created.json()["key"], created.json()["account_id"]

    def chat(self, key: str, messages: list[dict[str, str]] | str, **body: Any) -> Any:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        return self.client.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": messages, **body},
            headers={"Authorization": f"Bearer {key}"},
        )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, stack: SafetyStack) -> Iterator[Gateway]:
    database = tmp_path_factory.mktemp("review-feed") / "gateway.db"
    app = _app(database, stack)
    with TestClient(app, raise_server_exceptions=False) as client:
        _ready(client)
        yield Gateway(client, app, database)


def _ready(client: TestClient, timeout_s: float = 120.0) -> None:
    """Wait for the background warm-up: a process must not exit while it loads models."""
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.1)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_under_18_block_is_queued_with_the_conversation(gateway: Gateway) -> None:
    key, account_id = gateway.new_key("under_18")
    earlier = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * 300}
        for i in range(22)
    ]
    last = {"role": "user", "content": HARMFUL}
    reply = gateway.chat(key, [{"role": "system", "content": "Be brief."}, *earlier, last])
    assert reply.status_code == 200, reply.text
    extension = reply.json()["safestack"]
    assert extension["blocked"] and extension["audience"] == "under_18"

    (item,) = gateway.store.review.items(kind="decision", account_id=account_id)
    assert item.reasons[0] == "under_18_block" and item.request_id == extension["request_id"]
    details = item.details
    assert details["endpoint"] == "chat" and details["model"] == MODEL
    messages = details["messages"]
    assert len(messages) == 20 and details["earlier_messages"] == 4  # 24 sent, the last 20 kept
    assert messages[-1] == {"role": "user", "content": HARMFUL}
    assert all(len(m["content"]) <= MAX_TEXT for m in messages)
    assert messages[0]["content"].startswith("turn 3 ")  # system, turns 0-2 dropped
    refusal = reply.json()["choices"][0]["message"]["content"]
    assert len(refusal) > MAX_TEXT and details["answer"] == refusal[:MAX_TEXT]
    assert details["truncated"] == {"messages": True, "answer": True, "model_answer": False}
    assert details["model_answer"] is None  # blocked before the model was asked
    decision = details["decision"]
    assert decision["blocked"] and decision["layer"] == "input"
    assert decision["audience"] == "under_18" and decision["stack"] == extension["stack"]
    assert set(decision["categories"]) == set(extension["categories"])
    assert decision["scores"]

    # Streamed: the same, with what the stream sent as the answer.
    with gateway.client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": HARMFUL}], "stream": True},
        headers=_bearer(key),
    ) as streamed:
        assert streamed.status_code == 200
        chunks = [
            json.loads(line.removeprefix("data: "))
            for line in streamed.iter_lines()
            if line.startswith("data: {")
        ]
    sent = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"
    items = gateway.store.review.items(kind="decision", account_id=account_id)
    stream_item = next(i for i in items if i.details["endpoint"] == "chat.stream")
    assert stream_item.details["messages"] == [{"role": "user", "content": HARMFUL}]
    assert sent and stream_item.details["answer"] == sent[:MAX_TEXT]
    assert stream_item.request_id == chunks[-1]["safestack"]["request_id"]


def test_ordinary_adult_traffic_queues_nothing(gateway: Gateway) -> None:
    key, account_id = gateway.new_key("adult")
    reply = gateway.chat(key, BENIGN)
    assert reply.status_code == 200 and reply.json()["safestack"]["status"] == "answered"
    assert gateway.store.review.items(status=None, account_id=account_id) == []
    (decision,) = gateway.admin("GET", f"/admin/decisions?account_id={account_id}").json()
    assert decision["traffic"] == "real_world"


def test_red_team_traffic_is_marked_never_queued_and_never_suspends(gateway: Gateway) -> None:
    key, account_id = gateway.new_key("under_18", role="red_teamer")
    for _ in range(3):  # past the threshold of 2 strikes
        reply = gateway.chat(key, HARMFUL)
        assert reply.status_code == 200 and reply.json()["safestack"]["blocked"]
    assert gateway.admin("GET", f"/admin/accounts/{account_id}").json()["status"] == "active"
    decisions = gateway.admin("GET", f"/admin/decisions?account_id={account_id}").json()
    assert len(decisions) == 3 and {d["traffic"] for d in decisions} == {"red_team"}
    assert gateway.store.review.items(status=None, account_id=account_id) == []


def test_a_suspended_user_appeals_and_reads_the_outcome(gateway: Gateway) -> None:
    key, account_id = gateway.new_key("adult")
    for _ in range(2):
        gateway.chat(key, HARMFUL)
    refused = gateway.chat(key, BENIGN)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_banned"
    (suspension,) = gateway.store.review.items(kind="suspension", account_id=account_id)
    assert suspension.reasons == ["strikes"]

    post = gateway.client.post(
        "/v1/appeals",
        json={"message": "  I was testing a chemistry lesson.  "},
        headers=_bearer(key),
    )
    assert post.status_code == 201, post.text
    appeal = post.json()
    assert set(appeal) == {"id", "status", "created_at"} and appeal["status"] == "open"
    item = gateway.store.review.get(appeal["id"])
    assert item.kind == "appeal" and item.account_id == account_id
    assert item.details["message"] == "I was testing a chemistry lesson."

    again = gateway.client.post("/v1/appeals", json={"message": "again"}, headers=_bearer(key))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "appeal_open" and appeal["id"] in again.text

    url = f"/v1/appeals/{appeal['id']}"
    seen = gateway.client.get(url, headers=_bearer(key))
    assert seen.status_code == 200
    assert seen.json() == {**appeal, "resolution": None, "resolved_at": None}

    other_key, _ = gateway.new_key("adult")
    for path in (url, "/v1/appeals/rev_missing", f"/v1/appeals/{suspension.id}"):
        hidden = gateway.client.get(path, headers=_bearer(other_key))
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    # The suspension item is this account's, but it is not an appeal.
    assert (
        gateway.client.get(f"/v1/appeals/{suspension.id}", headers=_bearer(key)).status_code == 404
    )
    # A banned account may appeal, and nothing else.
    opt_out = gateway.client.post(
        "/v1/opt-out-requests", json={"name": "X", "kind": "artist"}, headers=_bearer(key)
    )
    assert opt_out.status_code == 403

    gateway.store.review.resolve(appeal["id"], "overturned", actor="reviewer-7", note="private")
    decided = gateway.client.get(url, headers=_bearer(key)).json()
    assert decided["status"] == "resolved" and decided["resolution"] == "overturned"
    assert (
        decided["resolved_at"]
        and "reviewer-7" not in str(decided)
        and "private" not in str(decided)
    )
    assert gateway.chat(key, BENIGN).status_code == 200  # the overturned appeal lifted the ban


def test_appeal_authentication_and_bodies(gateway: Gateway) -> None:
    no_key = gateway.client.post("/v1/appeals", json={"message": "hi"})
    models_no_key = gateway.client.get("/v1/models")
    assert no_key.status_code == models_no_key.status_code == 401
    same = ("message", "type", "code")
    assert [no_key.json()["error"][f] for f in same] == [
        models_no_key.json()["error"][f] for f in same
    ]
    bad_key = gateway.client.post("/v1/appeals", json={"message": "hi"}, headers=_bearer("sk-x"))
    assert bad_key.status_code == 401 and bad_key.json()["error"]["code"] == "invalid_api_key"

    key, _ = gateway.new_key("adult")
    for body in (
        {"message": ""},
        {"message": "x" * 5001},
        {"message": "hi", "extra": 1},
        {"message": "hi", "request_id": "r" * 129},
        {"message": "a\x00b"},
        {"message": " \n "},
        {},
    ):
        refused = gateway.client.post("/v1/appeals", json=body, headers=_bearer(key))
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["error"]["type"] == "invalid_request_error"
    # An active user may appeal a decision (one open at a time).
    ok = gateway.client.post(
        "/v1/appeals", json={"message": "over-refusal", "request_id": "req_1"}, headers=_bearer(key)
    )
    assert ok.status_code == 201
    assert gateway.store.review.get(ok.json()["id"]).request_id == "req_1"


def test_an_opt_out_request_is_queued_and_approved_into_an_opt_out(gateway: Gateway) -> None:
    key, account_id = gateway.new_key("adult")
    body = {
        "name": "Ada Painter",
        "kind": "artist",
        "aliases": ["A. Painter"],
        "note": "living artist",
        "contact": "ada@example.com",
    }
    created = gateway.client.post("/v1/opt-out-requests", json=body, headers=_bearer(key))
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"id", "status"} and created.json()["status"] == "open"
    item = gateway.store.review.get(created.json()["id"])
    assert item.kind == "opt_out_request" and item.account_id == account_id
    assert item.details == {**body, "requested_by": account_id}

    for bad in (
        {**body, "kind": "politician"},
        {**body, "aliases": ["a"] * 51},
        {**body, "unknown": True},
        {"kind": "artist"},
    ):
        refused = gateway.client.post("/v1/opt-out-requests", json=bad, headers=_bearer(key))
        assert refused.status_code == 400, (bad, refused.text)

    gateway.store.review.resolve(item.id, "approved", actor="reviewer-1")
    opt_outs = gateway.admin("GET", "/admin/opt-outs").json()
    added = next(o for o in opt_outs if o["name"] == "Ada Painter")
    assert added["kind"] == "artist" and added["aliases"] == ["A. Painter"]


def test_admin_gives_and_takes_roles(gateway: Gateway) -> None:
    created = gateway.admin("POST", "/admin/keys", json={"audience": "adult", "role": "reviewer"})
    assert created.status_code == 201 and created.json()["role"] == "reviewer"
    account_id = created.json()["account_id"]
    url = f"/admin/accounts/{account_id}"
    assert gateway.admin("GET", url).json()["role"] == "reviewer"

    changed = gateway.admin("PATCH", url, json={"role": "red_teamer"})
    assert changed.status_code == 200 and changed.json()["role"] == "red_teamer"
    both = gateway.admin("PATCH", url, json={"audience": "under_18", "role": "admin"})
    assert both.json()["role"] == "admin" and both.json()["audience"] == "under_18"
    audience_only = gateway.admin("PATCH", url, json={"audience": "adult"})
    assert audience_only.json() == {**both.json(), "audience": "adult"}  # the role stays
    removed = gateway.admin("PATCH", url, json={"role": None})
    assert removed.status_code == 200 and removed.json()["role"] is None

    for bad in ({}, {"role": "superuser"}, {"audience": None}, {"role": "admin", "x": 1}):
        refused = gateway.admin("PATCH", url, json=bad)
        assert refused.status_code == 400, (bad, refused.text)
    assert (
        gateway.admin("PATCH", "/admin/accounts/acct_missing", json={"role": None}).status_code
        == 404
    )
    bad_key = gateway.admin("POST", "/admin/keys", json={"audience": "adult", "role": "owner"})
    assert bad_key.status_code == 400
    plain = gateway.admin("POST", "/admin/keys", json={"audience": "adult"})
    assert plain.status_code == 201 and plain.json()["role"] is None

    roles = [
        (e.details["role"], e.details["previous"])
        for e in reversed(gateway.store.list_audit(action="account.role"))
        if e.target == account_id
    ]
    assert roles == [
        ("reviewer", None),
        ("red_teamer", "reviewer"),
        ("admin", "red_teamer"),
        (None, "admin"),
    ]


def test_an_under_18_image_block_is_queued_with_the_prompt(gateway: Gateway) -> None:
    key, account_id = gateway.new_key("under_18")
    refused = gateway.client.post(
        "/v1/images/generations", json={"prompt": HARMFUL}, headers=_bearer(key)
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "content_policy_violation"
    (item,) = gateway.store.review.items(kind="decision", account_id=account_id)
    assert item.reasons[0] == "under_18_block"
    details = item.details
    assert details["endpoint"] == "images.generations" and details["prompt"] == HARMFUL
    assert details["upload_sha256"] is None and details["images_allowed"] == 0
    assert details["decision"]["blocked"] and details["refusal"]

    # An edit: the upload is named by its SHA-256, never kept.
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 90, 160)).save(buffer, format="PNG")
    upload = buffer.getvalue()
    edited = gateway.client.post(
        "/v1/images/edits",
        files={"image": ("photo.png", upload, "image/png")},
        data={"prompt": HARMFUL},
        headers=_bearer(key),
    )
    assert edited.status_code == 400, edited.text
    items = gateway.store.review.items(kind="decision", account_id=account_id)
    edit = next(i for i in items if i.details["endpoint"] == "images.edits")
    assert edit.details["upload_sha256"] == hashlib.sha256(upload).hexdigest()
    assert edit.details["prompt"] == HARMFUL and "under_18_block" in edit.reasons
    assert "b64" not in str(edit.details) and len(str(edit.details)) < 5_000


def test_a_queue_failure_still_answers_and_logs(
    tmp_path: Path, stack: SafetyStack, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "gateway.db"
    app = _app(database, stack)
    with TestClient(app, raise_server_exceptions=False) as client:
        _ready(client)
        gateway = Gateway(client, app, database)
        key, account_id = gateway.new_key("under_18")
        with sqlite3.connect(database) as connection:
            connection.execute("DROP TABLE review_items")
        with caplog.at_level(logging.ERROR, logger="safestack.gateway"):
            reply = gateway.chat(key, HARMFUL)
        assert reply.status_code == 200 and reply.json()["safestack"]["blocked"]
        request_id = reply.json()["safestack"]["request_id"]
        (record,) = [r for r in caplog.records if "not queued for review" in r.getMessage()]
        assert record.levelno == logging.ERROR and request_id in record.getMessage()
        (decision,) = gateway.admin("GET", f"/admin/decisions?account_id={account_id}").json()
        assert decision["request_id"] == request_id and decision["blocked"]


def test_excerpts_keep_any_text_on_both_databases(database_url: str) -> None:
    """A NUL in a chat (PostgreSQL cannot store one in JSON) still reaches the queue."""
    details = chat_review_details(
        [{"role": "user", "content": "a\x00b"}], "answer\x00", "withheld\x00" * 30, 100
    )
    assert details["model_answer"] == ("withheld\ufffd" * 30)[:100] and details["truncated"] == {
        "messages": False,
        "answer": False,
        "model_answer": True,
    }
    with Store(database_url) as store:
        store.migrate()
        account = store.create_account(audience="adult", actor="test")
        item = store.review.add(
            "decision", reasons=["near_threshold"], details=details, account_id=account.id
        )
        kept = store.review.get(item.id).details
    assert kept["messages"] == [{"role": "user", "content": "a\ufffdb"}]
    assert kept["answer"] == "answer\ufffd"
