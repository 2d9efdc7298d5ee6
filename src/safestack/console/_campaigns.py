"""Red-teaming campaigns: set-up, the red teamers' chat, their labels, dashboards and re-runs.

An operator creates a campaign (a served model under test, priority categories, instructions)
and invites red teamers. A red teamer chats with the deployed stack here, and every turn goes
through exactly what a user's request goes through (the served model's safety stack, image
provenance stamping), but is logged as ``red_team`` traffic: it never earns strikes, never
enters the review queue and never counts as real-world data. Their labels turn the turns into
``manual_redteam`` evaluation samples (:func:`~safestack.evals.labelled.campaign_samples`),
which are exported as JSONL or re-run here against other stack configurations, so the
conversations that found a hole are the ones that prove it closed.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_args

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from safestack.console._auth import (
    ConsoleError,
    ConsoleUser,
    Submission,
    gateway_of,
    require,
    submit,
)
from safestack.console._pages import SECURITY_HEADERS, excerpt, render, see_other
from safestack.errors import DataError, ImageError, ImageTooLargeError, InputError
from safestack.evals import (
    EvalRun,
    logged_results,
    read_log,
    write_samples_jsonl,
)
from safestack.evals.labelled import campaign_samples, campaign_slug
from safestack.gateway._state import Gateway
from safestack.http_endpoint import describe_validation_error
from safestack.media import DecodedImage, ImageLimits, decode_image
from safestack.provenance import MEDIA_TYPES, sniff_media_type
from safestack.stack import PRESETS, Decision, ImageResult
from safestack.store import (
    Campaign,
    Conversation,
    Exchange,
    ExchangeLabel,
    ExchangeOutcome,
    NewCampaign,
    NewExchange,
)

__all__ = ["SAMPLES_SUFFIX", "CampaignDashboard", "campaign_dashboard", "router"]

log = logging.getLogger("safestack.console")
router = APIRouter()

OUTCOMES: tuple[ExchangeOutcome, ...] = get_args(ExchangeOutcome)
_ATTACKS = frozenset({"jailbreak", "refused_correctly"})
_EXCERPT_CHARS = 280
_ENDPOINT = "console.redteam"

#: Re-runs that failed, by run id: ``(campaign id, message)``. Kept in this process's memory
#: only: another replica, or this one after a restart, shows such a run as unfinished.
#: The samples a re-run evaluates are kept beside its log, under this suffix (not a log).
SAMPLES_SUFFIX = ".samples.jsonl"
_RUN_FAILURES: dict[str, tuple[str, str]] = {}
_RUN_FAILURES_LOCK = threading.Lock()

AdminOrReviewer = Annotated[ConsoleUser, Depends(require("admin", "reviewer"))]
AnyRole = Annotated[ConsoleUser, Depends(require())]


def _member_only(campaign: Campaign, user: ConsoleUser) -> None:
    """A red teamer who was not invited learns nothing, not even that the campaign exists."""
    if user.role == "red_teamer" and user.account_id not in campaign.members:
        raise ConsoleError(404, f"no campaign with id {campaign.id!r}")


def _own(user: ConsoleUser) -> str | None:
    """The account a store read is restricted to: a red teamer's own; None reads everything."""
    return user.account_id if user.role == "red_teamer" else None


def _served_models(gateway: Gateway) -> list[str]:
    return [*gateway.stacks, *gateway.image_stacks]


# -- the dashboard ------------------------------------------------------------------------------


@dataclass
class Tally:
    """Attack attempts (labelled jailbreak or refused_correctly) and successes (jailbreak)."""

    key: str
    name: str
    attempts: int = 0
    successes: int = 0

    @property
    def rate(self) -> float | None:
        return self.successes / self.attempts if self.attempts else None


@dataclass(frozen=True)
class Example:
    """A jailbreak found: where, by whom, and what was said."""

    conversation_id: str
    turn: int
    category: str | None
    red_teamer: str
    prompt: str
    response: str
    note: str | None


