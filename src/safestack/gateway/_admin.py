"""``/admin``: keys, audiences, bans, decisions, reports, opt-outs, hash banks, the audit log.

Every route needs the admin key. Every change is written to the audit log in the same
transaction as the change itself, as ``admin:<fingerprint of the key>`` (plus the optional
``X-Safestack-Actor`` header, e.g. the reviewer's name) — never the key itself. A new API key is
returned once, in the response body, and is stored only as a hash.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from safestack.classify.faces import REFERENCE_MIN_SCORE, default_embedder
from safestack.errors import ClassifierError, RecordConflictError, RecordNotFoundError
from safestack.gateway._auth import AdminActor, GatewayDep, HTTPProblem
from safestack.gateway._state import Gateway
from safestack.gateway._wire import NO_NUL_PATTERN, TEXT_PATTERN
from safestack.hashing import read_hash_lines
from safestack.hashing._reports import cybertipline_report
from safestack.media import decode_image
from safestack.store import (
    Account,
    ApiKeyInfo,
    AuditEntry,
    DecisionRecord,
    HashBank,
    HashImport,
    OptOut,
    Report,
    Role,
)
from safestack.store._records import DeliveryStatus

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


#: An opt-out alias: a name the prompt rules match as well.
Alias = Annotated[str, Field(min_length=1, max_length=300, pattern=TEXT_PATTERN)]


class _Body(BaseModel):
    # Strict: an admin tool that sends "yes" for a boolean has a bug worth hearing about.
    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")


AudienceName = Literal["adult", "under_18"]


def _not_under_13(value: Any) -> Any:
    if isinstance(value, str) and value.replace("-", "_").lower() in ("under_13", "child"):
        raise ValueError("users under 13 are not served at all; use 'adult' or 'under_18'")
    return value


_ROLE_DESCRIPTION = (
    "A console role: 'admin' (everything), 'reviewer' (the review queue and the evidence) or "
    "'red_teamer' (invited campaigns; their traffic is marked as red teaming and never counts "
    "as real-world data nor towards strikes)."
)


class NewKey(_Body):
    """A new account for ``audience``, and its first API key."""

    audience: AudienceName = Field(
        description="'adult' or 'under_18' (stricter safeguards); users under 13 are not served."
    )
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=TEXT_PATTERN)
    role: Role | None = Field(default=None, description=_ROLE_DESCRIPTION)

    _audience = field_validator("audience", mode="before")(_not_under_13)


class CreatedKey(BaseModel):
    key: str = Field(description="The API key. Shown once; only its hash is stored.")
    key_id: str
    account_id: str
    audience: str
    role: Role | None = None


class AccountChange(_Body):
    """What ``PATCH /admin/accounts/{id}`` changes: the audience, the role, or both.

    ``role: null`` takes the account's role away; a field left out is left as it is.
    """

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"minProperties": 1})

    # Documented as a plain string: an audience cannot be removed, so null is refused.
    audience: Annotated[
        AudienceName | None, WithJsonSchema({"type": "string", "enum": ["adult", "under_18"]})
    ] = None
    role: Role | None = Field(default=None, description=_ROLE_DESCRIPTION)

    _audience = field_validator("audience", mode="before")(_not_under_13)

    @model_validator(mode="after")
    def _changes_something(self) -> AccountChange:
        if not self.model_fields_set:
            raise ValueError("give 'audience', 'role' or both")
        if "audience" in self.model_fields_set and self.audience is None:
            raise ValueError("'audience' is 'adult' or 'under_18'; it cannot be removed")
        return self


class BanRequest(_Body):
    reason: str = Field(min_length=1, max_length=2000, pattern=TEXT_PATTERN)


class NewOptOut(_Body):
    name: str = Field(min_length=1, max_length=300, pattern=TEXT_PATTERN)
    kind: Literal["public_figure", "artist"]
    note: str | None = Field(default=None, max_length=2000, pattern=NO_NUL_PATTERN)
    aliases: list[Annotated[str, Field(min_length=1, max_length=300, pattern=TEXT_PATTERN)]] = (
        Field(
            default_factory=list,
            max_length=50,
            description="Other names the prompt rules match too (a stage name, a surname alone).",
        )
    )


class BankActions(_Body):
    """What a match against the bank does; the card's answer to known CSAM is all three."""

    reject: bool = True
    report: bool = True
    ban: bool = True

    def chosen(self) -> list[str]:
        return [name for name in ("reject", "report", "ban") if getattr(self, name)]


class NewHashBank(_Body):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    description: str | None = Field(default=None, max_length=2000, pattern=NO_NUL_PATTERN)
    enabled: bool = True
    actions: BankActions = Field(default_factory=BankActions)


