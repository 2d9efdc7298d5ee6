"""Certificates for the tests: a CA and a signing certificate with whatever flaw a test needs.

Built with ``cryptography`` like the development credentials, but each property can be set
wrong on purpose (expired, CA as signer, no digitalSignature, a TLS server EKU), to check that
safestack refuses what C2PA validators refuse, with a message naming the flaw.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_PEM = serialization.Encoding.PEM


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def write_chain(
    directory: Path,
    *,
    expired: bool = False,
    signer_is_ca: bool = False,
    digital_signature: bool = True,
    eku: list[x509.ObjectIdentifier] | None = None,
    wrong_key: bool = False,
    reversed_chain: bool = False,
    authority_key_id: bool = True,
) -> tuple[Path, Path, Path]:
    """Write ``chain.pem``, ``key.pem`` and ``ca.pem`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=400))
        .not_valid_after(now + datetime.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=False, cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    start = now - datetime.timedelta(days=30)
    end = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("test signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=signer_is_ca, path_length=None), critical=True)
        .add_extension(
            _usage(digital_signature=digital_signature, cert_sign=signer_is_ca), critical=True
        )
    )
    usages = [ExtendedKeyUsageOID.EMAIL_PROTECTION] if eku is None else eku
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if authority_key_id:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    signer = builder.sign(ca_key, hashes.SHA256())
    chain = [signer.public_bytes(_PEM), ca.public_bytes(_PEM)]
    if reversed_chain:
        chain.reverse()
    used_key = ec.generate_private_key(ec.SECP256R1()) if wrong_key else key
    paths = (directory / "chain.pem", directory / "key.pem", directory / "ca.pem")
    paths[0].write_bytes(b"".join(chain))
    paths[1].write_bytes(
        used_key.private_bytes(
            _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[2].write_bytes(ca.public_bytes(_PEM))
    return paths
