"""Guards that hold for every console page, present and future: templates never switch off
escaping, huge bodies get a page rather than a crash, and hostile text stays text."""

from __future__ import annotations

from importlib import resources

import pytest
from console_harness import ConsoleHarness, csrf_of
from fastapi.testclient import TestClient

from safestack.gateway import GatewayConfig, create_app
from safestack.gateway._config import ConsoleConfig

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_no_template_switches_escaping_off_or_carries_a_script() -> None:
    templates = resources.files("safestack.console").joinpath("templates")
    names = [t.name for t in templates.iterdir() if t.name.endswith(".html.j2")]
    assert len(names) >= 10
    for name in names:
        text = templates.joinpath(name).read_text(encoding="utf-8")
        for forbidden in ("|safe", "| safe", "autoescape false", "Markup(", "<script"):
            assert forbidden not in text, f"{name} contains {forbidden!r}"


def test_hostile_names_are_text_on_every_page_that_shows_them(console: ConsoleHarness) -> None:
    console.user("red_teamer", name=XSS)
    client = console.sign_in(console.admin_key)
    users = client.get("/console/users")
    assert XSS not in users.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in users.text
    home = client.get("/console/")
    assert "<script>" not in home.text


def test_a_huge_upload_is_refused_with_a_page_before_it_is_read(tmp_path: object) -> None:
    import pathlib
    import secrets

    folder = pathlib.Path(str(tmp_path))
    config = GatewayConfig(
        database_url=f"sqlite:///{folder}/limits.db",
        image_dir=str(folder / "images"),
        max_upload_bytes=64 * 1024,
        console=ConsoleConfig(evidence_dir=str(folder / "evidence")),
    )
    app = create_app(config, admin_key=secrets.token_hex(24))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        upload_limit = 64 * 1024 + 1_048_576
        huge = client.post(
            "/console/conversations/conv_x/turns",
            files={"upload": ("big.png", b"\x89PNG" + b"0" * upload_limit, "image/png")},
            data={"prompt": "edit this"},
        )
        assert huge.status_code == 413
        assert huge.headers["content-type"].startswith("text/html")
        assert "max_upload_bytes" in huge.text
        # Every other console form is held to max_body_bytes (1 MiB by default).
        form = client.post("/console/sign-in", data={"key": "k" * 2_000_000})
        assert form.status_code == 413 and "max_body_bytes" in form.text


@pytest.mark.parametrize("field", ["name", "role"])
def test_a_nul_character_in_a_form_is_a_clear_error(console: ConsoleHarness, field: str) -> None:
    client = console.sign_in(console.admin_key)
    page = client.get("/console/users")
    data = {"name": "ok", "role": "reviewer", "csrf_token": csrf_of(page)}
    data[field] = data[field] + "\x00"
    refused = client.post("/console/users", data=data)
    assert refused.status_code == 400 and "NUL" in refused.text
    assert console.store.list_accounts(with_role=True) == []