@dataclass
class CampaignDashboard:
    """What a campaign has found so far, per category and per red teamer."""

    conversations: int = 0
    turns: int = 0
    labelled: int = 0
    jailbreaks: int = 0
    over_refusals: int = 0
    categories: list[Tally] = field(default_factory=list)
    red_teamers: list[Tally] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)


def campaign_dashboard(
    campaign: Campaign,
    conversations: Sequence[Conversation],
    names: dict[str, str],
    category_titles: dict[str, str],
) -> CampaignDashboard:
    """Totals, per-category and per-red-teamer attack tallies, and the jailbreaks found.

    Only labelled attack turns count as attempts: an unlabelled turn may be small talk, and an
    allowed request (over_refusal / answered_correctly) tests over-refusal, not an attack. The
    campaign's priority categories are listed first (even with no attempts yet), so a category
    nobody has probed shows as a gap.
    """
    board = CampaignDashboard(conversations=len(conversations))
    by_category: dict[str, Tally] = {
        c: Tally(c, category_titles.get(c, c)) for c in campaign.categories
    }
    by_person: dict[str, Tally] = {m: Tally(m, names.get(m, m)) for m in campaign.members}
    for conversation in conversations:
        person = by_person.setdefault(
            conversation.account_id,
            Tally(
                conversation.account_id, names.get(conversation.account_id, conversation.account_id)
            ),
        )
        for turn in conversation.exchanges:
            board.turns += 1
            label = turn.label
            if label is None:
                continue
            board.labelled += 1
            board.jailbreaks += label.outcome == "jailbreak"
            board.over_refusals += label.outcome == "over_refusal"
            if label.outcome not in _ATTACKS:
                continue
            key = label.category or "none"
            tally = by_category.setdefault(key, Tally(key, category_titles.get(key, key)))
            success = label.outcome == "jailbreak"
            for counted in (tally, person):
                counted.attempts += 1
                counted.successes += success
            if success:
                board.examples.append(
                    Example(
                        conversation_id=conversation.id,
                        turn=turn.turn,
                        category=label.category,
                        red_teamer=person.name,
                        prompt=excerpt(turn.prompt, _EXCERPT_CHARS),
                        response=excerpt(turn.response, _EXCERPT_CHARS),
                        note=label.note,
                    )
                )
    board.categories = list(by_category.values())
    board.red_teamers = sorted(by_person.values(), key=lambda t: (-t.successes, t.name))
    return board


# -- re-runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRun:
    """A re-run of a campaign's samples found in the evidence directory."""

    run_id: str
    created: str
    configs: list[str]
    done: int
    total: int
    failure: str | None

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done >= self.total


def _evidence_dir(gateway: Gateway) -> Path:
    return Path(gateway.config.console.evidence_dir)


def _campaign_runs(evidence: Path, campaign: Campaign) -> list[CampaignRun]:
    """This campaign's run logs, newest first, with their progress (runs in a worker thread).

    A log is this campaign's when its task is ``campaign-<slug>`` (a campaign whose name starts
    like this one's, e.g. ``foo`` and ``foo-bar``, has another task). Two campaigns with the
    same name share a slug and therefore their runs.
    """
    task = f"campaign-{campaign_slug(campaign.name)}"
    runs: list[CampaignRun] = []
    seen: set[str] = set()
    with _RUN_FAILURES_LOCK:
        failures = {k: m for k, (c, m) in _RUN_FAILURES.items() if c == campaign.id}
    for path in sorted(evidence.glob(f"{task}-*.jsonl"), reverse=True):
        if path.name.endswith(SAMPLES_SUFFIX):
            continue
        try:
            header, records = read_log(path)
        except DataError:
            continue  # not a run log (or one being created right now)
        if header.get("task") != task:
            continue
        done, total = logged_results(header, records)
        seen.add(path.stem)
        runs.append(
            CampaignRun(
                run_id=path.stem,
                created=str(header.get("created", "")),
                configs=list(header.get("configs", [])),
                done=done,
                total=total,
                failure=failures.get(path.stem),
            )
        )
    for run_id, message in sorted(failures.items(), reverse=True):
        if run_id not in seen:  # failed before its log had a header
            runs.append(CampaignRun(run_id, "", [], 0, 0, message))
    return runs


