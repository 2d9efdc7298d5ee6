"""Who is calling: API key → account (deny by default), and the admin key for ``/admin/``.

Every ``/v1`` request reads its account from the store — no cache — so a ban made through one
replica is enforced by all of them on the next request. A banned account is refused (403)
everywhere but on the routes it needs to appeal (:data:`AppealingCaller`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from safestack.gateway._state import Gateway
from safestack.store import Account

__all__ = ["AdminActor", "AppealingCaller", "Caller", "GatewayDep", "HTTPProblem", "gateway_of"]

_bearer = HTTPBearer(auto_error=False, description="An API key from POST /admin/keys.")
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminKey", description="The SAFESTACK_ADMIN_KEY."
)


class HTTPProblem(Exception):
    """An error response in OpenAI's shape (see the app's exception handler)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.reason = code, param, reason
        self.extra = extra  # top-level fields beside "error" (e.g. the safestack decision)


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(gateway_of)]


async def _key_holder(
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    """The account a valid API key belongs to, whatever its status (401 otherwise)."""
    if credentials is None or not credentials.credentials:
        raise HTTPProblem(
            401,
            "no API key: send 'Authorization: Bearer <key>' (keys come from POST /admin/keys)",
            code="missing_api_key",
        )
    account = await run_in_threadpool(gateway.store.authenticate, credentials.credentials)
    if account is None:
        raise HTTPProblem(401, "invalid or revoked API key", code="invalid_api_key")
    return account


async def _caller(account: Annotated[Account, Depends(_key_holder)]) -> Account:
    if account.status != "active":
        raise HTTPProblem(
            403,
            f"account {account.id} is suspended ({account.ban_code}); contact the operator",
            type="permission_denied",
            code="account_banned",
            reason=account.ban_code,
        )
    return account


async def _admin(
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> str:
    if credentials is None or not gateway.is_admin_key(credentials.credentials):
        raise HTTPProblem(
            401,
            "admin endpoints need the admin key as 'Authorization: Bearer <SAFESTACK_ADMIN_KEY>'",
            code="invalid_admin_key",
        )
    return gateway.admin_actor


Caller = Annotated[Account, Depends(_caller)]
#: The caller of the routes a suspended user still needs (appealing the suspension): the same
#: key check as :data:`Caller`, but a banned account is let through.
AppealingCaller = Annotated[Account, Depends(_key_holder)]
AdminActor = Annotated[str, Depends(_admin)]
