"""What the store hands out: frozen records that cross into JSON responses as they are.

Records are plain data, detached from the database session that read them, so a caller can keep
one after the transaction has ended and serialise it with ``model_dump(mode="json")``. None of
them carries a secret: an :class:`ApiKeyInfo` has the key's display prefix, never its hash.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from safestack.errors import InputError
from safestack.policy import Audience

__all__ = [
    "Account",
    "AccountStatus",
    "ApiKeyInfo",
    "AuditEntry",
    "BankEntry",
    "Campaign",
    "ConsoleSession",
    "Conversation",
    "DecisionRecord",
    "DeliveryStatus",
    "Exchange",
    "ExchangeLabel",
    "ExchangeOutcome",
    "HashBank",
    "HashImport",
    "HashMatchRecord",
    "NewCampaign",
    "NewDecision",
    "NewExchange",
    "NewHashEntry",
    "NewProvenanceRecord",
    "OptOut",
    "OptOutKind",
    "ProvenanceIndexEntry",
    "ProvenanceRecord",
    "Report",
    "Resolution",
    "ReviewItem",
    "ReviewKind",
    "Role",
    "StrikePolicy",
    "Traffic",
    "parse_audience",
]

AccountStatus = Literal["active", "banned"]
DeliveryStatus = Literal["not_configured", "pending", "delivered", "failed"]
OptOutKind = Literal["public_figure", "artist"]
#: Console roles. ``admin``: everything; ``reviewer``: the review queue and the evidence;
#: ``red_teamer``: the campaigns they were invited to, and nothing else.
Role = Literal["admin", "reviewer", "red_teamer"]
#: ``red_team`` traffic (a red teamer's) never counts as real-world data, nor towards strikes.
Traffic = Literal["real_world", "red_team"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Account(BaseModel):
    """Someone the gateway serves: an audience, and whether they are banned and why."""

    model_config = _FROZEN

    id: str
    name: str | None
    audience: Audience
    status: AccountStatus
    ban_code: str | None
    ban_reason: str | None
    banned_at: datetime | None
    created_at: datetime
    role: Role | None = None


class ApiKeyInfo(BaseModel):
    """An API key as an administrator sees it: the display prefix, never the key or its hash."""

    model_config = _FROZEN

    id: str
    account_id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class NewDecision(BaseModel):
    """One request's safety decision, as the gateway reports it for the decision log."""

    model_config = _FROZEN

    request_id: str
    account_id: str | None
    endpoint: str
    model: str | None
    status: str
    blocked: bool
    layer: str | None
    categories: list[str]
    severity: str | None
    clause: str | None
    audience: str
    latency_ms: float | None
    traffic: Traffic = "real_world"


class DecisionRecord(NewDecision):
    """A logged decision: what was reported, with its row id and when it was written."""

    id: int
    created_at: datetime


class AuditEntry(BaseModel):
    """One administrative action: who did what to which target, when, and the particulars."""

    model_config = _FROZEN

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


class Report(BaseModel):
    """A report to be reviewed (for example a known-bad image match reported to a hotline).

    The delivery fields track sending it to the configured report receiver (a webhook): the
    report row is the outbox. ``not_configured``: no receiver was configured when it was filed;
    ``pending``: queued, next try at ``next_attempt_at`` (``delivery_attempts`` made so far);
    ``delivered``: a receiver answered 2xx at ``delivered_at``; ``failed``: every attempt
    failed (``last_error`` says how the last one did); an administrator can queue it again.
    """

    model_config = _FROZEN

    id: str
    kind: str
    account_id: str | None
    details: dict[str, Any]
    created_at: datetime
    delivery_status: DeliveryStatus = "not_configured"
    delivery_attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None


class HashMatchRecord(BaseModel):
    """What :meth:`~safestack.store.Store.record_hash_match` wrote, in one transaction.

    ``report`` is the report filed (or the earlier one this match repeats, then ``duplicate``);
    ``None`` if the bank does not report. ``banned`` says the account is banned for it now.
    ``audit_id`` is the ``hash_match`` audit entry that records the match itself.
    """

    model_config = _FROZEN

    report: Report | None
    duplicate: bool
    banned: bool
    audit_id: int


class OptOut(BaseModel):
    """A public figure or living artist who asked not to be depicted or imitated.

    ``aliases`` are other names the prompt rules match as well (a stage name, a surname alone);
    names and aliases are compared without regard to case, spacing or diacritics.
    """

    model_config = _FROZEN

    id: str
    name: str
    kind: OptOutKind
    note: str | None
    created_at: datetime
    aliases: list[str] = Field(default_factory=list)
    n_faces: int = Field(
        default=0, description="Reference face descriptors stored (never the photos)."
    )


