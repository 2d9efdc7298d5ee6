"""Signing material: development credentials, and refusing what C2PA validators refuse."""

from __future__ import annotations

import io
import stat
import threading
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from safestack.errors import CredentialsError
from safestack.provenance import (
    DEVELOPMENT_ORGANIZATION,
    ManifestSigner,
    SigningCredentials,
    create_development_credentials,
    read_manifest,
)
from signing_certificates import write_chain


def test_development_credentials_are_labelled_untrusted_and_keys_private(tmp_path: Path) -> None:
    paths = create_development_credentials(tmp_path / "dev")
    for role, path in paths.items():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if role.endswith("private_key") else 0o644), role
    credentials = SigningCredentials.development_default(tmp_path / "dev")
    assert credentials.development
    assert DEVELOPMENT_ORGANIZATION in credentials.subject
    assert credentials.algorithm == "es256"
    assert credentials.trust_anchors_pem == paths["ca_certificate"].read_bytes()
    described = credentials.describe()
    assert described["development"] is True and described["signs_with"] == "private key"
    with pytest.raises(CredentialsError, match="exist already"):
        create_development_credentials(tmp_path / "dev")
    before = paths["certificate"].read_bytes()
    create_development_credentials(tmp_path / "dev", overwrite=True)
    assert paths["certificate"].read_bytes() != before


def test_concurrent_first_use_yields_one_consistent_set(tmp_path: Path) -> None:
    """Replicas starting together must not mix one process's key with another's certificate."""
    loaded: list[SigningCredentials] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            loaded.append(SigningCredentials.development_default(tmp_path / "shared"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({c.fingerprint for c in loaded}) == 1
    ManifestSigner(loaded[0])  # the key belongs to the certificate: the self-test signs


def test_files_from_another_ca_load_and_sign(tmp_path: Path) -> None:
    chain, key, ca = write_chain(tmp_path)
    credentials = SigningCredentials.from_files(chain, key, trust_anchors=[ca])
    assert not credentials.development
    signer = ManifestSigner(credentials)
    signed = signer.sign(_png(), "image/png", record_id="img_x", model="m")
    assert read_manifest(signed.data, "image/png").state == "untrusted"
    trusted = read_manifest(signed.data, "image/png", trust_anchors_pem=ca.read_bytes())
    assert trusted.state == "valid"


@pytest.mark.parametrize(
    ("flaw", "message"),
    [
        ({"expired": True}, "expired on"),
        ({"signer_is_ca": True}, "is a CA certificate"),
        ({"digital_signature": False}, "digitalSignature"),
        ({"eku": [ExtendedKeyUsageOID.SERVER_AUTH]}, "extended key usage serverAuth"),
        ({"eku": []}, "has no extended key usage"),
        ({"wrong_key": True}, "does not belong"),
        ({"reversed_chain": True}, "is a CA certificate"),
        ({"authority_key_id": False}, "authorityKeyIdentifier"),
    ],
)
def test_unusable_material_is_refused_with_the_reason(
    tmp_path: Path, flaw: dict[str, object], message: str
) -> None:
    chain, key, _ = write_chain(tmp_path, **flaw)  # type: ignore[arg-type]
    with pytest.raises(CredentialsError, match=message):
        SigningCredentials.from_files(chain, key)


def test_unreadable_or_encrypted_keys_are_refused(tmp_path: Path) -> None:
    chain, key, _ = write_chain(tmp_path)
    with pytest.raises(CredentialsError, match="cannot read the private key"):
        SigningCredentials.from_files(chain, tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(CredentialsError, match="not an unencrypted PEM private key"):
        SigningCredentials.from_files(chain, tmp_path / "junk.pem")
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(CredentialsError, match="is empty"):
        SigningCredentials.from_files(tmp_path / "empty.pem", key)


def test_a_signing_callback_stands_in_for_an_hsm(tmp_path: Path) -> None:
    """The key stays 'elsewhere': only the callback touches it, as with a KMS."""
    chain, key, ca = write_chain(tmp_path)
    vault = SigningCredentials.from_files(chain, key).signature_callback()
    calls: list[int] = []

    def kms_sign(data: bytes) -> bytes:
        calls.append(len(data))
        return vault(data)

    credentials = SigningCredentials.from_callback(chain, kms_sign, "es256")
    assert credentials.private_key_pem is None
    signed = ManifestSigner(credentials).sign(_png(), "image/png", record_id="img_y", model=None)
    assert calls  # the self-test and this signature went through the callback
    report = read_manifest(signed.data, "image/png", trust_anchors_pem=ca.read_bytes())
    assert report.state == "valid"


def test_a_callback_that_signs_wrongly_fails_at_construction(tmp_path: Path) -> None:
    chain, _, _ = write_chain(tmp_path)
    credentials = SigningCredentials.from_callback(chain, lambda data: b"\0" * 64, "es256")
    with pytest.raises(CredentialsError, match="cannot sign C2PA"):
        ManifestSigner(credentials)


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def test_provenance_config_refuses_incomplete_material() -> None:
    from pydantic import ValidationError

    from safestack.provenance import ProvenanceConfig

    for bad, message in [
        ({"certificate": "c.pem"}, "certificate needs private_key"),
        ({"private_key": "k.pem"}, "need the certificate chain"),
        ({"certificate": "c.pem", "signer": "kms:sign"}, "signer needs algorithm"),
        ({"certificate": "c", "private_key": "k", "signer": "m:f"}, "not both"),
        ({"timestamp_url": "ftp://tsa"}, "http"),
        ({"watermark": "lsb"}, "watermark"),
    ]:
        with pytest.raises(ValidationError, match=message):
            ProvenanceConfig.model_validate(bad)


def test_an_unreachable_timestamp_authority_fails_at_construction(tmp_path: Path) -> None:
    """The self-test signs with the authority: a bad one stops start-up, not the first image."""
    from loopback import free_port

    chain, key, _ = write_chain(tmp_path)
    credentials = SigningCredentials.from_files(
        chain, key, timestamp_url=f"http://127.0.0.1:{free_port()}/tsa"
    )
    with pytest.raises(CredentialsError, match=r"cannot sign C2PA.*/tsa"):
        ManifestSigner(credentials)
