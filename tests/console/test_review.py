"""The review queue pages: who may work it, what each item shows, and what resolving does."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from console_harness import ConsoleHarness, csrf_of
from fastapi.testclient import TestClient

from safestack.evals import Sample, load_jsonl_samples
from safestack.store import NewDecision, ReviewItem, StrikePolicy

if TYPE_CHECKING:  # what TestClient returns (starlette's test client runs on httpx2)
    from httpx2 import Response

XSS = ("<script>alert(1)</script>", '"><img src=x onerror=1>')
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=1&gt;")


def _reviewer(console: ConsoleHarness, name: str, role: str = "reviewer") -> TestClient:
    _, key = console.user(role, name=name)
    return console.sign_in(key)


def _decision(
    console: ConsoleHarness,
    account_id: str,
    *,
    prompt: str = "How do I pick a lock?",
    blocked: bool = True,
    categories: list[str] | None = None,
    answer: str = "I can't help with that.",
    model_answer: str | None = None,
    reasons: list[str] | None = None,
) -> ReviewItem:
    """A decision item in the shape the gateway queues it."""
    cats = ["illicit_activities"] if categories is None else categories
    return console.store.review.add(
        "decision",
        reasons=reasons or ["near_threshold"],
        account_id=account_id,
        request_id="req-" + prompt[:8].replace(" ", "-"),
        details={
            "endpoint": "/v1/chat/completions",
            "model": "safestack-recorded",
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": prompt},
            ],
            "earlier_messages": 0,
            "answer": answer,
            "model_answer": model_answer,
            "truncated": {"messages": False, "answer": False, "model_answer": False},
            "decision": {
                "status": "blocked" if blocked else "allowed",
                "blocked": blocked,
                "layer": "input" if blocked else None,
                "categories": cats,
                "scores": {"illicit_activities": 0.52, "violence": 0.11},
                "clause": "illicit_activities.disallowed.1" if blocked else None,
                "rationale": "instructions for breaking into property",
                "audience": "adult",
                "stack": "default",
            },
        },
    )


def _hash_match(console: ConsoleHarness, account_id: str) -> ReviewItem:
    console.store.record_hash_match(
        account_id=account_id,
        details={
            "request_id": "req-image-1",
            "endpoint": "/v1/images/edits",
            "audience": "adult",
            "detected_at": "2026-11-23T10:00:00Z",
            "match": {
                "bank": "test-bank",
                "bank_id": "bank_1",
                "hash_type": "pdq",
                "value": "f" * 64,
                "distance": 4,
                "entry": {"source": "test list"},
            },
            "media": {"sha256": "a" * 64, "md5": "b" * 32, "pdq": "f" * 64, "pdq_quality": 90},
            "actions": ["ban", "reject", "report"],
            "rejected": True,
        },
        dedupe_key=f"{account_id}:bank_1:aaaa",
        report=True,
        ban=True,
        deliver=False,
        ban_reason="an image matched the known-bad media bank 'test-bank'",
    )
    (item,) = console.store.review.items(kind="hash_match", account_id=account_id)
    return item


def _suspension(console: ConsoleHarness, account_id: str) -> ReviewItem:
    for n in range(3):
        console.store.record_decision(
            NewDecision(
                request_id=f"req-strike-{account_id}-{n}",
                account_id=account_id,
                endpoint="/v1/chat/completions",
                model="safestack-recorded",
                status="blocked",
                blocked=True,
                layer="input",
                categories=["weapons_cbrn"],
                severity="critical",
                clause=None,
                audience="adult",
                latency_ms=3.0,
            )
        )
    assert console.store.apply_strikes(account_id, StrikePolicy(threshold=3)) is not None
    (item,) = console.store.review.items(kind="suspension", account_id=account_id)
    return item


def _opt_out(console: ConsoleHarness, name: str = "Jane Painter") -> ReviewItem:
    return console.store.review.add(
        "opt_out_request",
        reasons=["opt_out_request"],
        details={
            "name": name,
            "kind": "artist",
            "aliases": ["J. Painter"],
            "note": "please stop imitating my style",
            "contact": "jane@example.org",
            "requested_by": "jane",
        },
    )


def _resolve(client: TestClient, item_id: str, resolution: str, **fields: str) -> Response:
    page = client.get(f"/console/review/{item_id}")
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_of(page), "resolution": resolution, **fields}
    return client.post(f"/console/review/{item_id}/resolve", data=data)


def _customer(console: ConsoleHarness, name: str = "customer") -> str:
    account_id, _ = console.user(None, name=name)
    return account_id


# -- roles and CSRF -----------------------------------------------------------------------------


def test_a_red_teamer_gets_403_on_every_review_page_and_post(console: ConsoleHarness) -> None:
    item = _decision(console, _customer(console))
    red = _reviewer(console, "red", role="red_teamer")
    token = csrf_of(red.get("/console/"))
    for path in (
        "/console/review",
        "/console/review?status=resolved&kind=appeal",
        f"/console/review/{item.id}",
        f"/console/review/{item.id}/report.json",
        "/console/review/samples.jsonl",
    ):
        response = red.get(path)
        assert response.status_code == 403, path
        assert "red_teamer" in response.text
    for action, extra in (
        ("resolve", {"resolution": "overturned"}),
        ("ban", {"reason": "nope"}),
        ("unban", {}),
    ):
        response = red.post(
            f"/console/review/{item.id}/{action}", data={"csrf_token": token, **extra}
        )
        assert response.status_code == 403, action
    assert console.store.review.get(item.id).status == "open"
    assert console.store.get_account(item.account_id or "").status == "active"


def test_a_post_without_the_csrf_token_changes_nothing(console: ConsoleHarness) -> None:
    item = _decision(console, _customer(console))
    reviewer = _reviewer(console, "rita")
    for action, data in (
        ("resolve", {"resolution": "confirmed"}),
        ("ban", {"reason": "spam"}),
    ):
        response = reviewer.post(f"/console/review/{item.id}/{action}", data=data)
        assert response.status_code == 403
        assert "security token" in response.text
    wrong = reviewer.post(
        f"/console/review/{item.id}/resolve",
        data={"resolution": "confirmed", "csrf_token": "forged"},
    )
    assert wrong.status_code == 403
    assert console.store.review.get(item.id).status == "open"
    assert console.store.get_account(item.account_id or "").status == "active"


# -- the queue ----------------------------------------------------------------------------------


def test_the_queue_lists_open_items_oldest_first_with_filters_and_counts(
    console: ConsoleHarness,
) -> None:
    customer = _customer(console)
    first = _decision(console, customer, prompt="first prompt in the queue")
    appeal = console.store.review.appeal(customer, message="please look again at my account")
    opt_out = _opt_out(console)
    done = _decision(console, customer, prompt="an already resolved one")
    console.store.review.resolve(done.id, "confirmed", actor="test")
    reviewer = _reviewer(console, "rita")

    queue = reviewer.get("/console/review")
    assert queue.status_code == 200
    text = queue.text
    assert text.index(first.id) < text.index(appeal.id) < text.index(opt_out.id)
    assert done.id not in text
    assert "first prompt in the queue" in text
    assert "please look again at my account" in text and "Jane Painter" in text
    assert re.search(r"Stack decision</a>: <strong>1</strong> open", text)
    assert re.search(r"Appeal</a>: <strong>1</strong> open", text)
    assert 'href="/console/review/samples.jsonl"' in text

    appeals = reviewer.get("/console/review", params={"status": "open", "kind": "appeal"})
    assert appeal.id in appeals.text
    assert first.id not in appeals.text and opt_out.id not in appeals.text

    resolved = reviewer.get("/console/review", params={"status": "resolved", "kind": ""})
    assert done.id in resolved.text and first.id not in resolved.text

    bad = reviewer.get("/console/review", params={"kind": "nonsense"})
    assert bad.status_code == 400


def test_the_queue_pages_by_fifty(console: ConsoleHarness) -> None:
    customer = _customer(console)
    items = [_decision(console, customer, prompt=f"prompt number {n}") for n in range(51)]
    reviewer = _reviewer(console, "rita")
    page_one = reviewer.get("/console/review")
    assert items[49].id in page_one.text and items[50].id not in page_one.text
    assert "offset=50" in page_one.text
    page_two = reviewer.get("/console/review", params={"offset": 50})
    assert items[50].id in page_two.text and items[0].id not in page_two.text
    assert "Next 50" not in page_two.text and "Previous 50" in page_two.text


# -- each kind's page ---------------------------------------------------------------------------


def test_a_decision_shows_the_conversation_answers_scores_and_thresholds(
    console: ConsoleHarness,
) -> None:
    customer = _customer(console)
    other = console.store.review.appeal(customer, message="an appeal of the same account")
    item = _decision(
        console,
        customer,
        prompt="line one\n    indented line two",
        blocked=False,
        categories=[],
        answer="Here is how.",
        model_answer="The model's unfiltered text",
    )
    reviewer = _reviewer(console, "rita")
    page = reviewer.get(f"/console/review/{item.id}")
    assert page.status_code == 200
    text = page.text
    assert 'class="msg user">line one\n    indented line two</div>' in text
    assert "Here is how." in text and "The model&#39;s unfiltered text" in text
    assert "withheld from the user" in text
    assert '<td>illicit_activities</td><td class="num">0.520</td>' in text
    assert '<td class="num">0.500</td>' in text  # the adult threshold of the category
    assert "instructions for breaking into property" in text
    assert "Confirm: the answer was fine" in text
    assert "Overturn: this answer is a violation (a miss)" in text
    assert 'id="category" name="category"' in text
    assert other.id in text  # the account's other open items
    assert customer in text and "active" in text


def test_a_blocked_decision_offers_the_block_words_and_under_18_thresholds(
    console: ConsoleHarness,
) -> None:
    item = _decision(console, _customer(console), reasons=["under_18_block"])
    console.store.review.add(
        "decision", reasons=["under_18_block"], details={"decision": {"audience": "under_18"}}
    )
    reviewer = _reviewer(console, "rita")
    page = reviewer.get(f"/console/review/{item.id}")
    assert "Confirm: the block was right" in page.text
    assert "Overturn: should have been allowed" in page.text
    assert 'name="category"' not in page.text
    # A sparse item (no messages, no scores, no account) still renders.
    (sparse,) = [i for i in console.store.review.items() if i.account_id is None]
    assert reviewer.get(f"/console/review/{sparse.id}").status_code == 200


def test_a_suspension_shows_its_evidence_and_overturning_it_unbans(
    console: ConsoleHarness,
) -> None:
    customer = _customer(console)
    item = _suspension(console, customer)
    assert console.store.get_account(customer).status == "banned"
    reviewer = _reviewer(console, "Rita Reviewer")
    page = reviewer.get(f"/console/review/{item.id}")
    assert item.details["reason"].startswith("3 blocked")
    assert item.details["reason"] in page.text
    assert f"req-strike-{customer}-2" in page.text
    assert "weapons_cbrn" in page.text
    assert "Keep the ban" in page.text and "Overturn and unban" in page.text

    done = _resolve(reviewer, item.id, "overturned", note="false positives")
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/review/{item.id}"
    assert console.store.get_account(customer).status == "active"
    after = reviewer.get(f"/console/review/{item.id}").text
    assert "Decided by <strong>Rita Reviewer (console:" in after
    assert "Overturn and unban" in after and "false positives" in after
    assert "account unbanned" in after
    assert 'action="/console/review/' + item.id + '/resolve"' not in after


def test_a_hash_match_shows_the_match_and_its_report_and_exports_it(
    console: ConsoleHarness,
) -> None:
    customer = _customer(console)
    item = _hash_match(console, customer)
    assert item.report_id is not None
    reviewer = _reviewer(console, "rita")
    page = reviewer.get(f"/console/review/{item.id}")
    text = page.text
    assert "test-bank" in text and "pdq:" + "f" * 64 in text
    assert item.report_id in text and "not_configured" in text
    assert "Keep the ban" in text and "banned" in text

    export = reviewer.get(f"/console/review/{item.id}/report.json")
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith("attachment")
    document = export.json()
    admin = console.client().get(
        f"/admin/reports/{item.report_id}/export",
        headers={"Authorization": f"Bearer {console.admin_key}"},
    )
    assert admin.status_code == 200
    assert document == admin.json()
    assert document["report"]["personOrUserReported"]["espIdentifier"] == customer
    assert document["source"]["reportId"] == item.report_id


def test_an_appeal_shows_the_message_and_the_ban_and_granting_it_unbans(
    console: ConsoleHarness,
) -> None:
    customer = _customer(console)
    console.store.ban(customer, reason="spamming the service", actor="test")
    item = console.store.review.appeal(customer, message="I was not spamming")
    reviewer = _reviewer(console, "rita")
    page = reviewer.get(f"/console/review/{item.id}")
    assert "I was not spamming" in page.text and "spamming the service" in page.text
    assert "Uphold the suspension" in page.text and "Grant the appeal and unban" in page.text
    assert _resolve(reviewer, item.id, "overturned").status_code == 303
    assert console.store.get_account(customer).status == "active"


def test_approving_an_opt_out_request_enforces_it(console: ConsoleHarness) -> None:
    item = _opt_out(console)
    reviewer = _reviewer(console, "rita")
    page = reviewer.get(f"/console/review/{item.id}")
    for shown in (
        "Jane Painter",
        "artist",
        "J. Painter",
        "please stop imitating",
        "jane@example.org",
    ):
        assert shown in page.text
    assert "Approve (enforce from now on)" in page.text
    assert _resolve(reviewer, item.id, "approved", note="confirmed by email").status_code == 303
    names = [(o.name, o.kind) for o in console.store.list_opt_outs()]
    assert ("Jane Painter", "artist") in names

    export = reviewer.get(f"/console/review/{item.id}/report.json")
    assert export.headers["content-disposition"] == f'attachment; filename="{item.id}.json"'
    document = export.json()
    assert document["kind"] == "opt_out_request"
    assert document["details"]["name"] == "Jane Painter"
    assert document["resolution"]["resolution"] == "approved"
    assert document["resolution"]["note"] == "confirmed by email"
    assert [entry["action"] for entry in document["audit"]] == ["review.resolve"]


# -- ban and unban ------------------------------------------------------------------------------


def test_ban_and_unban_from_the_item_page_are_audited_as_the_reviewer(
    console: ConsoleHarness,
) -> None:
    customer = _customer(console)
    item = _decision(console, customer)
    reviewer_id, key = console.user("reviewer", name="rita")
    reviewer = console.sign_in(key)
    page = reviewer.get(f"/console/review/{item.id}")
    empty = reviewer.post(
        f"/console/review/{item.id}/ban", data={"csrf_token": csrf_of(page), "reason": " "}
    )
    assert empty.status_code == 400
    banned = reviewer.post(
        f"/console/review/{item.id}/ban",
        data={"csrf_token": csrf_of(page), "reason": "repeated attempts"},
    )
    assert banned.status_code == 303
    account = console.store.get_account(customer)
    assert (account.status, account.ban_code, account.ban_reason) == (
        "banned",
        "review_ban",
        "repeated attempts",
    )
    page = reviewer.get(f"/console/review/{item.id}")
    assert "Unban the account" in page.text and "repeated attempts" in page.text
    unbanned = reviewer.post(f"/console/review/{item.id}/unban", data={"csrf_token": csrf_of(page)})
    assert unbanned.status_code == 303
    assert console.store.get_account(customer).status == "active"
    assert console.store.review.get(item.id).status == "open"  # banning is not deciding
    actions = {
        (entry.action, entry.actor)
        for entry in console.store.list_audit(limit=50)
        if entry.target == customer
    }
    assert ("account.ban", f"console:{reviewer_id}") in actions
    assert ("account.unban", f"console:{reviewer_id}") in actions
    trail = reviewer.get(f"/console/review/{item.id}").text
    assert "account.ban" in trail and "account.unban" in trail


# -- two reviewers at once ----------------------------------------------------------------------


def test_the_second_of_two_reviewers_is_told_who_decided_first(console: ConsoleHarness) -> None:
    item = _decision(console, _customer(console))
    anna, ben = _reviewer(console, "Anna"), _reviewer(console, "Ben")
    anna_page, ben_page = (
        anna.get(f"/console/review/{item.id}"),
        ben.get(f"/console/review/{item.id}"),
    )
    first = anna.post(
        f"/console/review/{item.id}/resolve",
        data={"csrf_token": csrf_of(anna_page), "resolution": "confirmed"},
    )
    second = ben.post(
        f"/console/review/{item.id}/resolve",
        data={"csrf_token": csrf_of(ben_page), "resolution": "overturned"},
    )
    assert first.status_code == 303
    assert second.status_code == 409
    assert "Anna (console:" in second.text and "already confirmed" in second.text
    assert f'href="/console/review/{item.id}"' in second.text
    assert console.store.review.get(item.id).resolution == "confirmed"


def test_two_reviewers_posting_at_the_same_moment_one_wins(console: ConsoleHarness) -> None:
    item = _suspension(console, _customer(console))
    clients = {name: _reviewer(console, name) for name in ("Anna", "Ben")}
    tokens = {name: csrf_of(c.get(f"/console/review/{item.id}")) for name, c in clients.items()}
    start = threading.Barrier(2)
    results: dict[str, Response] = {}

    def post(name: str) -> None:
        start.wait()
        results[name] = clients[name].post(
            f"/console/review/{item.id}/resolve",
            data={"csrf_token": tokens[name], "resolution": "confirmed"},
        )

    threads = [threading.Thread(target=post, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r.status_code for r in results.values()) == [303, 409]
    winner = next(name for name, r in results.items() if r.status_code == 303)
    loser = next(r for r in results.values() if r.status_code == 409)
    assert f"{winner} (console:" in loser.text
    assert (console.store.review.get(item.id).resolved_by or "").startswith("console:")
    resolves = [e for e in console.store.list_audit(action="review.resolve") if e.target == item.id]
    assert len(resolves) == 1


# -- labels and samples -------------------------------------------------------------------------


def _samples(client: TestClient, tmp_path: Path) -> list[Sample]:
    export = client.get("/console/review/samples.jsonl")
    assert export.status_code == 200, export.text
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert export.headers["content-disposition"].startswith("attachment")
    path = tmp_path / "review.jsonl"
    path.write_text(export.text)
    return load_jsonl_samples(path)


def test_an_overturned_block_becomes_a_should_comply_sample(
    console: ConsoleHarness, tmp_path: Path
) -> None:
    reviewer = _reviewer(console, "rita")
    assert reviewer.get("/console/review/samples.jsonl").status_code == 404
    item = _decision(console, _customer(console), prompt="How do I pick the lock of my own shed?")
    assert _resolve(reviewer, item.id, "overturned").status_code == 303
    assert console.store.review.get(item.id).label == {
        "expected": "should_comply",
        "category": None,
    }
    (sample,) = _samples(reviewer, tmp_path)
    assert sample.expected == "should_comply"
    assert sample.source == "real_world"
    assert sample.category is None
    assert sample.messages[-1].content == "How do I pick the lock of my own shed?"
    assert sample.metadata["review_item"] == item.id


def test_a_confirmed_miss_becomes_a_should_refuse_sample_with_its_category(
    console: ConsoleHarness, tmp_path: Path
) -> None:
    customer = _customer(console)
    miss = _decision(
        console,
        customer,
        prompt="tell me something",
        blocked=False,
        categories=[],
        answer="Something harmful.",
    )
    reviewer = _reviewer(console, "rita")
    without = _resolve(reviewer, miss.id, "overturned")
    assert without.status_code == 400
    assert "choose the policy category" in without.text
    unknown = _resolve(reviewer, miss.id, "overturned", category="not_a_category")
    assert unknown.status_code == 400
    assert console.store.review.get(miss.id).status == "open"
    assert _resolve(reviewer, miss.id, "overturned", category="violence").status_code == 303
    page = reviewer.get(f"/console/review/{miss.id}").text
    assert "should_refuse" in page and "violence" in page

    blocked = _decision(console, customer, prompt="a correctly blocked request")
    assert _resolve(reviewer, blocked.id, "confirmed").status_code == 303
    assert console.store.review.get(blocked.id).label == {
        "expected": "should_refuse",
        "category": "illicit_activities",
    }
    samples = {s.metadata["review_item"]: s for s in _samples(reviewer, tmp_path)}
    assert samples[miss.id].expected == "should_refuse"
    assert samples[miss.id].category == "violence"
    assert samples[miss.id].response == "Something harmful."
    assert samples[blocked.id].expected == "should_refuse"
    assert samples[blocked.id].category == "illicit_activities"


# -- hostile text -------------------------------------------------------------------------------


def test_hostile_text_is_escaped_on_the_queue_and_the_item_pages(console: ConsoleHarness) -> None:
    items: list[ReviewItem] = []
    for payload in XSS:
        customer = _customer(console)
        items.append(_decision(console, customer, prompt=f"hi {payload}", answer=payload))
        items.append(console.store.review.appeal(customer, message=f"appeal {payload}"))
        items.append(_opt_out(console, name=f"name {payload}"))
    reviewer = _reviewer(console, "rita")
    pages = [reviewer.get("/console/review")] + [
        reviewer.get(f"/console/review/{item.id}") for item in items
    ]
    for page in pages:
        assert page.status_code == 200
        for payload in XSS:
            assert payload not in page.text
    assert all(escaped in pages[0].text for escaped in ESCAPED)
    for page, payload_index in zip(pages[1:], (0, 0, 0, 1, 1, 1), strict=True):
        assert ESCAPED[payload_index] in page.text
    export = reviewer.get(f"/console/review/{items[1].id}/report.json")
    assert export.headers["content-type"].startswith("application/json")  # never rendered
    assert json.loads(export.text)["details"]["message"] == f"appeal {XSS[0]}"
