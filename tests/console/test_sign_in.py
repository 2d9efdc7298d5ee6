"""Signing in and out, sessions, roles, CSRF: the console's doors, through real HTTP."""

from __future__ import annotations

import re

from console_harness import LOGIN, ConsoleHarness, csrf_of

from safestack.console._auth import SESSION_COOKIE


def test_pages_need_a_session_and_redirect_to_sign_in(console: ConsoleHarness) -> None:
    client = console.client()
    response = client.get("/console/users?page=2")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fusers%3Fpage%3D2"


def test_admin_key_signs_in_and_the_cookie_is_locked_down(console: ConsoleHarness) -> None:
    client = console.client()
    form = client.get("/console/sign-in")
    login_cookie = form.headers["set-cookie"]
    assert "Secure" in login_cookie and "HttpOnly" in login_cookie
    assert "samesite=strict" in login_cookie.lower()
    signed = console.sign_in(console.admin_key, client)
    home = signed.get("/console/")
    assert home.status_code == 200
    assert "administrator" in home.text
    assert home.headers["content-security-policy"].startswith("default-src 'none'")
    assert home.headers["x-frame-options"] == "DENY"


def test_a_key_without_a_console_role_cannot_sign_in(console: ConsoleHarness) -> None:
    _, key = console.user(None)
    client = console.client()
    form = client.get("/console/sign-in")
    token = LOGIN.search(form.text)
    assert token is not None
    refused = client.post(
        "/console/sign-in", data={"key": key, "login_token": token.group(1), "next": "/console/"}
    )
    assert refused.status_code == 401
    assert "no console role" in refused.text
    assert SESSION_COOKIE not in client.cookies


