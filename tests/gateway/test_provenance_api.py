"""Provenance through the gateway: real ``safestack serve`` processes, the real ``openai`` client.

One gateway (SQLite, the offline sample-photos model, development credentials in a temporary
``SAFESTACK_PROVENANCE_DIR``) serves the module: every image it releases must carry our C2PA
manifest and an invisible watermark and be in the registry, and ``/v1/provenance`` must find it
again, re-encoded or not. Start-up with an expired certificate and a registry that fails under
traffic are tested against real processes too; the registry outage runs last, and is undone.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import skimage.data
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image
from typer.testing import CliRunner

from gateway_process import SAFESTACK, RunningGateway, start_gateway, stop_gateway
from loopback import free_port
from safestack.cli import app
from safestack.provenance import (
    PROVENANCE_DIR_ENV,
    ManifestSigner,
    Provenance,
    ProvenanceConfig,
    SigningCredentials,
    create_development_credentials,
    read_manifest,
)
from safestack.store import Store

_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("provenance-api")


@pytest.fixture(scope="module")
def gateway(tmp: Path) -> Iterator[RunningGateway]:
    """The module's gateway; its development credentials are in ``tmp/provenance``."""
    config = {"image_dir": str(tmp / "images"), "max_upload_bytes": 2 * 1024 * 1024}
    running = start_gateway(tmp, database_url=f"sqlite:///{tmp}/g.db", config=config)
    try:
        yield running
    finally:
        stop_gateway(running)


@pytest.fixture(scope="module")
def key(gateway: RunningGateway) -> str:
    return gateway.new_key()


@pytest.fixture(scope="module")
def cat(gateway: RunningGateway, key: str) -> tuple[bytes, dict[str, Any]]:
    """A released image (scikit-image's cat photo, stamped) and its provenance tag."""
    result = gateway.client(key).images.generate(prompt="a photo of a cat on a sofa")
    extension = (result.model_extra or {})["safestack"]
    return base64.b64decode(result.data[0].b64_json or ""), extension["provenance"][0]


def _anchors(tmp: Path) -> bytes:
    return (tmp / "provenance" / "dev-ca.pem").read_bytes()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _textured(size: int) -> Image.Image:
    """A synthetic image with real structure, unlike anything the sample-photos model serves."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.sin(x * 9 + y * 5) * 80 + 128
    blobs = rng.normal(0, 25, (size // 16, size // 16)).repeat(16, 0).repeat(16, 1)
    channels = [base + blobs * k for k in (1.0, -0.6, 0.3)]
    return Image.fromarray(np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8))


def _bmp(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="BMP")
    return buffer.getvalue()


def _post(
    gateway: RunningGateway,
    route: str,
    key: str | None,
    image: bytes,
    manifest: bytes | None = None,
    *,
    as_json: bool = False,
) -> httpx.Response:
    """``/v1/provenance/<route>``, as a multipart upload or as base64 JSON."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = f"{gateway.v1}/provenance/{route}"
    if as_json:
        body = {"image": base64.b64encode(image).decode()}
        if manifest is not None:
            body["manifest"] = base64.b64encode(manifest).decode()
        return httpx.post(url, headers=headers, json=body, timeout=60)
    files = {"image": ("image", image, "application/octet-stream")}
    if manifest is not None:
        files["manifest"] = ("image.c2pa", manifest, "application/c2pa")
    return httpx.post(url, headers=headers, files=files, timeout=60)


def _lookup(gateway: RunningGateway, key: str, image: bytes, **kwargs: Any) -> dict[str, Any]:
    response = _post(gateway, "lookup", key, image, **kwargs)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _verify(gateway: RunningGateway, key: str, image: bytes, **kwargs: Any) -> str:
    response = _post(gateway, "verify", key, image, **kwargs)
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