class HashBankChange(_Body):
    enabled: bool | None = None
    actions: BankActions | None = None


class NewHash(_Body):
    hash: str = Field(pattern=r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{64})$")
    type: Literal["sha256", "md5", "pdq"] | None = Field(
        default=None,
        description="Default: by length (32 → md5; 64 → sha256 and pdq). A type whose length "
        "does not fit the hash is refused with 400.",
    )
    # JSON has one number type: 78.0 is a valid integer quality (strict mode would refuse it).
    quality: int | None = Field(default=None, ge=0, le=100, strict=False)
    details: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


#: Keys the bank-file reader gives a meaning; metadata may not use them.
_RESERVED_KEYS = frozenset(
    {"hash", "type", "quality", "signal_value", "value", "signal_type", "hash_type"}
)


class HashUpload(_Body):
    hashes: list[NewHash] = Field(min_length=1, max_length=10_000)


ActorName = Annotated[
    str | None,
    Header(
        alias="X-Safestack-Actor",
        max_length=200,
        description="Who is acting (recorded in the audit log beside the key's fingerprint).",
    ),
]


def _who(actor: str, name: str | None) -> str:
    return f"{actor} ({name})" if name else actor


def _issue_key(gateway: Gateway, account: Account, who: str) -> CreatedKey:
    key, info = gateway.store.create_key(account.id, actor=who)
    return CreatedKey(
        key=key,
        key_id=info.id,
        account_id=account.id,
        audience=account.audience.value,
        role=account.role,
    )