def test_sign_in_from_another_site_is_refused(console: ConsoleHarness) -> None:
    """Login CSRF: a form posted from elsewhere carries neither the login cookie nor our Origin."""
    client = console.client()
    no_cookie = client.post(
        "/console/sign-in", data={"key": console.admin_key, "login_token": "x", "next": "/"}
    )
    assert no_cookie.status_code == 403
    form = client.get("/console/sign-in")
    token = LOGIN.search(form.text)
    assert token is not None
    foreign = client.post(
        "/console/sign-in",
        data={"key": console.admin_key, "login_token": token.group(1), "next": "/console/"},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_session_fixation_a_planted_cookie_never_becomes_a_session(
    console: ConsoleHarness,
) -> None:
    client = console.client()
    client.cookies.set(SESSION_COOKIE, "attacker-chosen-token", domain="testserver.local")
    planted = client.get("/console/")
    assert planted.status_code == 303  # the planted token is no session
    console.sign_in(console.admin_key, client)
    issued = [
        c
        for c in client.cookies.jar
        if c.name == SESSION_COOKIE and c.value != "attacker-chosen-token"
    ]
    assert issued, "sign-in must issue a fresh session token"
    assert console.store.sessions.resolve("attacker-chosen-token") is None
    # Each sign-in issues a new token, so a token learnt before sign-in is worthless after it.
    second = console.sign_in(console.admin_key)
    tokens = {c.value for c in issued} | {
        c.value for c in second.cookies.jar if c.name == SESSION_COOKIE
    }
    assert len(tokens) == 2


def test_sign_out_ends_the_session_everywhere(console: ConsoleHarness) -> None:
    client = console.sign_in(console.admin_key)
    token = next(c.value for c in client.cookies.jar if c.name == SESSION_COOKIE)
    page = client.get("/console/")
    out = client.post("/console/sign-out", data={"csrf_token": csrf_of(page)})
    assert out.status_code == 303
    replay = console.client()
    replay.cookies.set(SESSION_COOKIE, token, domain="testserver.local", path="/console")
    assert replay.get("/console/").status_code == 303
    assert console.store.sessions.resolve(token) is None


def test_every_post_needs_the_csrf_token(console: ConsoleHarness) -> None:
    reviewer_id, _ = console.user("reviewer", name="rev")
    client = console.sign_in(console.admin_key)
    page = client.get("/console/users")
    missing = client.post(f"/console/users/{reviewer_id}/role", data={"role": "admin"})
    stale = client.post(
        f"/console/users/{reviewer_id}/role", data={"role": "admin", "csrf_token": "stale"}
    )
    foreign = client.post(
        f"/console/users/{reviewer_id}/role",
        data={"role": "admin", "csrf_token": csrf_of(page)},
        headers={"Origin": "https://evil.example"},
    )
    assert [r.status_code for r in (missing, stale, foreign)] == [403, 403, 403]
    assert "security token" in missing.text
    assert console.store.get_account(reviewer_id).role == "reviewer"  # nothing changed
    done = client.post(
        f"/console/users/{reviewer_id}/role", data={"role": "admin", "csrf_token": csrf_of(page)}
    )
    assert done.status_code == 303
    assert console.store.get_account(reviewer_id).role == "admin"


def test_every_console_post_route_checks_csrf(console: ConsoleHarness) -> None:
    """Whatever pages are added later: a signed-in POST without the token changes nothing."""
    from starlette.routing import Mount

    mount = next(r for r in console.app.routes if isinstance(r, Mount) and r.path == "/console")  # type: ignore[attr-defined]
    paths = mount.app.openapi()["paths"]  # the console's own routes (its document is not served)
    posts = [path for path, methods in paths.items() if "post" in methods]
    assert len(posts) >= 4
    client = console.sign_in(console.admin_key)
    for path in posts:
        if path == "/sign-in":
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        response = client.post(f"/console{concrete}", data={})
        assert response.status_code == 403, (path, response.status_code)


def test_roles_cannot_be_escalated(console: ConsoleHarness) -> None:
    red_id, red_key = console.user("red_teamer", name="red")
    reviewer_id, reviewer_key = console.user("reviewer", name="rev")
    for own_id, key in ((red_id, red_key), (reviewer_id, reviewer_key)):
        client = console.sign_in(key)
        page = client.get("/console/")
        assert client.get("/console/users").status_code == 403
        attempt = client.post(
            f"/console/users/{own_id}/role", data={"role": "admin", "csrf_token": csrf_of(page)}
        )
        assert attempt.status_code == 403
        created = client.post(
            "/console/users",
            data={"name": "x", "role": "admin", "csrf_token": csrf_of(page)},
        )
        assert created.status_code == 403
    assert console.store.get_account(red_id).role == "red_teamer"
    assert console.store.get_account(reviewer_id).role == "reviewer"
    assert [a.name for a in console.store.list_accounts(with_role=True)] == ["red", "rev"]


def test_a_demoted_reviewer_loses_access_at_the_next_request(console: ConsoleHarness) -> None:
    reviewer_id, key = console.user("reviewer", name="rev")
    client = console.sign_in(key)
    assert client.get("/console/").status_code == 200
    console.store.set_role(reviewer_id, None, actor="test")
    assert client.get("/console/").status_code == 303


def test_scripts_may_use_a_bearer_key_instead_of_a_cookie(console: ConsoleHarness) -> None:
    _, key = console.user("reviewer", name="rev")
    _, plain = console.user(None)
    client = console.client()
    ok = client.get("/console/", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200 and "rev" in ok.text
    refused = client.get("/console/", headers={"Authorization": f"Bearer {plain}"})
    assert refused.status_code == 401


def test_sign_in_never_redirects_to_another_site(console: ConsoleHarness) -> None:
    client = console.client()
    form = client.get("/console/sign-in?next=https://evil.example/")
    token = LOGIN.search(form.text)
    assert token is not None and "evil" not in form.text
    for target in ("https://evil.example/", "//evil.example/console", "/console\\@evil"):
        done = client.post(
            "/console/sign-in",
            data={"key": console.admin_key, "login_token": token.group(1), "next": target},
        )
        assert done.headers["location"] == "/console/", target
        token = LOGIN.search(client.get("/console/sign-in").text)
        assert token is not None


def test_admin_adds_a_console_user_whose_key_is_shown_once(console: ConsoleHarness) -> None:
    client = console.sign_in(console.admin_key)
    page = client.get("/console/users")
    created = client.post(
        "/console/users",
        data={"name": "<b>Rita</b>", "role": "red_teamer", "csrf_token": csrf_of(page)},
    )
    assert created.status_code == 200
    key = re.search(r'<code class="secret">([^<]+)</code>', created.text)
    assert key is not None and key.group(1).startswith("sk-ss-")
    assert "&lt;b&gt;Rita&lt;/b&gt;" in created.text and "<b>Rita</b>" not in created.text
    assert key.group(1) not in client.get("/console/users").text
    console.sign_in(key.group(1))  # the new red teamer can sign in with it


def test_the_sign_in_page_warns_when_the_session_cookie_cannot_stick(
    console: ConsoleHarness,
) -> None:
    """Secure cookies need HTTPS (or this machine): say so instead of looping on sign-in."""
    from fastapi.testclient import TestClient

    plain = TestClient(console.app, base_url="http://console.example")  # type: ignore[arg-type]
    assert "plain HTTP" in plain.get("/console/sign-in").text
    local = TestClient(console.app, base_url="http://127.0.0.1:8000")  # type: ignore[arg-type]
    assert "plain HTTP" not in local.get("/console/sign-in").text
    assert "plain HTTP" not in console.client().get("/console/sign-in").text  # https