# -- what a released image carries --------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["b64_json", "url"])
def test_a_released_image_carries_our_manifest_and_is_registered(
    gateway: RunningGateway, key: str, tmp: Path, response_format: str
) -> None:
    result = gateway.client(key).images.generate(
        prompt="a cup of coffee",
        response_format=response_format,  # type: ignore[arg-type]
    )
    if response_format == "url":
        data = httpx.get(result.data[0].url or "", timeout=10).content
    else:
        data = base64.b64decode(result.data[0].b64_json or "")
    tags = (result.model_extra or {})["safestack"]["provenance"]
    assert len(tags) == 1
    tag = tags[0]
    assert tag["manifest"] == "embedded" and tag["watermark"] == "dwtDctSvd"
    assert "manifest_url" not in tag  # only sidecar manifests have one

    public = read_manifest(data, "image/png")  # what a public validator concludes
    assert public.state == "untrusted", public
    ours = read_manifest(data, "image/png", trust_anchors_pem=_anchors(tmp))
    assert ours.state == "valid", ours
    assert ours.actions == ["c2pa.created"] and ours.digital_source_type == _TRAINED
    assert ours.record_id == tag["record_id"] and ours.ingredients == 0
    assert Image.open(io.BytesIO(data)).size == (600, 400)  # scikit-image's coffee, marked

    found = _lookup(gateway, key, data)
    assert found["made_by_us"] is True and found["signal"] == "sha256"
    assert found["record_id"] == tag["record_id"] and found["confidence"] == 1.0
    assert found["manifest"]["state"] == "valid"
    record = found["record"]
    assert record["model"] == "safestack-sample-photos" and record["action"] == "created"
    assert record["account_id"] is not None and "prompt" not in record
    # Another account learns that we made it, not who asked for it.
    other = _lookup(gateway, gateway.new_key(), data, as_json=True)
    assert other["record_id"] == tag["record_id"]
    assert other["record"]["account_id"] is None and other["record"]["request_id"] is None


def test_n_images_get_one_record_each(gateway: RunningGateway, key: str) -> None:
    result = gateway.client(key).images.generate(prompt="a rocket launch", n=2)
    tags = (result.model_extra or {})["safestack"]["provenance"]
    assert len(tags) == 2 and tags[0]["record_id"] != tags[1]["record_id"]
    first, second = (base64.b64decode(d.b64_json or "") for d in result.data)
    assert first != second  # one watermark payload and one manifest per image


def test_a_reencoded_copy_is_still_ours(
    gateway: RunningGateway, key: str, cat: tuple[bytes, dict[str, Any]]
) -> None:
    data, tag = cat
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="JPEG", quality=85)
    copy = buffer.getvalue()
    assert read_manifest(copy, "image/jpeg").state == "none"  # Pillow dropped the metadata

    found = _lookup(gateway, key, copy, as_json=True)
    assert found["made_by_us"] is True, found["evidence"]
    assert found["signal"] in ("watermark", "pdq") and found["record_id"] == tag["record_id"]
    assert found["confidence"] > 0.5


def test_an_unrelated_image_is_not_ours(gateway: RunningGateway, key: str) -> None:
    photo = _png(Image.fromarray(skimage.data.camera()))  # never served by sample-photos
    found = _lookup(gateway, key, photo)
    assert found["made_by_us"] is False and found["signal"] is None
    assert found["record_id"] is None and found["confidence"] == 0.0
    assert {e["signal"] for e in found["evidence"]} == {"sha256", "manifest", "watermark", "pdq"}
    assert _verify(gateway, key, photo) == "none"


def test_an_edit_names_the_uploaded_image_as_its_parent(
    gateway: RunningGateway, key: str, tmp: Path, cat: tuple[bytes, dict[str, Any]]
) -> None:
    upload, _ = cat  # carries our manifest
    result = gateway.client(key).images.edit(
        image=("cat.png", upload, "image/png"), prompt="add a moon"
    )
    edited = base64.b64decode(result.data[0].b64_json or "")
    tag = (result.model_extra or {})["safestack"]["provenance"][0]
    report = read_manifest(edited, "image/png", trust_anchors_pem=_anchors(tmp))
    assert report.state == "valid", report
    assert report.actions == ["c2pa.opened", "c2pa.edited"]
    assert report.digital_source_type == _COMPOSITE and report.ingredients == 1
    found = _lookup(gateway, key, edited)
    assert found["record_id"] == tag["record_id"] and found["record"]["action"] == "edited"


# -- the lookup and verify endpoints -------------------------------------------------------------


def test_verify_states(
    gateway: RunningGateway, key: str, tmp: Path, cat: tuple[bytes, dict[str, Any]]
) -> None:
    data, _ = cat
    assert _verify(gateway, key, data) == "valid"
    assert _verify(gateway, key, data, as_json=True) == "valid"
    # Signed by someone this gateway does not trust (other development credentials).
    foreign_dir = tmp / "foreign"
    create_development_credentials(foreign_dir)
    signer = ManifestSigner(SigningCredentials.development_default(foreign_dir))
    foreign = signer.sign(
        _png(Image.fromarray(skimage.data.camera())), "image/png", record_id="x", model=None
    )
    assert _verify(gateway, key, foreign.data) == "untrusted"
    found = _lookup(gateway, key, foreign.data)
    assert found["made_by_us"] is False  # a manifest, but not one naming our records
    assert found["manifest"]["state"] == "untrusted"