@router.post("/keys", response_model=CreatedKey, status_code=201)
async def create_key(
    body: NewKey, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    """A new account with the given audience, and its first key (shown once)."""
    who = _who(actor, name)

    def create() -> CreatedKey:
        account = gateway.store.create_account(audience=body.audience, name=body.name, actor=who)
        if body.role is not None:
            account = gateway.store.set_role(account.id, body.role, actor=who)
        return _issue_key(gateway, account, who)

    return await run_in_threadpool(create)


@router.post("/accounts/{account_id}/keys", response_model=CreatedKey, status_code=201)
async def add_key(
    account_id: str, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    """Another key for an existing account (e.g. to rotate keys without losing its history)."""
    who = _who(actor, name)

    def create() -> CreatedKey:
        return _issue_key(gateway, gateway.store.get_account(account_id), who)

    return await run_in_threadpool(create)


@router.get("/keys", response_model=list[ApiKeyInfo])
async def list_keys(gateway: GatewayDep, actor: AdminActor, account_id: str | None = None) -> Any:
    return await run_in_threadpool(gateway.store.list_keys, account_id)


@router.delete("/keys/{key_id}", response_model=ApiKeyInfo)
async def revoke_key(
    key_id: str, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.revoke_key(key_id, actor=_who(actor, name))
    )


@router.get("/accounts", response_model=list[Account])
async def list_accounts(
    gateway: GatewayDep,
    actor: AdminActor,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> Any:
    return await run_in_threadpool(lambda: gateway.store.list_accounts(limit=limit, offset=offset))


@router.get("/accounts/{account_id}", response_model=Account)
async def get_account(account_id: str, gateway: GatewayDep, actor: AdminActor) -> Any:
    return await run_in_threadpool(gateway.store.get_account, account_id)


@router.patch("/accounts/{account_id}", response_model=Account)
async def change_account(
    account_id: str,
    body: AccountChange,
    gateway: GatewayDep,
    actor: AdminActor,
    name: ActorName = None,
) -> Any:
    """Change the audience and/or the console role (``role: null`` removes it).

    Each change is its own audit entry; a role taken away ends the account's console sessions
    at their next request.
    """
    who = _who(actor, name)

    def change() -> Account:
        account = gateway.store.get_account(account_id)  # 404 before any change
        if body.audience is not None:
            account = gateway.store.set_audience(account_id, body.audience, actor=who)
        if "role" in body.model_fields_set:
            account = gateway.store.set_role(account_id, body.role, actor=who)
        return account

    return await run_in_threadpool(change)


@router.post("/accounts/{account_id}/ban", response_model=Account)
async def ban(
    account_id: str,
    body: BanRequest,
    gateway: GatewayDep,
    actor: AdminActor,
    name: ActorName = None,
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.ban(account_id, reason=body.reason, actor=_who(actor, name))
    )


@router.post("/accounts/{account_id}/unban", response_model=Account)
async def unban(
    account_id: str, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    return await run_in_threadpool(lambda: gateway.store.unban(account_id, actor=_who(actor, name)))


@router.get("/decisions", response_model=list[DecisionRecord])
async def list_decisions(
    gateway: GatewayDep,
    actor: AdminActor,
    account_id: str | None = None,
    blocked_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.list_decisions(
            account_id=account_id, blocked_only=blocked_only, limit=limit
        )
    )


@router.get("/reports", response_model=list[Report])
async def list_reports(
    gateway: GatewayDep,
    actor: AdminActor,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    delivery_status: DeliveryStatus | None = None,
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.list_reports(limit=limit, delivery_status=delivery_status)
    )


@router.get("/reports/{report_id}", response_model=Report)
async def get_report(report_id: str, gateway: GatewayDep, actor: AdminActor) -> Any:
    """One report, with its delivery state (pending, delivered, failed, not_configured)."""
    return await run_in_threadpool(gateway.store.get_report, report_id)


@router.get("/reports/{report_id}/export", response_model=dict[str, Any])
async def export_report(report_id: str, gateway: GatewayDep, actor: AdminActor) -> Any:
    """A hash-match report as a CyberTipline-style document (not a certified integration)."""
    report = await run_in_threadpool(gateway.store.get_report, report_id)
    if report.kind != "hash_match":
        raise RecordConflictError(
            f"report {report_id} is a {report.kind!r} report; only 'hash_match' reports have a "
            "CyberTipline-style export"
        )
    receiver = gateway.config.reports
    return cybertipline_report(report, None if receiver is None else receiver.reporter)


@router.post("/reports/{report_id}/redeliver", response_model=Report)
async def redeliver_report(
    report_id: str, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    """Queue a report for the report receiver again (e.g. after it failed every attempt).

    409 if the gateway has no report receiver configured: there is nowhere to deliver to.
    """

    def redeliver() -> Report:
        report = gateway.store.get_report(report_id)  # 404 first, for an unknown id
        if gateway.config.reports is None:
            raise RecordConflictError(
                f"report {report.id} cannot be redelivered: no report receiver is configured "
                "(the gateway file's 'reports:' section)"
            )
        return gateway.store.redeliver_report(report_id, actor=_who(actor, name))

    return await run_in_threadpool(redeliver)


@router.get("/opt-outs", response_model=list[OptOut])
async def list_opt_outs(gateway: GatewayDep, actor: AdminActor) -> Any:
    return await run_in_threadpool(gateway.store.list_opt_outs)


@router.post("/opt-outs", response_model=OptOut, status_code=201)
async def add_opt_out(
    body: NewOptOut, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.add_opt_out(
            name=body.name,
            kind=body.kind,
            note=body.note,
            aliases=body.aliases,
            actor=_who(actor, name),
        )
    )


@router.delete("/opt-outs/{opt_out_id}", status_code=204)
async def remove_opt_out(
    opt_out_id: str, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> None:
    await run_in_threadpool(
        lambda: gateway.store.remove_opt_out(opt_out_id, actor=_who(actor, name))
    )


_PHOTO_TYPES = ("image/png", "image/jpeg", "image/webp", "application/octet-stream")
_PHOTO_SCHEMA = {"type": "string", "format": "binary"}
_FACE_PHOTO_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **{media: {"schema": _PHOTO_SCHEMA} for media in _PHOTO_TYPES},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": _PHOTO_SCHEMA},
                }
            },
        },
    }
}


@router.post(
    "/opt-outs/{opt_out_id}/faces",
    response_model=OptOut,
    status_code=201,
    openapi_extra=_FACE_PHOTO_BODY,
    summary="Add a reference photo's face to an opt-out",
)
async def add_opt_out_face(
    opt_out_id: str,
    request: Request,
    gateway: GatewayDep,
    actor: AdminActor,
    name: ActorName = None,
) -> Any:
    """Store the face descriptor of a reference photo (never the photo) for face matching.

    The body is the photo itself (PNG, JPEG or WebP, up to max_body_bytes) or a multipart form
    with one ``image`` file. The photo must show exactly one face, found by the detector (a
    frontal face at least about 80 pixels wide; weak detections are not counted), else 400
    with code ``no_face`` or ``several_faces`` (400 like every refusal of this API, which
    documents no 422). Needs the ``faces`` extra (503
    ``face_matching_unavailable`` without).
    """
    data = await _reference_photo(request, gateway.config.max_upload_bytes)
    who = _who(actor, name)

    def add() -> OptOut:
        if not any(opt_out.id == opt_out_id for opt_out in gateway.store.list_opt_outs()):
            raise RecordNotFoundError(f"no opt-out with id {opt_out_id!r}")
        image = decode_image(data)
        try:
            found = default_embedder().frame_faces(image.pixels)
        except ClassifierError as exc:
            raise HTTPProblem(
                503, str(exc), type="service_unavailable", code="face_matching_unavailable"
            ) from None
        faces = [face for face in found if face.score >= REFERENCE_MIN_SCORE]
        if len(faces) != 1:
            shown = "no clear face" if not faces else f"{len(faces)} faces"
            raise HTTPProblem(
                400,
                f"the reference photo shows {shown}; send a photo of exactly one face, frontal "
                "and at least about 80 pixels wide",
                code="no_face" if not faces else "several_faces",
                param="image",
            )
        descriptor = [float(v) for v in faces[0].descriptor]
        return gateway.store.add_opt_out_face(opt_out_id, descriptor, actor=who)

    return await run_in_threadpool(add)


async def _reference_photo(request: Request, max_bytes: int) -> bytes:
    """The photo of a face upload: the raw body, or the ``image`` file of a multipart form."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        data = await request.body()
    else:
        try:
            form = await request.form(max_files=1, max_fields=0)
        except Exception as exc:  # starlette raises several kinds for a malformed body
            raise HTTPProblem(400, f"the multipart body cannot be read: {exc}") from None
        try:
            upload = form.get("image")
            data = await upload.read(max_bytes + 1) if isinstance(upload, UploadFile) else b""
        finally:
            await form.close()
    if not data:
        raise HTTPProblem(
            400,
            "send the reference photo as the request body (PNG, JPEG or WebP) or as the "
            "'image' file of a multipart form",
            param="image",
        )
    if len(data) > max_bytes:
        raise HTTPProblem(413, f"the photo is larger than {max_bytes:,} bytes", param="image")
    return data


def _banks_changed(gateway: Gateway) -> None:
    """This replica applies a bank change at once; the others within the matcher's interval."""
    if gateway.hash_matcher is not None:
        gateway.hash_matcher.invalidate()


@router.get("/hash-banks", response_model=list[HashBank])
async def list_hash_banks(gateway: GatewayDep, actor: AdminActor) -> Any:
    return await run_in_threadpool(gateway.store.list_hash_banks)


@router.post("/hash-banks", response_model=HashBank, status_code=201)
async def create_hash_bank(
    body: NewHashBank, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.create_hash_bank(
            name=body.name,
            description=body.description,
            enabled=body.enabled,
            actions=body.actions.chosen(),
            actor=_who(actor, name),
        )
    )


@router.get("/hash-banks/{bank_id}", response_model=HashBank)
async def get_hash_bank(bank_id: str, gateway: GatewayDep, actor: AdminActor) -> Any:
    return await run_in_threadpool(gateway.store.get_hash_bank, bank_id)


@router.post("/hash-banks/{bank_id}/hashes", response_model=HashImport)
async def add_hashes(
    bank_id: str,
    body: HashUpload,
    gateway: GatewayDep,
    actor: AdminActor,
    name: ActorName = None,
) -> Any:
    """Up to 10,000 hashes per call (bigger banks: ``safestack hashes import``); all or none."""
    lines = "\n".join(
        json.dumps(
            {
                "hash": h.hash,
                **({"type": h.type} if h.type else {}),
                **({"quality": h.quality} if h.quality is not None else {}),
                **{k: v for k, v in h.details.items() if k not in _RESERVED_KEYS},
            }
        )
        for h in body.hashes
    )

    def add() -> Any:
        bank = gateway.store.get_hash_bank(bank_id)  # 404 before parsing anything
        entries = read_hash_lines(lines, source="request body")
        added = gateway.store.import_hashes(bank.id, entries, create=False, actor=_who(actor, name))
        _banks_changed(gateway)
        return added

    return await run_in_threadpool(add)


@router.patch("/hash-banks/{bank_id}", response_model=HashBank)
async def set_hash_bank(
    bank_id: str,
    body: HashBankChange,
    gateway: GatewayDep,
    actor: AdminActor,
    name: ActorName = None,
) -> Any:
    who = _who(actor, name)

    def change() -> Any:
        bank = gateway.store.get_hash_bank(bank_id)
        if body.enabled is not None:
            bank = gateway.store.set_hash_bank_enabled(bank_id, body.enabled, actor=who)
        if body.actions is not None:
            bank = gateway.store.set_hash_bank_actions(bank_id, body.actions.chosen(), actor=who)
        _banks_changed(gateway)
        return bank

    return await run_in_threadpool(change)


@router.get("/audit", response_model=list[AuditEntry])
async def list_audit(
    gateway: GatewayDep,
    actor: AdminActor,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return await run_in_threadpool(lambda: gateway.store.list_audit(limit=limit, action=action))
