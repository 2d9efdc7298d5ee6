"""`safestack provenance`: init, sign, verify, lookup, status; on a SQLite registry.

The JSON shapes of ``verify`` and ``lookup`` are a contract for other tools (issue 9): their
keys and values are pinned here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from provenance_images import encode, photo, scene
from safestack.cli import app
from safestack.provenance import PROVENANCE_DIR_ENV
from signing_certificates import write_chain

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PROVENANCE_DIR_ENV, str(tmp_path / "dev"))
    monkeypatch.setenv("SAFESTACK_DATABASE_URL", f"sqlite:///{tmp_path}/registry.db")
    return tmp_path


def _run(*args: str) -> tuple[int, Any]:
    result = runner.invoke(app, ["provenance", *args])
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, result.output


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_init_creates_labelled_development_credentials_once(env: Path) -> None:
    code, made = _run("init", "--json")
    assert code == 0 and made["created"] is True
    assert made["trusted_by_public_validators"] is False
    assert made["signer"]["development"] is True
    assert Path(made["certificate"]).is_file() and Path(made["ca_certificate"]).is_file()
    code, again = _run("init", "--json")
    assert code == 0 and again["created"] is False
    assert again["signer"]["fingerprint_sha256"] == made["signer"]["fingerprint_sha256"]
    code, forced = _run("init", "--force", "--json")
    assert forced["signer"]["fingerprint_sha256"] != made["signer"]["fingerprint_sha256"]
    text = runner.invoke(app, ["provenance", "init"])
    assert "not trusted by public" in text.output


def test_sign_verify_lookup_round_trip(env: Path) -> None:
    source = _write(env / "in.png", encode(scene(11)))
    code, signed = _run("sign", str(source), str(env / "out.png"), "--model", "m", "--json")
    assert code == 0, signed
    assert signed["manifest"] == "embedded" and signed["sidecar"] is None
    assert signed["watermark"] == "dwtDctSvd" and signed["action"] == "created"

    code, verified = _run("verify", str(env / "out.png"), "--json")
    assert code == 0
    assert verified["state"] == "valid"
    assert verified["record_id"] == signed["record_id"]
    assert verified["actions"] == ["c2pa.created"]
    code, public = _run("verify", str(env / "out.png"), "--public", "--json")
    assert code == 1 and public["state"] == "untrusted"

    code, found = _run("lookup", str(env / "out.png"), "--json")
    assert code == 0
    assert {k: found[k] for k in ("made_by_us", "signal", "record_id", "confidence")} == {
        "made_by_us": True,
        "signal": "sha256",
        "record_id": signed["record_id"],
        "confidence": 1.0,
    }

    stripped = Image.open(env / "out.png").convert("RGB")
    buffer = io.BytesIO()
    stripped.save(buffer, "JPEG", quality=80)
    copy = _write(env / "copy.jpg", buffer.getvalue())
    code, verified = _run("verify", str(copy), "--json")
    assert code == 1 and verified["state"] == "none"
    code, found = _run("lookup", str(copy), "--json")
    assert code == 0 and found["made_by_us"] is True
    assert found["signal"] in ("watermark", "pdq") and found["record_id"] == signed["record_id"]
    assert 0.5 < found["confidence"] < 1.0

    unrelated = _write(env / "other.png", encode(photo("rocket")))
    code, found = _run("lookup", str(unrelated), "--json")
    assert code == 1
    assert found["made_by_us"] is False and found["signal"] is None
    assert found["record_id"] is None and found["confidence"] == 0.0

    text = runner.invoke(app, ["provenance", "lookup", str(copy)])
    assert "made by us" in text.output


def test_tampered_images_verify_invalid(env: Path) -> None:
    source = _write(env / "in.png", encode(scene(12)))
    _run("sign", str(source), str(env / "out.png"), "--json")
    data = bytearray((env / "out.png").read_bytes())
    data[-200] ^= 0xFF
    code, verified = _run("verify", str(_write(env / "bad.png", bytes(data))), "--json")
    assert code == 1 and verified["state"] == "invalid"
    assert "assertion.dataHash.mismatch" in verified["failures"]


def test_bmp_is_signed_with_a_sidecar_that_verify_finds(env: Path) -> None:
    source = _write(env / "in.bmp", encode(scene(13), "BMP"))
    code, signed = _run("sign", str(source), str(env / "out.bmp"), "--json")
    assert code == 0 and signed["manifest"] == "sidecar"
    assert signed["sidecar"] == str(env / "out.bmp.c2pa")
    code, verified = _run("verify", str(env / "out.bmp"), "--json")
    assert code == 0 and verified["state"] == "valid" and verified["embedded"] is False
    (env / "out.bmp.c2pa").unlink()
    code, verified = _run("verify", str(env / "out.bmp"), "--json")
    assert code == 1 and verified["state"] == "none"


def test_edits_name_their_parent(env: Path) -> None:
    _write(env / "up.png", encode(scene(14)))
    _run("sign", str(env / "up.png"), str(env / "up-signed.png"), "--json")
    _write(env / "edit.png", encode(scene(15)))
    code, signed = _run(
        "sign",
        str(env / "edit.png"),
        str(env / "edit-signed.png"),
        "--parent",
        str(env / "up-signed.png"),
        "--json",
    )
    assert code == 0 and signed["action"] == "edited"
    code, verified = _run("verify", str(env / "edit-signed.png"), "--json")
    assert verified["actions"] == ["c2pa.opened", "c2pa.edited"] and verified["ingredients"] == 1


def test_bad_input_exits_2_with_a_message(env: Path) -> None:
    garbage = _write(env / "garbage.png", b"this is not an image")
    for command in ("verify", "lookup"):
        result = runner.invoke(app, ["provenance", command, str(garbage)])
        assert result.exit_code == 2, command
        assert "not a readable image" in result.output or "cannot be" in result.output
    result = runner.invoke(app, ["provenance", "verify", str(env / "missing.png")])
    assert result.exit_code == 2 and "cannot read" in result.output
    result = runner.invoke(app, ["provenance", "sign", str(garbage), str(env / "never.png")])
    assert result.exit_code == 2 and not (env / "never.png").exists()


def test_expired_certificate_is_refused_before_anything_is_signed(env: Path) -> None:
    write_chain(env / "expired", expired=True)
    config = env / "gateway.yaml"
    # Relative paths are read relative to the gateway file, not to the working directory.
    config.write_text(
        yaml.safe_dump(
            {
                "provenance": {
                    "certificate": "expired/chain.pem",
                    "private_key": "expired/key.pem",
                }
            }
        )
    )
    for args in (["status"], ["sign", str(_write(env / "in.png", encode(scene(16)))), "o.png"]):
        result = runner.invoke(app, ["provenance", *args, "--config", str(config)])
        assert result.exit_code == 2
        assert "expired on" in result.output


def test_status_reports_the_signer_and_the_registry(env: Path) -> None:
    _write(env / "in.png", encode(scene(17)))
    _run("sign", str(env / "in.png"), str(env / "out.png"), "--json")
    code, status = _run("status", "--json")
    assert code == 0
    assert status["signer"]["development"] is True
    assert status["watermark"] == "dwtDctSvd"
    assert status["registry"]["records"] == 1


def test_every_command_has_help() -> None:
    for command in ("init", "sign", "verify", "lookup", "status"):
        result = runner.invoke(app, ["provenance", command, "--help"])
        assert result.exit_code == 0 and "--json" in result.output