def _rerun_in_background(evaluation: EvalRun, campaign_id: str) -> None:
    run_id = evaluation.log_path.stem

    def work() -> None:
        try:
            evaluation.run()
        except Exception as exc:
            log.exception("campaign %s: re-run %s failed", campaign_id, run_id)
            with _RUN_FAILURES_LOCK:
                _RUN_FAILURES[run_id] = (campaign_id, str(exc) or type(exc).__name__)

    threading.Thread(target=work, name=f"rerun-{run_id}", daemon=True).start()


# -- campaigns ----------------------------------------------------------------------------------


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns(request: Request, user: AnyRole) -> HTMLResponse:
    gateway = gateway_of(request)
    found = await run_in_threadpool(gateway.store.campaigns.find, member=_own(user))
    return render(
        request,
        "campaigns.html.j2",
        user=user,
        title="Red-teaming campaigns",
        campaigns=found,
        models=_served_models(gateway),
        image_models=list(gateway.image_stacks),
        categories=gateway.policy.categories,
    )


@router.post("/campaigns")
async def create_campaign(
    request: Request, posted: Annotated[Submission, Depends(submit("admin"))]
) -> Response:
    gateway = gateway_of(request)
    model = posted.text("model")
    if model not in _served_models(gateway):
        raise ConsoleError(
            400,
            f"unknown model {model!r}; this gateway serves: {', '.join(_served_models(gateway))}",
        )
    chosen = [c for c in posted.form.getlist("categories") if isinstance(c, str)]
    unknown = [c for c in chosen if c not in gateway.policy.category_ids]
    if unknown:
        raise ConsoleError(400, f"unknown policy categories: {', '.join(unknown)}")
    try:
        new = NewCampaign(
            name=posted.text("name"),
            model=model,
            categories=chosen,
            instructions=posted.text("instructions"),
            audience=posted.text("audience", default="adult"),
            show_internals=posted.form.get("show_internals") is not None,
        )
    except ValidationError as exc:
        raise ConsoleError(400, describe_validation_error(exc)) from None
    campaign = await run_in_threadpool(
        lambda: gateway.store.campaigns.create(new, actor=posted.user.actor)
    )
    return see_other(f"/console/campaigns/{campaign.id}")


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(request: Request, campaign_id: str, user: AnyRole) -> HTMLResponse:
    gateway = gateway_of(request)
    store = gateway.store
    campaign = await run_in_threadpool(store.campaigns.get, campaign_id)
    _member_only(campaign, user)
    titles = {c.id: c.title for c in gateway.policy.categories}
    if user.role == "red_teamer":
        mine = await run_in_threadpool(
            lambda: store.campaigns.conversations(campaign_id, account_id=user.account_id)
        )
        return render(
            request,
            "campaign_red_teamer.html.j2",
            user=user,
            title=campaign.name,
            campaign=campaign,
            titles=titles,
            conversations=mine,
        )

    def read() -> tuple[list[Conversation], dict[str, str], list[Any], list[CampaignRun]]:
        conversations = store.campaigns.conversations(campaign_id)
        people = {*campaign.members, *(c.account_id for c in conversations)}
        names = store.account_names(people)
        invitable: list[Any] = []
        if user.is_admin:
            invitable = [
                a
                for a in store.list_accounts(limit=1000, with_role=True)
                if a.role == "red_teamer" and a.id not in campaign.members
            ]
        runs = _campaign_runs(_evidence_dir(gateway), campaign)
        return conversations, names, invitable, runs

    conversations, names, invitable, runs = await run_in_threadpool(read)
    return render(
        request,
        "campaign_dashboard.html.j2",
        user=user,
        title=campaign.name,
        campaign=campaign,
        titles=titles,
        names=names,
        board=campaign_dashboard(campaign, conversations, names, titles),
        invitable=invitable,
        runs=runs,
        presets=list(PRESETS),
    )


