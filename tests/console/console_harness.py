"""A console to test against: the real gateway app (in process) on a SQLite file.

A module of its own, not the conftest: ``from conftest import …`` finds whichever
``conftest`` was imported first, which depends on the order pytest collects directories in.

``console`` is a :class:`ConsoleHarness`: the app behind a TestClient on ``https://testserver``
(the session cookie is ``Secure``, so plain http would never send it back), the admin key, and
helpers that create console users and sign them in through the real sign-in form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fastapi.testclient import TestClient

from safestack.store import Store

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGIN = re.compile(r'name="login_token" value="([^"]+)"')


@dataclass
class ConsoleHarness:
    app: object
    admin_key: str
    store: Store
    evidence_dir: Path

    def client(self) -> TestClient:
        """A fresh browser-like client (own cookie jar), not signed in."""
        return TestClient(self.app, base_url="https://testserver", follow_redirects=False)  # type: ignore[arg-type]

    def user(
        self, role: str | None, *, name: str = "someone", audience: str = "adult"
    ) -> tuple[str, str]:
        """A new account with ``role`` and its API key: ``(account_id, key)``."""
        account = self.store.create_account(audience=audience, name=name, actor="test")
        if role is not None:
            self.store.set_role(account.id, role, actor="test")
        key, _ = self.store.create_key(account.id, actor="test")
        return account.id, key

    def sign_in(self, key: str, client: TestClient | None = None) -> TestClient:
        """Sign in through the form, as a browser does; returns the signed-in client."""
        client = client or self.client()
        form = client.get("/console/sign-in")
        assert form.status_code == 200, form.text
        token = LOGIN.search(form.text)
        assert token is not None
        done = client.post(
            "/console/sign-in",
            data={"key": key, "login_token": token.group(1), "next": "/console/"},
        )
        assert done.status_code == 303, done.text
        return client


class Page(Protocol):
    """A response with an HTML body (the TestClient's, or httpx's)."""

    @property
    def text(self) -> str: ...


def csrf_of(response: Page) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF.search(response.text)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)
