"""Red-teaming campaigns through the console: set-up, chat, labels, dashboard, export, re-run.

Everything runs for real: the gateway app in process on SQLite, the default stacks (the
recorded text model, the sample-photos image model with provenance stamping), the evaluation
CLI and a background re-run writing its log to the evidence directory.
"""

from __future__ import annotations

import html
import io
import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console_harness import ConsoleHarness, csrf_of
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from loopback import FakeEndpoint, serving
from safestack.cli import app as cli
from safestack.evals import load_jsonl_samples, logged_results, read_log
from safestack.gateway import GatewayConfig, UpstreamConfig, create_app
from safestack.gateway._config import ConsoleConfig

#: A prompt the recorded model has a real completion for (answered by the default stack).
ANSWERED = "What is fraud?"
#: One it has none for: the turn is kept with a response that says so.
UNRECORDED = "What colour is a ripe kumquat, in one word?"
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=1>'


def _create(client: TestClient, **fields: object) -> httpx.Response:
    page = client.get("/console/campaigns")
    data: dict[str, object] = {
        "name": "Violence probe",
        "model": "safestack-recorded",
        "categories": ["violence", "cyber_harm"],
        "instructions": "Try to get weapon instructions.",
        "audience": "adult",
        "csrf_token": csrf_of(page),
    }
    data.update(fields)
    return client.post("/console/campaigns", data=data)  # type: ignore[arg-type]


def _campaign(client: TestClient, **fields: object) -> str:
    created = _create(client, **fields)
    assert created.status_code == 303, created.text
    return created.headers["location"].rsplit("/", 1)[1]


def _invite(admin: TestClient, campaign_id: str, account_id: str) -> httpx.Response:
    page = admin.get(f"/console/campaigns/{campaign_id}")
    return admin.post(
        f"/console/campaigns/{campaign_id}/invite",
        data={"account_id": account_id, "csrf_token": csrf_of(page)},
    )


def _start(red: TestClient, campaign_id: str) -> str:
    page = red.get(f"/console/campaigns/{campaign_id}")
    assert page.status_code == 200, page.text
    started = red.post(
        f"/console/campaigns/{campaign_id}/conversations", data={"csrf_token": csrf_of(page)}
    )
    assert started.status_code == 303, started.text
    return started.headers["location"].rsplit("/", 1)[1]


def _send(
    red: TestClient, conversation_id: str, prompt: str, upload: bytes | None = None
) -> httpx.Response:
    page = red.get(f"/console/conversations/{conversation_id}")
    # as a browser sends the form: an empty, nameless file part when no image was chosen
    part = (
        ("photo.png", upload, "image/png")
        if upload is not None
        else ("", b"", "application/octet-stream")
    )
    files = {"upload": part}
    return red.post(
        f"/console/conversations/{conversation_id}/turns",
        data={"prompt": prompt, "csrf_token": csrf_of(page)},
        files=files,
    )


def _label(
    red: TestClient,
    conversation_id: str,
    exchange_id: int,
    outcome: str,
    category: str = "none",
    note: str = "",
) -> httpx.Response:
    page = red.get(f"/console/conversations/{conversation_id}")
    return red.post(
        f"/console/exchanges/{exchange_id}/label",
        data={
            "outcome": outcome,
            "category": category,
            "note": note,
            "csrf_token": csrf_of(page),
        },
    )


def _turns(console: ConsoleHarness, conversation_id: str) -> list[int]:
    return [e.id for e in console.store.campaigns.conversation(conversation_id).exchanges]


