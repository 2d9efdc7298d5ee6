"""The console's front door: sign-in and sign-out, the home page, console users, the stylesheet."""

from __future__ import annotations

import hmac
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from safestack.console._auth import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    ConsoleError,
    ConsoleUser,
    Submission,
    check_origin,
    gateway_of,
    new_login_token,
    require,
    safe_next,
    submit,
    user_from_credential,
)
from safestack.console._pages import SECURITY_HEADERS, render, see_other, stylesheet
from safestack.store import Role

__all__ = ["router"]

router = APIRouter()

_ROLES: tuple[str, ...] = get_args(Role)
_LOGIN_TOKEN_TTL_S = 15 * 60
_MAX_KEY_CHARS = 512


def _cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """Every console cookie: Secure, HttpOnly, SameSite=Strict, scoped to /console."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def _cookies_will_be_dropped(request: Request) -> bool:
    """Plain HTTP to a host other than this machine: browsers refuse ``Secure`` cookies there,
    so signing in would loop back to this page. Better to say so than to loop."""
    host = (request.url.hostname or "").strip("[]")
    return request.url.scheme != "https" and host not in ("localhost", "127.0.0.1", "::1")


def _sign_in_page(
    request: Request, next_path: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    token = new_login_token()
    response = render(
        request,
        "sign_in.html.j2",
        user=None,
        status=status,
        title="Sign in",
        login_token=token,
        next_path=safe_next(next_path),
        error=error,
        insecure=_cookies_will_be_dropped(request),
    )
    _cookie(response, LOGIN_COOKIE, token, _LOGIN_TOKEN_TTL_S)
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str = "/console/") -> HTMLResponse:
    return _sign_in_page(request, next)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the key, open a fresh session and set its cookie.

    The login form is protected by a double-submit token: the hidden field must equal the
    ``SameSite=Strict`` cookie set with the form, which a form posted from another site cannot
    carry (login CSRF, signing the victim in as the attacker).
    """
    check_origin(request)
    form = await request.form(max_files=0, max_fields=10)
    sent, planted = form.get("login_token"), request.cookies.get(LOGIN_COOKIE)
    next_path = form.get("next")
    next_path = next_path if isinstance(next_path, str) else "/console/"
    if not isinstance(sent, str) or not planted or not hmac.compare_digest(sent, planted):
        return _sign_in_page(
            request, next_path, error="the sign-in form expired; try again", status=403
        )
    key = form.get("key")
    if not isinstance(key, str) or not key.strip() or len(key) > _MAX_KEY_CHARS:
        return _sign_in_page(request, next_path, error="enter a key", status=400)
    gateway = gateway_of(request)
    user = await run_in_threadpool(user_from_credential, gateway, key.strip())
    if user is None:
        return _sign_in_page(
            request,
            next_path,
            error="that key is unknown, revoked, suspended or has no console role",
            status=401,
        )
    token, _ = await run_in_threadpool(
        lambda: gateway.store.sessions.open(
            role=user.role,
            actor=user.actor,
            account_id=user.account_id,
            ttl_s=gateway.config.console.session_ttl_s,
        )
    )
    response = see_other(safe_next(next_path))
    _cookie(response, SESSION_COOKIE, token, int(gateway.config.console.session_ttl_s))
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH, secure=True, httponly=True)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, posted: Annotated[Submission, Depends(submit())]) -> Response:
    user = posted.user
    if user.session_id is not None:
        await run_in_threadpool(
            lambda: gateway_of(request).store.sessions.close(
                user.session_id or "", actor=user.actor
            )
        )
    response = see_other("/console/sign-in")
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict"
    )
    return response


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, user: Annotated[ConsoleUser, Depends(require())]) -> HTMLResponse:
    store = gateway_of(request).store
    member = user.account_id if user.role == "red_teamer" else None
    campaigns = await run_in_threadpool(store.campaigns.find, member=member)
    open_items = None
    if user.may("admin", "reviewer"):
        open_items = await run_in_threadpool(store.review.counts)
    return render(
        request,
        "home.html.j2",
        user=user,
        title="Console",
        campaigns=campaigns,
        open_items=open_items,
    )


@router.get("/static/console.css")
async def css() -> Response:
    return Response(
        stylesheet(),
        media_type="text/css",
        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"},
    )


# -- console users (admin) ----------------------------------------------------------------------


async def _users_page(
    request: Request, user: ConsoleUser, created: dict[str, str] | None = None
) -> HTMLResponse:
    accounts = await run_in_threadpool(
        lambda: gateway_of(request).store.list_accounts(limit=1000, with_role=True)
    )
    return render(
        request,
        "users.html.j2",
        user=user,
        title="Console users",
        accounts=accounts,
        roles=_ROLES,
        created=created,
    )


@router.get("/users", response_class=HTMLResponse)
async def users(
    request: Request, user: Annotated[ConsoleUser, Depends(require("admin"))]
) -> HTMLResponse:
    return await _users_page(request, user)


@router.post("/users", response_class=HTMLResponse)
async def add_user(
    request: Request, posted: Annotated[Submission, Depends(submit("admin"))]
) -> HTMLResponse:
    """A new account with a console role and its first API key (shown once, on this page)."""
    name = posted.text("name").strip()
    role = posted.text("role")
    audience = posted.text("audience", default="adult")
    if not name:
        raise ConsoleError(400, "give the new user a name")
    if role not in _ROLES:
        raise ConsoleError(400, f"unknown role {role!r}; allowed: {', '.join(_ROLES)}")
    store = gateway_of(request).store
    actor = posted.user.actor

    def create() -> dict[str, str]:
        account = store.create_account(audience=audience, name=name, actor=actor)
        store.set_role(account.id, role, actor=actor)
        key, _ = store.create_key(account.id, actor=actor)
        return {"account_id": account.id, "role": role, "key": key}

    created = await run_in_threadpool(create)
    return await _users_page(request, posted.user, created)


@router.post("/users/{account_id}/role")
async def change_role(
    account_id: str,
    request: Request,
    posted: Annotated[Submission, Depends(submit("admin"))],
) -> Response:
    role = posted.text("role") or None
    if role is not None and role not in _ROLES:
        raise ConsoleError(400, f"unknown role {role!r}; allowed: {', '.join(_ROLES)}")
    store = gateway_of(request).store
    await run_in_threadpool(lambda: store.set_role(account_id, role, actor=posted.user.actor))
    return see_other("/console/users")