@router.post("/campaigns/{campaign_id}/invite")
async def invite(
    request: Request, campaign_id: str, posted: Annotated[Submission, Depends(submit("admin"))]
) -> Response:
    account_id = posted.text("account_id").strip()
    if not account_id:
        raise ConsoleError(400, "choose a red teamer to invite")
    store = gateway_of(request).store
    await run_in_threadpool(
        lambda: store.campaigns.invite(campaign_id, account_id, actor=posted.user.actor)
    )
    return see_other(f"/console/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/status")
async def set_status(
    request: Request, campaign_id: str, posted: Annotated[Submission, Depends(submit("admin"))]
) -> Response:
    status = posted.text("status")
    store = gateway_of(request).store
    await run_in_threadpool(
        lambda: store.campaigns.set_status(campaign_id, status, actor=posted.user.actor)
    )
    return see_other(f"/console/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/conversations")
async def start_conversation(
    request: Request,
    campaign_id: str,
    posted: Annotated[Submission, Depends(submit("red_teamer"))],
) -> Response:
    store = gateway_of(request).store
    conversation = await run_in_threadpool(
        store.campaigns.start_conversation, campaign_id, posted.user.account_id or ""
    )
    return see_other(f"/console/conversations/{conversation.id}")


async def _labelled_samples(gateway: Gateway, campaign_id: str) -> tuple[Campaign, list[Any]]:
    def read() -> tuple[Campaign, list[Any]]:
        campaign = gateway.store.campaigns.get(campaign_id)
        return campaign, campaign_samples(
            campaign, gateway.store.campaigns.conversations(campaign_id)
        )

    return await run_in_threadpool(read)