def test_sidecar_manifests_are_served_and_checked(
    gateway: RunningGateway, key: str, tmp: Path
) -> None:
    """A BMP cannot embed a manifest: stamped with the gateway's credentials into the gateway's
    registry (as ``safestack provenance sign`` does), its sidecar is served and checked."""
    credentials = tmp / "provenance"
    settings = ProvenanceConfig(
        certificate=str(credentials / "signer-chain.pem"),
        private_key=str(credentials / "signer-key.pem"),
        watermark="none",  # no torch in the test process; the watermark is tested above
    )
    with Store(f"sqlite:///{tmp}/g.db") as store:
        stamped = Provenance.from_config(settings, store).stamp(_bmp(_textured(320)), model="cli")
    assert stamped.sidecar_manifest is not None
    image, sidecar, record_id = stamped.data, stamped.sidecar_manifest, stamped.record.id

    headers = {"Authorization": f"Bearer {key}"}
    served = httpx.get(f"{gateway.v1}/provenance/manifests/{record_id}", headers=headers)
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == "application/c2pa" and served.content == sidecar
    assert httpx.get(f"{gateway.v1}/provenance/manifests/{record_id}").status_code == 401

    assert _verify(gateway, key, image) == "none"  # the BMP alone carries nothing
    assert _verify(gateway, key, image, manifest=sidecar) == "valid"
    assert _verify(gateway, key, image, manifest=sidecar, as_json=True) == "valid"
    found = _lookup(gateway, key, image, manifest=sidecar)
    assert found["made_by_us"] is True and found["record_id"] == record_id
    tampered = bytearray(image)
    tampered[-200] ^= 0xFF  # one pixel byte of the uncompressed BMP
    assert _verify(gateway, key, bytes(tampered), manifest=sidecar) == "invalid"