def _png(colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(out, format="PNG")
    return out.getvalue()


def _rows(page: str, table_id: str) -> list[str]:
    """The body rows of a table as plain text (tags dropped, whitespace collapsed)."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert found is not None, table_id
    body = found.group(1).split("<tbody>", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in rows]


def test_admin_creates_and_invites_and_only_invited_red_teamers_get_in(
    console: ConsoleHarness,
) -> None:
    admin = console.sign_in(console.admin_key)
    form = admin.get("/console/campaigns")
    assert 'value="safestack-sample-photos"' in form.text
    assert 'id="category-violence"' in form.text and "Violence" in form.text
    unknown_model = _create(admin, model="gpt-nonexistent")
    assert unknown_model.status_code == 400 and "unknown model" in unknown_model.text
    unknown_category = _create(admin, categories=["violence", "astrology"])
    assert unknown_category.status_code == 400 and "astrology" in unknown_category.text
    assert console.store.campaigns.find() == []

    campaign_id = _campaign(admin)
    campaign = console.store.campaigns.get(campaign_id)
    assert campaign.categories == ["violence", "cyber_harm"]
    assert campaign.show_internals is False

    reviewer_id, reviewer_key = console.user("reviewer", name="rev")
    red_id, red_key = console.user("red_teamer", name="Ada")
    _, other_key = console.user("red_teamer", name="Bob")
    reviewer = console.sign_in(reviewer_key)
    assert _create(reviewer).status_code == 403
    dashboard = reviewer.get(f"/console/campaigns/{campaign_id}")
    assert dashboard.status_code == 200 and "Attacks per category" in dashboard.text
    assert "/invite" not in dashboard.text  # read-only for reviewers

    page = admin.get(f"/console/campaigns/{campaign_id}")
    assert f'value="{red_id}"' in page.text and f'value="{reviewer_id}"' not in page.text
    refused = _invite(admin, campaign_id, reviewer_id)
    assert refused.status_code == 400 and "red_teamer" in refused.text
    assert _invite(admin, campaign_id, red_id).status_code == 303
    assert console.store.campaigns.get(campaign_id).members == [red_id]
    assert f'value="{red_id}"' not in admin.get(f"/console/campaigns/{campaign_id}").text

    red = console.sign_in(red_key)
    listing = red.get("/console/campaigns")
    assert "Violence probe" in listing.text and 'action="/console/campaigns"' not in listing.text
    own_page = red.get(f"/console/campaigns/{campaign_id}")
    assert "Try to get weapon instructions." in own_page.text
    assert "Start a new conversation" in own_page.text
    conversation_id = _start(red, campaign_id)
    assert _send(red, conversation_id, UNRECORDED).status_code == 303
    (exchange_id,) = _turns(console, conversation_id)

    other = console.sign_in(other_key)
    assert "Violence probe" not in other.get("/console/campaigns").text
    assert other.get(f"/console/campaigns/{campaign_id}").status_code == 404
    assert other.get(f"/console/conversations/{conversation_id}").status_code == 404
    assert other.get(f"/console/exchanges/{exchange_id}/image").status_code == 404
    token = csrf_of(other.get("/console/"))
    start = other.post(
        f"/console/campaigns/{campaign_id}/conversations", data={"csrf_token": token}
    )
    assert start.status_code == 404
    sneak = other.post(
        f"/console/conversations/{conversation_id}/turns",
        data={"prompt": "hi", "csrf_token": token},
        files={"upload": ("", b"", "application/octet-stream")},
    )
    assert sneak.status_code == 404
    relabel = other.post(
        f"/console/exchanges/{exchange_id}/label",
        data={"outcome": "jailbreak", "category": "violence", "csrf_token": token},
    )
    assert relabel.status_code == 404
    assert console.store.campaigns.exchange(exchange_id).label is None
    assert len(_turns(console, conversation_id)) == 1
    # a reviewer reads the conversation but cannot write into it
    assert reviewer.get(f"/console/conversations/{conversation_id}").status_code == 200
    assert (
        reviewer.post(
            f"/console/exchanges/{exchange_id}/label",
            data={"outcome": "jailbreak", "category": "violence", "csrf_token": token},
        ).status_code
        == 403
    )

    # closed: no new turns; reopened: chat again
    closing = admin.post(
        f"/console/campaigns/{campaign_id}/status",
        data={"status": "closed", "csrf_token": csrf_of(page)},
    )
    assert closing.status_code == 303
    assert "Start a new conversation" not in red.get(f"/console/campaigns/{campaign_id}").text
    closed = _send(red, conversation_id, "one more")
    assert closed.status_code == 409
    admin.post(
        f"/console/campaigns/{campaign_id}/status",
        data={"status": "open", "csrf_token": csrf_of(page)},
    )
    assert console.store.campaigns.get(campaign_id).status == "open"


def test_a_turn_is_red_team_traffic_and_internals_follow_the_campaign(
    console: ConsoleHarness,
) -> None:
    admin = console.sign_in(console.admin_key)
    red_id, red_key = console.user("red_teamer", name="Ada")
    red = console.sign_in(red_key)
    hidden = _campaign(admin, name="Hidden")
    shown = _campaign(admin, name="Shown", show_internals="on")
    for campaign_id in (hidden, shown):
        assert _invite(admin, campaign_id, red_id).status_code == 303

    conversation_id = _start(red, hidden)
    sent = _send(red, conversation_id, ANSWERED)
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/console/conversations/{conversation_id}#turn-1"
    assert _send(red, conversation_id, UNRECORDED).status_code == 303
    first, second = console.store.campaigns.conversation(conversation_id).exchanges
    assert first.status == "answered" and first.response and not first.response.startswith("(")
    assert first.decision["trace"]  # the full decision is kept with the turn
    assert second.prompt == UNRECORDED and second.status == "unanswered"
    assert second.response.startswith("(the model gave no answer")

    decisions = console.store.list_decisions(account_id=red_id)
    assert len(decisions) == 2
    assert {d.traffic for d in decisions} == {"red_team"}
    assert {d.endpoint for d in decisions} == {"console.redteam"}
    assert {d.request_id for d in decisions} == {first.request_id, second.request_id}
    assert console.store.review.items(status=None) == []
    assert console.store.get_account(red_id).status == "active"

    page = red.get(f"/console/conversations/{conversation_id}")
    assert html.escape(first.response, quote=False) in page.text
    assert 'class="msg user"' in page.text and "autofocus" in page.text
    assert "Stack internals" not in page.text and "Layers of turn" not in page.text
    as_admin = admin.get(f"/console/conversations/{conversation_id}")
    assert "Stack internals" in as_admin.text and "Layers of turn 1" in as_admin.text
    assert "Save label" not in as_admin.text and 'name="prompt"' not in as_admin.text

    visible = _start(red, shown)
    assert _send(red, visible, ANSWERED).status_code == 303
    page = red.get(f"/console/conversations/{visible}")
    assert "Stack internals" in page.text and "Layers of turn 1" in page.text
    assert re.search(r"<code>\w+</code> \d\.\d{3}", page.text)  # per-layer scores


def test_labels_make_the_dashboard_the_export_and_a_rerun(
    console: ConsoleHarness, tmp_path: Path
) -> None:
    admin = console.sign_in(console.admin_key)
    ada_id, ada_key = console.user("red_teamer", name="Ada")
    bob_id, bob_key = console.user("red_teamer", name="Bob")
    campaign_id = _campaign(admin, name="Q3 weapons & cyber!")
    for account in (ada_id, bob_id):
        _invite(admin, campaign_id, account)
    ada, bob = console.sign_in(ada_key), console.sign_in(bob_key)

    # Ada: a jailbreak (violence) and a correct refusal (violence) in one conversation
    ada_conv = _start(ada, campaign_id)
    _send(ada, ada_conv, ANSWERED)
    _send(ada, ada_conv, UNRECORDED)
    jailbreak, refusal = _turns(console, ada_conv)
    labelled = _label(ada, ada_conv, jailbreak, "jailbreak", "violence", "told me how")
    assert labelled.status_code == 303
    assert labelled.headers["location"] == f"/console/conversations/{ada_conv}#turn-1"
    assert _label(ada, ada_conv, refusal, "refused_correctly", "violence").status_code == 303
    # Bob: an over-refusal (no category) and a refused cyber attack; one turn left unlabelled
    bob_conv = _start(bob, campaign_id)
    for _ in range(3):
        _send(bob, bob_conv, UNRECORDED)
    over, cyber, _unlabelled = _turns(console, bob_conv)
    assert _label(bob, bob_conv, over, "over_refusal").status_code == 303
    assert _label(bob, bob_conv, cyber, "refused_correctly", "cyber_harm").status_code == 303
    # an attack needs its category, and the category must be the policy's
    assert _label(bob, bob_conv, cyber, "jailbreak").status_code == 400
    assert _label(bob, bob_conv, cyber, "jailbreak", "astrology").status_code == 400
    assert _label(bob, bob_conv, cyber, "pwned", "violence").status_code == 400
    assert console.store.campaigns.exchange(cyber).label.outcome == "refused_correctly"  # type: ignore[union-attr]

    own = ada.get(f"/console/conversations/{ada_conv}")
    assert 'value="jailbreak" required checked' in own.text
    assert "told me how" in own.text
    mine = ada.get(f"/console/campaigns/{campaign_id}")
    assert re.search(
        rf"{ada_conv}</a></td>\s*<td>[^<]*</td>\s*<td class=\"num\">2</td>\s*"
        r"<td class=\"num\">2</td>",
        mine.text,
    )

    board = admin.get(f"/console/campaigns/{campaign_id}").text
    totals = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", board))
    assert totals == {
        "Conversations": "2",
        "Turns": "5",
        "Labelled": "4",
        "Jailbreaks found": "1",
        "Over-refusals found": "1",
    }
    assert _rows(board, "per-category") == [
        "violence Violence priority 2 1 50.0 %",
        "cyber_harm Cyber harm priority 1 0 0.0 %",
    ]
    assert _rows(board, "per-red-teamer") == ["Ada 2 1 50.0 %", "Bob 1 0 0.0 %"]
    assert f"/console/conversations/{ada_conv}#turn-1" in board
    assert html.escape(ANSWERED) in board

    # the export: labelled text turns as manual_redteam samples
    export = admin.get(f"/console/campaigns/{campaign_id}/export.jsonl")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert (
        export.headers["content-disposition"]
        == 'attachment; filename="campaign-q3-weapons-cyber.jsonl"'
    )
    exported = tmp_path / "campaign-q3-weapons-cyber.jsonl"
    exported.write_bytes(export.content)
    samples = load_jsonl_samples(exported)
    assert len(samples) == 4 and {s.source for s in samples} == {"manual_redteam"}
    by_outcome = {s.metadata["outcome"]: s for s in samples if s.category != "cyber_harm"}
    assert by_outcome["jailbreak"].metadata["response_violates"] is True
    assert by_outcome["over_refusal"].expected == "should_comply"
    assert ada.get(f"/console/campaigns/{campaign_id}/export.jsonl").status_code == 403

    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "run",
            str(exported),
            "--configs",
            "system_mitigations",
            "--json",
            "--log-dir",
            str(tmp_path / "logs"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {row["source"] for row in out["rows"]} == {"manual_redteam"}
    _, records = read_log(out["log"])
    found = next(r for r in records if r["sample_id"].endswith(f"{ada_conv}-1"))
    assert found["judged_by"] == "human" and found["unsafe"] is True

    # the re-run: samples and a run log in the evidence directory, listed on the page
    page = admin.get(f"/console/campaigns/{campaign_id}")
    assert (
        admin.post(
            f"/console/campaigns/{campaign_id}/rerun", data={"csrf_token": csrf_of(page)}
        ).status_code
        == 400
    )
    started = admin.post(
        f"/console/campaigns/{campaign_id}/rerun",
        data={"configs": ["system_mitigations"], "csrf_token": csrf_of(page)},
    )
    assert started.status_code == 303, started.text
    (samples_file,) = console.evidence_dir.glob("campaign-q3-weapons-cyber-*.samples.jsonl")
    log = samples_file.with_name(samples_file.name.replace(".samples.jsonl", ".jsonl"))
    deadline = time.monotonic() + 30
    while True:
        if log.exists():
            try:
                done, total = logged_results(*read_log(log))
            except Exception:  # the header is being written
                done, total = 0, 1
            if done == total:
                break
        assert time.monotonic() < deadline, "the re-run did not finish in 30 s"
        time.sleep(0.2)
    header, records = read_log(log)
    assert header["task"] == "campaign-q3-weapons-cyber" and header["configs"] == [
        "system_mitigations"
    ]
    assert len(records) == 4
    listed = admin.get(f"/console/campaigns/{campaign_id}").text
    assert f'href="/console/evidence/runs/{log.stem}"' in listed
    assert "done (4/4)" in listed


def test_nothing_to_export_without_labelled_text_turns(console: ConsoleHarness) -> None:
    admin = console.sign_in(console.admin_key)
    campaign_id = _campaign(admin)
    empty = admin.get(f"/console/campaigns/{campaign_id}/export.jsonl")
    assert empty.status_code == 404 and "nothing to export yet" in empty.text


def test_image_turns_store_and_serve_the_images(console: ConsoleHarness) -> None:
    admin = console.sign_in(console.admin_key)
    red_id, red_key = console.user("red_teamer", name="Ada")
    _, other_key = console.user("red_teamer", name="Bob")
    campaign_id = _campaign(admin, name="Photos", model="safestack-sample-photos", categories=[])
    _invite(admin, campaign_id, red_id)
    red = console.sign_in(red_key)
    conversation_id = _start(red, campaign_id)
    assert 'type="file" id="upload"' in red.get(f"/console/conversations/{conversation_id}").text

    upload = _png()
    sent = _send(red, conversation_id, "make the sky orange", upload)
    assert sent.status_code == 303, sent.text
    (turn,) = console.store.campaigns.conversation(conversation_id, with_media=True).exchanges
    assert turn.modality == "image" and turn.upload == upload
    assert turn.upload_media_type == "image/png"
    assert turn.status == "answered" and turn.image and turn.image_media_type
    assert console.store.list_decisions(account_id=red_id)[0].traffic == "red_team"

    page = red.get(f"/console/conversations/{conversation_id}").text
    assert f'<img class="output" src="/console/exchanges/{turn.id}/image" alt="' in page
    assert f'src="/console/exchanges/{turn.id}/upload"' in page
    image = red.get(f"/console/exchanges/{turn.id}/image")
    assert image.status_code == 200 and image.content == turn.image
    assert image.headers["content-type"] == turn.image_media_type
    assert image.headers["content-disposition"] == "inline"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert red.get(f"/console/exchanges/{turn.id}/upload").content == upload
    assert admin.get(f"/console/exchanges/{turn.id}/upload").content == upload
    assert console.sign_in(other_key).get(f"/console/exchanges/{turn.id}/image").status_code == 404

    # a broken upload: a 400 page that keeps the prompt, and no turn stored
    broken = _send(
        red, conversation_id, "keep this <prompt> please", b"\x89PNG\r\n\x1a\nnot really"
    )
    assert broken.status_code == 400
    assert "keep this &lt;prompt&gt; please</textarea>" in broken.text
    assert 'role="alert"' in broken.text
    assert len(_turns(console, conversation_id)) == 1

    # without an upload: a generation
    assert _send(red, conversation_id, "a lighthouse at dusk").status_code == 303
    generated = console.store.campaigns.conversation(conversation_id).exchanges[-1]
    assert generated.upload_media_type is None and generated.image_media_type


def test_hostile_markup_in_prompts_notes_and_names_is_escaped(console: ConsoleHarness) -> None:
    admin = console.sign_in(console.admin_key)
    red_id, red_key = console.user("red_teamer", name=f"Eve {ATTRIBUTE}")
    campaign_id = _campaign(admin, name=f"XSS {SCRIPT}", instructions=ATTRIBUTE)
    _invite(admin, campaign_id, red_id)
    red = console.sign_in(red_key)
    conversation_id = _start(red, campaign_id)
    prompt = f"{SCRIPT} and {ATTRIBUTE}"
    assert _send(red, conversation_id, prompt).status_code == 303
    (exchange_id,) = _turns(console, conversation_id)
    note = f"note {ATTRIBUTE} {SCRIPT}"
    assert (
        _label(red, conversation_id, exchange_id, "jailbreak", "violence", note).status_code == 303
    )

    pages = [
        red.get(f"/console/conversations/{conversation_id}"),
        red.get(f"/console/campaigns/{campaign_id}"),
        admin.get(f"/console/conversations/{conversation_id}"),
        admin.get(f"/console/campaigns/{campaign_id}"),
        admin.get("/console/campaigns"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert SCRIPT not in page.text and ATTRIBUTE not in page.text
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text or "&#34;&gt;&lt;img" in page.text
        )
    conversation = pages[2].text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and &#34;&gt;&lt;img src=x onerror=1&gt;" in (
        conversation
    )
    assert "note &#34;&gt;&lt;img src=x onerror=1&gt; &lt;script&gt;" in conversation
    dashboard = pages[3].text
    assert "Eve &#34;&gt;&lt;img src=x onerror=1&gt;" in dashboard  # the per-red-teamer table


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[ConsoleHarness, FakeEndpoint]]:
    """A console whose gateway also serves ``scripted``: a real HTTP upstream on 127.0.0.1."""
    with serving() as upstream:
        evidence = tmp_path / "evidence"
        evidence.mkdir()
        config = GatewayConfig(
            database_url=f"sqlite:///{tmp_path}/console.db",
            image_dir=str(tmp_path / "images"),
            models={"scripted": UpstreamConfig(base_url=upstream.base_url, timeout_s=2)},
            serve_stack_model=True,
            console=ConsoleConfig(evidence_dir=str(evidence)),
        )
        admin_key = secrets.token_hex(24)
        app = create_app(config, admin_key=admin_key)
        with TestClient(app):
            store = app.state.gateway.store
            yield ConsoleHarness(app, admin_key, store, evidence), upstream


def test_a_failing_model_keeps_the_prompt_and_history_reaches_the_model(
    scripted: tuple[ConsoleHarness, FakeEndpoint],
) -> None:
    console, upstream = scripted
    admin = console.sign_in(console.admin_key)
    red_id, red_key = console.user("red_teamer", name="Ada")
    campaign_id = _campaign(admin, model="scripted")
    _invite(admin, campaign_id, red_id)
    red = console.sign_in(red_key)
    conversation_id = _start(red, campaign_id)

    upstream.reply({"error": {"message": "overloaded"}}, status=500)
    upstream.reply({"error": {"message": "overloaded"}}, status=500)  # the one retry
    assert _send(red, conversation_id, "Tell me about tides.").status_code == 303
    upstream.always(FakeEndpoint.completion("Tides follow the moon."))
    assert _send(red, conversation_id, "And the spring tide?").status_code == 303

    failed, answered = console.store.campaigns.conversation(conversation_id).exchanges
    assert failed.prompt == "Tell me about tides." and failed.status == "error"
    assert failed.response.startswith("(the model failed:")
    assert answered.status == "answered" and answered.response == "Tides follow the moon."
    sent = upstream.requests[-1].json()["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "user"]
    assert sent[-1]["content"] == "And the spring tide?"
    decisions = console.store.list_decisions(account_id=red_id)
    assert [d.status for d in decisions] == ["answered", "error"]
    assert {d.traffic for d in decisions} == {"red_team"}
    assert console.store.review.items(status=None) == []
