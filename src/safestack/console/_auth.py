"""Who is signed in, and may they do this: sessions, roles, CSRF.

* **Sign-in** takes an existing credential: an API key of an account that has a console role,
  or the admin key (role ``admin``). It opens a server-side session (:class:`ConsoleSessions`)
  and sets a cookie that is ``Secure``, ``HttpOnly`` and ``SameSite=Strict``. The token is new
  at every sign-in and any cookie the browser brought along is ignored, so a session id planted
  by someone else (session fixation) never becomes a signed-in session.
* **Scripts** may send ``Authorization: Bearer <key>`` instead of a cookie; such requests need no
  CSRF token, because a browser never attaches that header on its own.
* **CSRF**: every form carries the session's token and every POST is checked against it (and
  against the ``Origin`` header when the browser sends one). The sign-in form, which has no
  session yet, is protected by a double-submit token in a short-lived ``SameSite=Strict`` cookie.
* **Roles**: every page names the roles that may open it (:func:`require`); anything else gets
  403, and pages that show one person's data check ownership as well.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from safestack.gateway._state import Gateway
from safestack.store import Role
from safestack.store._sessions import ADMIN_NAME

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "ConsoleError",
    "ConsoleUser",
    "NotSignedIn",
    "Submission",
    "check_origin",
    "gateway_of",
    "require",
    "submit",
    "user_from_credential",
]

SESSION_COOKIE = "safestack_console"
LOGIN_COOKIE = "safestack_console_login"
COOKIE_PATH = "/console"
#: The form field every console form carries.
CSRF_FIELD = "csrf_token"
ROLES: tuple[Role, ...] = ("admin", "reviewer", "red_teamer")


class ConsoleError(Exception):
    """An error page: the status, and a message for the person (never internals)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class NotSignedIn(Exception):
    """No valid session: the console redirects to the sign-in page, and back afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class ConsoleUser:
    """The person behind a request: their role, their account (None for the admin key), and
    the audit actor their actions are recorded as."""

    role: Role
    actor: str
    account_id: str | None
    name: str
    session_id: str | None = None
    csrf_token: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may(self, *roles: Role) -> bool:
        return self.role in roles


@dataclass(frozen=True)
class Submission:
    """A checked POST: who sent it, and the form they sent."""

    user: ConsoleUser
    form: FormData

    def text(self, name: str, *, default: str = "") -> str:
        """A text field (an uploaded file under that name is a 400, not a string)."""
        value = self.form.get(name, default)
        if not isinstance(value, str):
            raise ConsoleError(400, f"the field {name!r} must be text")
        if "\x00" in value:  # the database cannot keep it (PostgreSQL refuses NUL in text)
            raise ConsoleError(400, f"the field {name!r} contains a NUL character")
        return value


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def account_actor(account_id: str) -> str:
    """How an account's console actions appear in the audit log."""
    return f"console:{account_id}"


def user_from_credential(gateway: Gateway, credential: str) -> ConsoleUser | None:
    """The console user for an API key or the admin key; None if it grants no console role.

    Runs in a worker thread (it reads the store).
    """
    if gateway.is_admin_key(credential):
        return ConsoleUser(
            role="admin", actor=gateway.admin_actor, account_id=None, name=ADMIN_NAME
        )
    account = gateway.store.authenticate(credential)
    if account is None or account.status != "active" or account.role is None:
        return None
    return ConsoleUser(
        role=account.role,
        actor=account_actor(account.id),
        account_id=account.id,
        name=account.name or account.id,
    )


async def _current_user(request: Request) -> ConsoleUser | None:
    cached: ConsoleUser | None = getattr(request.state, "console_user", None)
    if cached is not None:
        return cached
    gateway = gateway_of(request)
    user: ConsoleUser | None = None
    authorization = request.headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        user = await run_in_threadpool(user_from_credential, gateway, credential.strip())
        if user is None:
            raise ConsoleError(401, "this key does not grant access to the console")
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            session = await run_in_threadpool(gateway.store.sessions.resolve, token)
            if session is not None:  # its name came with it: one read per page
                user = ConsoleUser(
                    role=session.role,
                    actor=session.actor,
                    account_id=session.account_id,
                    name=session.name,
                    session_id=session.id,
                    csrf_token=session.csrf_token,
                )
    request.state.console_user = user
    return user


async def optional_user(request: Request) -> ConsoleUser | None:
    """The signed-in user, or None (for pages anyone may see: the sign-in page)."""
    return await _current_user(request)


def _here(request: Request) -> str:
    path = request.url.path
    return path + (f"?{request.url.query}" if request.url.query else "")


def require(*roles: Role) -> Callable[[Request], Awaitable[ConsoleUser]]:
    """A dependency: the signed-in user if their role is one of ``roles``; else redirect to
    sign-in (not signed in) or a 403 page (signed in with another role)."""
    allowed = roles or ROLES

    async def dependency(request: Request) -> ConsoleUser:
        user = await _current_user(request)
        if user is None:
            raise NotSignedIn(_here(request))
        if user.role not in allowed:
            raise ConsoleError(
                403,
                f"your role ({user.role}) cannot open this page; it needs {' or '.join(allowed)}",
            )
        return user

    return dependency


def check_origin(request: Request) -> None:
    """A POST whose Origin (or, lacking that, Referer) names another site is refused."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return  # no header: the token decides (some privacy settings strip both)
    parts = urlsplit(origin)
    if parts.netloc != request.headers.get("host", request.url.netloc):
        raise ConsoleError(403, "this form was sent from another site; reload the page")


def submit(*roles: Role) -> Callable[[Request], AsyncIterator[Submission]]:
    """A dependency for every POST: the role check, then the CSRF check, then the form.

    The form is closed when the request is done, so an upload's spooled temporary file never
    outlives it.
    """
    who = require(*roles)

    async def dependency(request: Request) -> AsyncIterator[Submission]:
        user = await who(request)
        form = await request.form(max_files=4, max_fields=200)
        try:
            if user.session_id is not None:  # cookie-authenticated: a browser, so CSRF applies
                check_origin(request)
                sent = form.get(CSRF_FIELD)
                expected = user.csrf_token or ""
                if not isinstance(sent, str) or not hmac.compare_digest(
                    sent.encode(), expected.encode()
                ):
                    raise ConsoleError(
                        403,
                        "the form's security token is missing or stale; reload the page and retry",
                    )
            yield Submission(user=user, form=form)
        finally:
            await form.close()

    return dependency


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def sign_in_redirect(next_path: str) -> str:
    return f"/console/sign-in?next={quote(next_path, safe='')}"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if not value or not value.startswith("/console") or value.startswith("//"):
        return "/console/"
    if any(c in value for c in "\\\r\n") or urlsplit(value).netloc:
        return "/console/"
    return value


Viewer = Annotated[ConsoleUser, Depends(require())]