class HashBank(BaseModel):
    """A named bank of known-bad media hashes; matching uses only the enabled banks.

    ``actions`` say what a match does (the published card's answer to a confirmed known-CSAM
    match is all three: reject the request, report it, ban the account).
    """

    model_config = _FROZEN

    id: str
    name: str
    description: str | None
    enabled: bool
    created_at: datetime
    action_reject: bool = True
    action_report: bool = True
    action_ban: bool = True
    updated_at: datetime | None = None
    counts: dict[str, int] = Field(
        default_factory=dict, description="Entries per hash type (sha256, md5, pdq)."
    )


class NewHashEntry(BaseModel):
    """One hash to import into a bank: ``hash_type`` sha256, md5 or pdq, ``value`` lower hex."""

    model_config = _FROZEN

    hash_type: Literal["sha256", "md5", "pdq"]
    value: str = Field(pattern=r"^[0-9a-f]{32}([0-9a-f]{32})?$")
    quality: int | None = Field(default=None, ge=0, le=100)
    details: dict[str, Any] = Field(default_factory=dict)


class HashImport(BaseModel):
    """What an import did: entries added and already present, per hash type."""

    model_config = _FROZEN

    bank: HashBank
    created_bank: bool
    added: dict[str, int]
    already_present: dict[str, int]


class BankEntry(BaseModel):
    """An entry of an enabled bank as the matcher loads it."""

    model_config = _FROZEN

    bank_id: str
    bank: str
    actions: frozenset[str]
    hash_type: str
    value: str
    quality: int | None


class NewProvenanceRecord(BaseModel):
    """An image about to be released, as the registry keeps it (see ``ProvenanceRow``)."""

    model_config = _FROZEN

    id: str = Field(min_length=1, max_length=40)
    account_id: str | None = None
    request_id: str | None = Field(default=None, max_length=128)
    model: str | None = Field(default=None, max_length=256)
    action: Literal["created", "edited"] = "created"
    prompt_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    prompt: str | None = None
    media_type: str = Field(max_length=64)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    pdq: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    pdq_quality: int | None = Field(default=None, ge=0, le=100)
    watermark_method: str | None = Field(default=None, max_length=16)
    watermark_payload: str | None = Field(default=None, pattern=r"^[0-9a-f]{1,32}$")
    manifest_label: str | None = Field(default=None, max_length=200)
    manifest_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    manifest_embedded: bool = True
    sidecar_manifest: bytes | None = Field(default=None, repr=False)
    signer_fingerprint: str | None = Field(default=None, max_length=64)


class ProvenanceRecord(NewProvenanceRecord):
    """A registered image: the new record plus where and when the registry stored it."""

    seq: int
    created_at: datetime


class ProvenanceIndexEntry(BaseModel):
    """What the in-memory lookup indexes hold of a record: its position and its signals."""

    model_config = _FROZEN

    seq: int
    pdq: str | None
    pdq_quality: int | None
    watermark_method: str | None
    watermark_payload: str | None


class StrikePolicy(BaseModel):
    """When repeated blocked requests ban an account automatically.

    ``threshold`` blocked requests whose severity is in ``severities`` within ``window_s`` seconds
    ban the account (see :meth:`safestack.store.Store.apply_strikes`). The defaults ban after three
    high or critical blocks within a day: one blocked request is usually a mistake or a probe, a
    run of severe ones is a pattern.
    """

    model_config = _FROZEN

    threshold: int = Field(default=3, ge=1)
    window_s: float = Field(default=86_400.0, gt=0)
    severities: frozenset[str] = frozenset({"high", "critical"})
    enabled: bool = True


_ALLOWED_AUDIENCES = ", ".join(audience.value for audience in Audience)
# "under_13", "under-12", "u13", "<13", "age_12", "12": an age bound the caller meant as a child.
_AGE_LIKE = re.compile(r"(?P<bound>under|u|<|lt|below)?[\s_-]*(?:age[\s_-]*)?(?P<age>\d{1,3})")
_CHILD_WORDS = frozenset({"child", "children", "kid", "kids"})