@router.get("/campaigns/{campaign_id}/export.jsonl")
async def export(request: Request, campaign_id: str, user: AdminOrReviewer) -> Response:
    """The labelled text turns as JSONL samples, ready for ``safestack eval run``."""
    campaign, samples = await _labelled_samples(gateway_of(request), campaign_id)
    if not samples:
        raise ConsoleError(
            404,
            f"nothing to export yet: campaign {campaign.name!r} has no labelled text turns",
        )
    out = io.StringIO()
    write_samples_jsonl(samples, out)
    filename = f"campaign-{campaign_slug(campaign.name)}.jsonl"
    return Response(
        out.getvalue(),
        media_type="application/x-ndjson",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/campaigns/{campaign_id}/rerun")
async def rerun(
    request: Request, campaign_id: str, posted: Annotated[Submission, Depends(submit("admin"))]
) -> Response:
    """Write the campaign's samples to the evidence directory and evaluate them there.

    The samples are evaluated from the file just written, as ``safestack eval run <file>``
    would, so a re-run proves the export as well as the stack.
    """
    configs = [c for c in posted.form.getlist("configs") if isinstance(c, str)]
    if not configs:
        raise ConsoleError(400, "choose at least one stack configuration to re-run against")
    unknown = [c for c in configs if c not in PRESETS]
    if unknown:
        raise ConsoleError(
            400, f"unknown configurations {', '.join(unknown)}; known: {', '.join(PRESETS)}"
        )
    gateway = gateway_of(request)
    campaign, samples = await _labelled_samples(gateway, campaign_id)
    if not samples:
        raise ConsoleError(
            400, f"campaign {campaign.name!r} has no labelled text turns to re-run yet"
        )
    task = f"campaign-{campaign_slug(campaign.name)}"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    evidence = _evidence_dir(gateway)

    def prepare() -> EvalRun:
        # The samples are kept beside the log: what exactly was re-run, loadable by `eval run`.
        evidence.mkdir(parents=True, exist_ok=True)
        write_samples_jsonl(samples, evidence / f"{task}-{stamp}{SAMPLES_SUFFIX}")
        return EvalRun(
            task,
            samples,
            configs,
            evidence / f"{task}-{stamp}.jsonl",
            audience=campaign.audience,
        )

    evaluation = await run_in_threadpool(prepare)
    _rerun_in_background(evaluation, campaign.id)
    log.info(
        "campaign %s: re-run %s started by %s", campaign.id, evaluation.log_path, posted.user.actor
    )
    return see_other(f"/console/campaigns/{campaign_id}#runs")


# -- conversations ------------------------------------------------------------------------------


async def _conversation_page(
    request: Request,
    user: ConsoleUser,
    conversation_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    prompt: str = "",
) -> HTMLResponse:
    gateway = gateway_of(request)
    store = gateway.store

    def read() -> tuple[Conversation, Campaign]:
        conversation = store.campaigns.conversation(conversation_id, account_id=_own(user))
        return conversation, store.campaigns.get(conversation.campaign_id)

    conversation, campaign = await run_in_threadpool(read)
    owner = user.role == "red_teamer" and conversation.account_id == user.account_id
    titles = {c.id: c.title for c in gateway.policy.categories}
    priority = [c for c in campaign.categories if c in titles]
    label_categories = [*priority, *(c for c in titles if c not in priority)]
    names: dict[str, str] = {}
    if not owner:
        names = await run_in_threadpool(store.account_names, [conversation.account_id])
    return render(
        request,
        "conversation.html.j2",
        user=user,
        status=status,
        title=f"Conversation in {campaign.name}",
        campaign=campaign,
        conversation=conversation,
        owner=owner,
        red_teamer=names.get(conversation.account_id, conversation.account_id),
        show_internals=campaign.show_internals or user.may("admin", "reviewer"),
        image_model=campaign.model in gateway.image_stacks,
        titles=titles,
        label_categories=label_categories,
        outcomes=OUTCOMES,
        error=error,
        prompt=prompt,
    )


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(request: Request, conversation_id: str, user: AnyRole) -> HTMLResponse:
    return await _conversation_page(request, user, conversation_id)


@router.post("/exchanges/{exchange_id}/label")
async def label(
    request: Request,
    exchange_id: int,
    posted: Annotated[Submission, Depends(submit("red_teamer"))],
) -> Response:
    gateway = gateway_of(request)
    category = posted.text("category").strip()
    note = posted.text("note").strip()
    try:
        verdict = ExchangeLabel(
            outcome=posted.text("outcome"),
            category=None if category in ("", "none") else category,
            note=note or None,
        )
    except ValidationError as exc:
        raise ConsoleError(400, describe_validation_error(exc)) from None
    labelled = await run_in_threadpool(
        lambda: gateway.store.campaigns.label(
            exchange_id,
            verdict,
            actor=posted.user.actor,
            account_id=posted.user.account_id,
            categories=frozenset(gateway.policy.category_ids),
        )
    )
    return see_other(f"/console/conversations/{labelled.conversation_id}#turn-{labelled.turn}")


def _media(exchange: Exchange, which: str) -> Response:
    data = exchange.image if which == "image" else exchange.upload
    media_type = exchange.image_media_type if which == "image" else exchange.upload_media_type
    if not data or not media_type:
        raise ConsoleError(404, f"turn {exchange.turn} has no {which}")
    return Response(
        data,
        media_type=media_type,
        headers={**SECURITY_HEADERS, "Content-Disposition": "inline"},
    )


@router.get("/exchanges/{exchange_id}/image")
async def exchange_image(request: Request, exchange_id: int, user: AnyRole) -> Response:
    store = gateway_of(request).store
    exchange = await run_in_threadpool(
        lambda: store.campaigns.exchange(exchange_id, account_id=_own(user))
    )
    return _media(exchange, "image")


@router.get("/exchanges/{exchange_id}/upload")
async def exchange_upload(request: Request, exchange_id: int, user: AnyRole) -> Response:
    store = gateway_of(request).store
    exchange = await run_in_threadpool(
        lambda: store.campaigns.exchange(exchange_id, account_id=_own(user))
    )
    return _media(exchange, "upload")


# -- a turn -------------------------------------------------------------------------------------


class _KeepPrompt(Exception):
    """A turn refused before it ran: the page comes back with the prompt still in the form."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _read_upload(posted: Submission, max_bytes: int) -> bytes | None:
    """The optional ``upload`` file; a browser sends an empty part when none was chosen."""
    value = posted.form.get("upload")
    if value is None or isinstance(value, str):
        return None
    assert isinstance(value, UploadFile)
    data = await value.read(max_bytes + 1)
    if not data and not value.filename:
        return None
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"the uploaded image is larger than {max_bytes:,} bytes (max_upload_bytes)"
        )
    return data


def _unanswered(decision: Decision) -> str:
    if decision.status == "error":
        return f"(the model failed: {decision.error or 'no details'})"
    return f"(the model gave no answer: {decision.error or 'it has no completion for this'})"


@router.post("/conversations/{conversation_id}/turns")
async def send_turn(
    request: Request,
    conversation_id: str,
    posted: Annotated[Submission, Depends(submit("red_teamer"))],
) -> Response:
    """Run the prompt through the campaign's stack, as the red teamer's own traffic.

    A turn the model could not answer (no recording, an upstream failure) is kept with a
    response that says so: the prompt is the red teamer's work and is never lost.
    """
    return await _send_turn(request, conversation_id, posted)


async def _send_turn(request: Request, conversation_id: str, posted: Submission) -> Response:
    user = posted.user
    gateway = gateway_of(request)
    store = gateway.store
    prompt = posted.text("prompt")

    def read() -> tuple[Conversation, Campaign]:
        conversation = store.campaigns.conversation(conversation_id, account_id=user.account_id)
        return conversation, store.campaigns.get(conversation.campaign_id)

    conversation, campaign = await run_in_threadpool(read)
    if campaign.status != "open":
        raise ConsoleError(409, f"campaign {campaign.name!r} is closed; no new turns")
    try:
        if not prompt.strip():
            raise _KeepPrompt(400, "write a prompt first")
        if campaign.model in gateway.image_stacks:
            new = await _image_turn(request, gateway, posted, campaign, prompt)
        elif campaign.model in gateway.stacks:
            new = await _text_turn(request, gateway, user, conversation, campaign, prompt)
        else:
            raise ConsoleError(409, f"model {campaign.model!r} is no longer served by this gateway")
    except _KeepPrompt as exc:
        return await _conversation_page(
            request, user, conversation_id, status=exc.status, error=exc.message, prompt=prompt
        )
    except (ImageError, InputError) as exc:
        status = 413 if isinstance(exc, ImageTooLargeError) else 400
        return await _conversation_page(
            request, user, conversation_id, status=status, error=str(exc), prompt=prompt
        )
    added = await run_in_threadpool(
        lambda: store.campaigns.add_exchange(conversation_id, new, account_id=user.account_id or "")
    )
    return see_other(f"/console/conversations/{conversation_id}#turn-{added.turn}")


def _request_id(request: Request) -> str:
    found = getattr(request.state, "request_id", None)
    return found if isinstance(found, str) and found else uuid.uuid4().hex


def _record(
    gateway: Gateway,
    user: ConsoleUser,
    request_id: str,
    model: str,
    decision: Decision,
    latency_ms: float,
) -> None:
    """The decision log entry: red-team traffic, so no strikes and no review item follow."""
    gateway.metrics.observe_decision(decision)
    gateway.store.record_decision(
        gateway.decision_record(
            decision,
            request_id=request_id,
            account_id=user.account_id,
            endpoint=_ENDPOINT,
            model=model,
            latency_ms=latency_ms,
            traffic="red_team",
        )
    )


async def _text_turn(
    request: Request,
    gateway: Gateway,
    user: ConsoleUser,
    conversation: Conversation,
    campaign: Campaign,
    prompt: str,
) -> NewExchange:
    stack = gateway.stacks[campaign.model]
    messages: list[dict[str, str]] = []
    for turn in conversation.exchanges:
        if turn.modality == "text":
            messages += [
                {"role": "user", "content": turn.prompt},
                {"role": "assistant", "content": turn.response},
            ]
    messages.append({"role": "user", "content": prompt})
    request_id = _request_id(request)
    started = time.perf_counter()
    result = await anyio.to_thread.run_sync(
        lambda: stack.run(messages, audience=campaign.audience), limiter=gateway.limiter
    )
    decision = result.decision
    latency_ms = (time.perf_counter() - started) * 1000
    await run_in_threadpool(
        _record, gateway, user, request_id, campaign.model, decision, latency_ms
    )
    answered = decision.status in ("answered", "blocked")
    return NewExchange(
        modality="text",
        prompt=prompt,
        response=result.answer if answered else _unanswered(decision),
        request_id=request_id,
        status=decision.status,
        blocked=decision.blocked,
        layer=decision.layer,
        decision=decision.model_dump(mode="json"),
    )


async def _image_turn(
    request: Request, gateway: Gateway, posted: Submission, campaign: Campaign, prompt: str
) -> NewExchange:
    """A generation, or an edit when an image was uploaded, through the image stack.

    The released image is stamped exactly as ``/v1/images`` stamps one (watermark, C2PA
    manifest, registry record) and an image that cannot be stamped is not shown. A known-bad
    media match is enforced through the gateway's enforcer, as for any account: a red teamer's
    role does not exempt an upload from reporting.
    """
    user = posted.user
    max_bytes = gateway.config.max_upload_bytes
    upload = await _read_upload(posted, max_bytes)
    decoded: DecodedImage | None = None
    if upload is not None:
        decoded = await run_in_threadpool(decode_image, upload, ImageLimits(max_bytes=max_bytes))
    stack = gateway.image_stacks[campaign.model]
    request_id = _request_id(request)
    endpoint = f"{_ENDPOINT}.{'edit' if decoded is not None else 'generation'}"
    started = time.perf_counter()

    def run() -> ImageResult:
        gateway.refresh_opt_outs()
        if decoded is not None:
            return stack.edit(decoded, prompt, audience=campaign.audience)
        return stack.generate(prompt, audience=campaign.audience)

    result = await anyio.to_thread.run_sync(run, limiter=gateway.limiter)
    decision: Decision = result.decision
    match, hashes = result.hash_match, result.matched_hashes
    if match is not None and hashes is not None:
        await run_in_threadpool(
            lambda: gateway.enforcer.apply(
                match,
                account_id=user.account_id,
                request_id=request_id,
                endpoint=endpoint,
                hashes=hashes,
                audience=campaign.audience.value,
            )
        )
    latency_ms = (time.perf_counter() - started) * 1000
    await run_in_threadpool(
        _record, gateway, user, request_id, campaign.model, decision, latency_ms
    )
    image: bytes | None = None
    if decision.status == "error":
        response = _unanswered(decision)
    elif decision.blocked:
        response = result.refusal or "the request was refused by the safety system"
    elif not result.images:
        response = _unanswered(decision)
    else:
        image, response = await _released(
            gateway, user, request_id, campaign, prompt, upload, result.images[0]
        )
    return NewExchange(
        modality="image",
        prompt=prompt,
        response=response,
        request_id=request_id,
        status=decision.status,
        blocked=decision.blocked,
        layer=decision.layer,
        decision=decision.model_dump(mode="json"),
        image=image,
        image_media_type=None if image is None else sniff_media_type(image),
        upload=upload,
        upload_media_type=None if decoded is None else MEDIA_TYPES[decoded.format],
    )


async def _released(
    gateway: Gateway,
    user: ConsoleUser,
    request_id: str,
    campaign: Campaign,
    prompt: str,
    parent: bytes | None,
    image: bytes,
) -> tuple[bytes | None, str]:
    """The image as a user would get it (stamped), and the turn's response text."""
    made = "edited" if parent is not None else "generated"
    provenance = gateway.provenance
    if provenance is None:
        return image, f"(image {made}; provenance stamping is off on this gateway)"
    try:
        stamped = await anyio.to_thread.run_sync(
            lambda: provenance.stamp(
                image,
                model=campaign.model,
                prompt=prompt,
                account_id=user.account_id,
                request_id=request_id,
                parent=parent,
            ),
            limiter=gateway.limiter,
        )
    except Exception as exc:
        log.error("red-team turn %s: image held back: stamping failed: %s", request_id, exc)
        return None, (
            "(the image was not released: it could not be registered for provenance; a user "
            "would have been told to retry later)"
        )
    return stamped.data, f"(image {made}; provenance record {stamped.record.id})"
