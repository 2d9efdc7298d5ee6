"""``/admin``: keys, audiences, bans, decisions, reports, opt-outs, hash banks, the audit log.

Every route needs the admin key. Every change is written to the audit log in the same
transaction as the change itself, as ``admin:<fingerprint of the key>`` (plus the optional
``X-Safestack-Actor`` header, e.g. the reviewer's name) — never the key itself. A new API key is
returned once, in the response body, and is stored only as a hash.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from safestack.gateway._auth import AdminActor, GatewayDep
from safestack.gateway._state import Gateway
from safestack.store import (
    Account,
    ApiKeyInfo,
    AuditEntry,
    DecisionRecord,
    HashBank,
    OptOut,
    Report,
)

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


class _Body(BaseModel):
    # Strict: an admin tool that sends "yes" for a boolean has a bug worth hearing about.
    model_config = ConfigDict(extra="forbid", strict=True)


AudienceName = Literal["adult", "under_18"]


def _not_under_13(value: Any) -> Any:
    if isinstance(value, str) and value.replace("-", "_").lower() in ("under_13", "child"):
        raise ValueError("users under 13 are not served at all; use 'adult' or 'under_18'")
    return value


class NewKey(_Body):
    """A new account for ``audience``, and its first API key."""

    audience: AudienceName = Field(
        description="'adult' or 'under_18' (stricter safeguards); users under 13 are not served."
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)

    _audience = field_validator("audience", mode="before")(_not_under_13)


class CreatedKey(BaseModel):
    key: str = Field(description="The API key. Shown once; only its hash is stored.")
    key_id: str
    account_id: str
    audience: str


class AudienceChange(_Body):
    audience: AudienceName

    _audience = field_validator("audience", mode="before")(_not_under_13)


class BanRequest(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class NewOptOut(_Body):
    name: str = Field(min_length=1, max_length=300)
    kind: Literal["public_figure", "artist"]
    note: str | None = Field(default=None, max_length=2000)


class NewHashBank(_Body):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool = True


class HashBankChange(_Body):
    enabled: bool


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
        key=key, key_id=info.id, account_id=account.id, audience=account.audience.value
    )


@router.post("/keys", response_model=CreatedKey, status_code=201)
async def create_key(
    body: NewKey, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    """A new account with the given audience, and its first key (shown once)."""
    who = _who(actor, name)

    def create() -> CreatedKey:
        account = gateway.store.create_account(audience=body.audience, name=body.name, actor=who)
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
async def set_audience(
    account_id: str,
    body: AudienceChange,
    gateway: GatewayDep,
    actor: AdminActor,
    name: ActorName = None,
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.set_audience(account_id, body.audience, actor=_who(actor, name))
    )


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
) -> Any:
    return await run_in_threadpool(lambda: gateway.store.list_reports(limit=limit))


@router.get("/opt-outs", response_model=list[OptOut])
async def list_opt_outs(gateway: GatewayDep, actor: AdminActor) -> Any:
    return await run_in_threadpool(gateway.store.list_opt_outs)


@router.post("/opt-outs", response_model=OptOut, status_code=201)
async def add_opt_out(
    body: NewOptOut, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.add_opt_out(
            name=body.name, kind=body.kind, note=body.note, actor=_who(actor, name)
        )
    )


@router.delete("/opt-outs/{opt_out_id}", status_code=204)
async def remove_opt_out(
    opt_out_id: str, gateway: GatewayDep, actor: AdminActor, name: ActorName = None
) -> None:
    await run_in_threadpool(
        lambda: gateway.store.remove_opt_out(opt_out_id, actor=_who(actor, name))
    )


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
            actor=_who(actor, name),
        )
    )


@router.patch("/hash-banks/{bank_id}", response_model=HashBank)
async def set_hash_bank(
    bank_id: str,
    body: HashBankChange,
    gateway: GatewayDep,
    actor: AdminActor,
    name: ActorName = None,
) -> Any:
    return await run_in_threadpool(
        lambda: gateway.store.set_hash_bank_enabled(bank_id, body.enabled, actor=_who(actor, name))
    )


@router.get("/audit", response_model=list[AuditEntry])
async def list_audit(
    gateway: GatewayDep,
    actor: AdminActor,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return await run_in_threadpool(lambda: gateway.store.list_audit(limit=limit, action=action))