def parse_audience(value: Audience | str) -> Audience:
    """The :class:`Audience` for ``value``, or an :class:`InputError` that says why not.

    A child audience gets its own message rather than "unknown audience": safestack does not
    serve users under 13 at all (there is no policy tier for them), and an operator who typed
    ``under_13`` should learn that, not merely that the value is misspelt.
    """
    if isinstance(value, Audience):
        return value
    text = str(value).strip().lower()
    try:
        return Audience(text)
    except ValueError:
        pass
    match = _AGE_LIKE.fullmatch(text)
    if match is not None:
        age = int(match["age"])
        # "under_13" means younger than 13; a bare "12" is an age.
        under_13 = age <= 13 if match["bound"] is not None else age < 13
    else:
        under_13 = text in _CHILD_WORDS
    if under_13:
        raise InputError(
            f"audience {value!r} is refused: users under 13 are not served at all; "
            f"allowed audiences: {_ALLOWED_AUDIENCES}"
        )
    raise InputError(f"unknown audience {value!r}; allowed: {_ALLOWED_AUDIENCES}")


class ConsoleSession(BaseModel):
    """A signed-in console user, as the console sees it: never the session token."""

    model_config = _FROZEN

    id: str
    account_id: str | None = Field(description="None for a session opened with the admin key.")
    actor: str = Field(description="Who actions are recorded as in the audit log.")
    role: Role
    name: str = Field(description="Who is signed in, for people: the account's name or id.")
    csrf_token: str = Field(repr=False)
    created_at: datetime
    expires_at: datetime


class NewCampaign(BaseModel):
    """What an operator sets up: the served model under test, priorities and instructions."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=256, description="A model name the gateway serves.")
    categories: list[str] = Field(
        default_factory=list, max_length=50, description="Priority policy categories."
    )
    instructions: str = Field(default="", max_length=20_000)
    audience: Audience = Field(
        default=Audience.ADULT, description="Whose safeguards the red teamers probe."
    )
    show_internals: bool = Field(
        default=False,
        description="Whether red teamers see the stack's decision trace (layers, scores).",
    )


class Campaign(NewCampaign):
    """A red-teaming campaign and who is invited to it."""

    id: str
    status: Literal["open", "closed"]
    created_by: str
    created_at: datetime
    closed_at: datetime | None = None
    members: list[str] = Field(default_factory=list, description="Invited account ids.")


ExchangeOutcome = Literal["jailbreak", "refused_correctly", "over_refusal", "answered_correctly"]


class ExchangeLabel(BaseModel):
    """A red teamer's verdict on one exchange: what was attempted and how the stack did.

    ``jailbreak`` (the output violated policy) and ``refused_correctly`` are attacks, so they name
    the ``category`` attempted; ``over_refusal`` and ``answered_correctly`` are allowed requests.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    outcome: ExchangeOutcome
    category: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=5_000)

    @property
    def is_attack(self) -> bool:
        return self.outcome in ("jailbreak", "refused_correctly")


class NewExchange(BaseModel):
    """One turn as the console recorded it: prompt, what the stack said, and its decision."""

    model_config = _FROZEN

    modality: Literal["text", "image"] = "text"
    prompt: str
    response: str
    request_id: str = Field(max_length=128)
    status: str
    blocked: bool
    layer: str | None
    decision: dict[str, Any]
    image: bytes | None = Field(default=None, repr=False)
    image_media_type: str | None = None
    upload: bytes | None = Field(default=None, repr=False)
    upload_media_type: str | None = None


class Exchange(NewExchange):
    """A recorded turn and its label (``None`` until the red teamer labels it)."""

    id: int
    conversation_id: str
    turn: int
    created_at: datetime
    label: ExchangeLabel | None = None
    labelled_at: datetime | None = None
    labelled_by: str | None = None


class Conversation(BaseModel):
    """A red teamer's conversation within a campaign, with its turns in order."""

    model_config = _FROZEN

    id: str
    campaign_id: str
    account_id: str
    created_at: datetime
    exchanges: list[Exchange] = Field(default_factory=list)


ReviewKind = Literal["decision", "hash_match", "suspension", "appeal", "opt_out_request"]
#: ``confirmed`` / ``overturned`` for decisions, matches, suspensions and appeals (an appeal
#: overturned is granted); ``approved`` / ``rejected`` for opt-out requests.
Resolution = Literal["confirmed", "overturned", "approved", "rejected"]


class ReviewItem(BaseModel):
    """An item in the trust-and-safety review queue.

    ``reasons`` say why it is there (``under_18_block``, ``monitor_disagreement``,
    ``near_threshold``, ``strikes``, ``known_bad_media``, …); ``details`` hold what the reviewer
    needs to decide (for a decision: the conversation excerpt, the answer, the decision).
    ``label`` is the ground truth a resolved decision yields for evaluations.
    """

    model_config = _FROZEN

    id: str
    kind: ReviewKind
    status: Literal["open", "resolved"]
    reasons: list[str]
    account_id: str | None
    request_id: str | None
    report_id: str | None
    details: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: Resolution | None = None
    resolution_note: str | None = None
    label: dict[str, Any] | None = None
