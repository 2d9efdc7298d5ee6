"""`safestack serve`: refuses to run the admin API without a key, and builds what it would serve.

The server itself is tested running, as a process, in ``tests/gateway``; here ``--check`` builds
everything (stack, upstreams, database URL) without listening.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safestack.cli import app

ADMIN = "an-admin-key-for-tests-0123456789"


def serve(*args: str, admin_key: str | None = ADMIN) -> tuple[int, str, str]:
    env = {"SAFESTACK_ADMIN_KEY": admin_key or ""}
    result = CliRunner().invoke(app, ["serve", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_without_an_admin_key_the_server_does_not_start(tmp_path: Path) -> None:
    code, _, err = serve("--check", "--database-url", f"sqlite:///{tmp_path}/x.db", admin_key=None)
    assert code == 2
    assert "SAFESTACK_ADMIN_KEY" in err and "--no-admin" in err
    code, _, err = serve(
        "--check", "--database-url", f"sqlite:///{tmp_path}/x.db", admin_key="short"
    )
    assert code == 2 and "at least 16" in err
    code, out, _ = serve(
        "--check",
        "--json",
        "--no-admin",
        "--database-url",
        f"sqlite:///{tmp_path}/x.db",
        admin_key=None,
    )
    assert code == 0 and json.loads(out)["admin"] is False


def test_check_reports_what_would_be_served(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "models:\n  llama:\n    base_url: http://127.0.0.1:9/v1\n"
        "database_url: postgresql://svc:hunter2@db.internal/safestack\n"
    )
    code, out, _ = serve(
        "--check", "--json", "--config", str(config), "--upstream", "mini=http://h/v1"
    )
    assert code == 0, out
    summary = json.loads(out)
    assert summary["models"] == ["llama", "mini"]
    assert summary["database"] == "postgresql+psycopg://svc:***@db.internal/safestack"
    assert "hunter2" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "no-equals-sign"], "NAME=URL"),
        (["--upstream", "x=ftp://h"], "http://"),
        (["--database-url", "mysql://u@h/db"], "mysql"),
    ],
)
def test_bad_settings_are_clear_errors(args: list[str], message: str) -> None:
    code, _, err = serve("--check", *args)
    assert code == 2 and message in err, err


def test_a_bad_gateway_file_points_at_the_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("models: {}\nmax_body_bytes: 10\n")
    code, _, err = serve("--check", "--config", str(config))
    assert code == 2 and "gateway.yaml:2" in err and "max_body_bytes" in err