def test_manifests_of_embedded_or_unknown_records_are_404(
    gateway: RunningGateway, key: str, cat: tuple[bytes, dict[str, Any]]
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for record_id, status, says in (
        (cat[1]["record_id"], 404, "embedded"),
        ("img_0000", 404, "no provenance record"),
        ("x" * 41, 400, "record_id"),
    ):
        response = httpx.get(f"{gateway.v1}/provenance/manifests/{record_id}", headers=headers)
        assert response.status_code == status, response.text
        assert says in response.json()["error"]["message"]


def test_lookups_need_a_key_and_a_real_image(
    gateway: RunningGateway, key: str, cat: tuple[bytes, dict[str, Any]]
) -> None:
    for route in ("lookup", "verify"):
        refused = _post(gateway, route, None, cat[0])
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "missing_api_key"
        for as_json in (False, True):
            garbage = _post(gateway, route, key, b"this is not an image", as_json=as_json)
            assert garbage.status_code == 400, garbage.text
            assert garbage.json()["error"]["code"] == "image_unsupported"
        huge = _post(gateway, route, key, b"\x00" * (3 * 1024 * 1024))
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "image_too_large"
        empty = _post(gateway, route, key, b"")
        assert empty.status_code == 400 and empty.json()["error"]["param"] == "image"
    # A damaged image of a known format is answered from what can still be read.
    truncated = _lookup(gateway, key, cat[0][: len(cat[0]) // 2])
    assert truncated["made_by_us"] is False
    pixels = [e for e in truncated["evidence"] if e["signal"] in ("watermark", "pdq")]
    assert pixels and all("cannot be decoded" in e["detail"] for e in pixels)
    headers = {"Authorization": f"Bearer {key}"}
    not_base64 = httpx.post(
        f"{gateway.v1}/provenance/lookup", headers=headers, json={"image": "@@@"}, timeout=10
    )
    assert not_base64.status_code == 400 and not_base64.json()["error"]["param"] == "image"
    extra = httpx.post(
        f"{gateway.v1}/provenance/lookup",
        headers=headers,
        files={"image": ("a.png", cat[0]), "notes": (None, "hello")},
        timeout=10,
    )
    assert extra.status_code == 400 and "notes" in extra.json()["error"]["message"]


def test_metrics_count_stamped_images(gateway: RunningGateway) -> None:
    metrics = httpx.get(f"{gateway.base_url}/metrics").text
    stamped = re.search(
        r'safestack_provenance_stamped_total\{watermark="dwtDctSvd"\} (\S+)', metrics
    )
    assert stamped is not None and float(stamped.group(1)) >= 1


# -- start-up and outages ------------------------------------------------------------------------


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, PROVENANCE_DIR_ENV: str(tmp / "provenance")}


def _expired_credentials(directory: Path) -> tuple[Path, Path]:
    """A CA and a signing certificate under it that C2PA would accept, but expired yesterday."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=60))
        .not_valid_after(now + datetime.timedelta(days=300))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    signer = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired signer")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .sign(ca_key, hashes.SHA256())
    )
    chain, private = directory / "chain.pem", directory / "key.pem"
    pem = serialization.Encoding.PEM
    chain.write_bytes(signer.public_bytes(pem) + ca.public_bytes(pem))
    private.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return chain, private


def test_an_expired_certificate_stops_the_gateway_at_start_up(tmp: Path) -> None:
    directory = tmp / "expired"
    directory.mkdir()
    chain, private = _expired_credentials(directory)
    config = directory / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": f"sqlite:///{directory}/g.db",
                "provenance": {"certificate": str(chain), "private_key": str(private)},
            }
        )
    )
    started = subprocess.run(
        [SAFESTACK, "serve", "--config", str(config), "--no-admin", "--port", str(free_port())],
        capture_output=True,
        env=_env(tmp),
        timeout=120,
        check=False,
    )
    error = started.stderr.decode()
    assert started.returncode == 2, error
    assert "certificate 'CN=expired signer' expired on" in error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_check_reports_the_signer_and_the_watermark(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --check --json`` builds the app as a start-up does (in this process: cheaper)."""
    monkeypatch.setenv(PROVENANCE_DIR_ENV, str(tmp / "provenance"))
    checked = CliRunner().invoke(
        app, ["serve", "--config", str(tmp / "gw.yaml"), "--no-admin", "--check", "--json"]
    )
    assert checked.exit_code == 0, checked.stderr
    provenance = json.loads(checked.stdout)["provenance"]
    assert provenance["watermark"] == "dwtDctSvd"
    assert provenance["signer"]["development"] is True
    assert "development signer" in provenance["signer"]["subject"]

    disabled = tmp / "disabled.yaml"
    disabled.write_text(
        yaml.safe_dump({"database_url": f"sqlite:///{tmp}/d.db", "provenance": {"enabled": False}})
    )
    checked = CliRunner().invoke(
        app, ["serve", "--config", str(disabled), "--no-admin", "--check", "--json"]
    )
    assert checked.exit_code == 0, checked.stderr
    assert json.loads(checked.stdout)["provenance"] is None


def test_a_registry_that_fails_releases_no_image(
    gateway: RunningGateway, key: str, tmp: Path, cat: tuple[bytes, dict[str, Any]]
) -> None:
    """Runs last: the registry's table disappears under a running gateway, then comes back."""
    database = sqlite3.connect(tmp / "g.db")
    try:
        database.execute("ALTER TABLE provenance_records RENAME TO provenance_records_away")
        database.commit()
        try:
            response = httpx.post(
                f"{gateway.v1}/images/generations",
                headers={"Authorization": f"Bearer {key}"},
                json={"prompt": "a cup of coffee", "response_format": "b64_json"},
                timeout=60,
            )
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["error"]["code"] == "provenance_unavailable" and "data" not in body
            assert "not released" in body["error"]["message"]
            down = _post(gateway, "lookup", key, cat[0])
            assert down.status_code == 503, down.text
            assert str(tmp) not in down.text  # no database path in a body
        finally:
            database.execute("ALTER TABLE provenance_records_away RENAME TO provenance_records")
            database.commit()
    finally:
        database.close()
    metrics = httpx.get(f"{gateway.base_url}/metrics").text
    assert 'safestack_provenance_failures_total{reason="store"} 1.0' in metrics
    assert "provenance_records" in gateway.log()  # the operator's log says what failed
    assert gateway.client(key).images.generate(prompt="a cup of coffee").data  # back
    assert not [secret for secret in gateway.secrets_seen() if secret in gateway.log()]
