"""Signing material for C2PA manifests: loading and checking it, and development certificates.

C2PA validators accept a signing certificate only if it is an end-entity certificate (not a CA),
within its validity period, with the ``digitalSignature`` key usage, an extended key usage from
the C2PA list (email protection, document signing, time stamping, OCSP signing or C2PA's own) and
an authority key identifier. ``c2pa-python`` refuses anything else at signing time with a bare
"certificate is invalid"; :meth:`SigningCredentials.check` makes the same checks up front and
says which one failed, so a gateway with bad material fails at start-up, not at its first image.

:func:`create_development_credentials` makes a throwaway CA and a signing certificate under it,
named so that nobody mistakes them for trusted ones: public validators (Adobe's, the C2PA trust
list) do not know the CA, so manifests signed with it read as *untrusted* everywhere except where
the CA is loaded as a trust anchor.
"""

from __future__ import annotations

import datetime
import fcntl
import itertools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar, get_args

import platformdirs
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from safestack.errors import CredentialsError

__all__ = [
    "DEVELOPMENT_ORGANIZATION",
    "PROVENANCE_DIR_ENV",
    "SigningAlgorithm",
    "SigningCredentials",
    "create_development_credentials",
    "provenance_directory",
]

SigningAlgorithm = Literal["es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519"]
SIGNING_ALGORITHMS: tuple[str, ...] = get_args(SigningAlgorithm)
_E = TypeVar("_E", bound=x509.ExtensionType)

#: Overrides where ``safestack provenance init`` writes (and the gateway finds) the development
#: certificates; by default a ``provenance`` folder in the user's data directory.
PROVENANCE_DIR_ENV = "SAFESTACK_PROVENANCE_DIR"
#: The organisation of every development certificate: what a validator shows as the signer.
DEVELOPMENT_ORGANIZATION = "safestack development (NOT trusted by public validators)"
_CERTIFICATE_FILE = "signer-chain.pem"
_KEY_FILE = "signer-key.pem"
_CA_FILE = "dev-ca.pem"
_CA_KEY_FILE = "dev-ca-key.pem"

#: Extended key usages C2PA (2.x, section 14.5.1) accepts for a claim signer.
_C2PA_EKUS = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ObjectIdentifier("1.3.6.1.5.5.7.3.36"): "documentSigning",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ObjectIdentifier("1.3.6.1.4.1.62558.2.1"): "c2pa-kp-claimSigning",
}

#: A signing callback (an HSM or a cloud KMS): the bytes to sign in, the raw signature out, in
#: the form C2PA wants for the algorithm (r‖s for ECDSA, not DER; PSS for RSA).
SignFunction = Callable[[bytes], bytes]


def provenance_directory() -> Path:
    """``$SAFESTACK_PROVENANCE_DIR``, else ``<user data dir>/safestack/provenance``."""
    configured = os.environ.get(PROVENANCE_DIR_ENV, "").strip()
    if configured:
        return Path(configured)
    return Path(platformdirs.user_data_dir("safestack", appauthor=False)) / "provenance"


@dataclass(frozen=True)
class SigningCredentials:
    """A certificate chain (end-entity first, PEM) and either its private key or a callback.

    Build one with :meth:`from_files` (PEM files) or :meth:`from_callback` (an HSM / KMS that
    never hands out its key); both run :meth:`check`. ``trust_anchors`` are the CA certificates
    this operator trusts when reading manifests back (the development CA, for development
    credentials). ``development`` marks the certificates of :func:`create_development_credentials`.
    """

    chain_pem: bytes
    algorithm: SigningAlgorithm
    private_key_pem: bytes | None = None
    sign_function: SignFunction | None = None
    timestamp_url: str | None = None
    trust_anchors_pem: bytes = b""
    development: bool = False

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_files(
        cls,
        certificate: str | Path,
        private_key: str | Path,
        *,
        timestamp_url: str | None = None,
        trust_anchors: list[str | Path] | None = None,
    ) -> SigningCredentials:
        """Load a PEM chain and its PEM private key (unencrypted), and check them."""
        chain = _read(certificate, "certificate chain")
        key_pem = _read(private_key, "private key")
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise CredentialsError(
                f"{private_key}: not an unencrypted PEM private key ({exc}); an encrypted or "
                "hardware key signs through a callback (provenance.signer)"
            ) from None
        anchors = b"".join(_read(p, "trust anchor") for p in trust_anchors or [])
        credentials = cls(
            chain_pem=chain,
            algorithm=_algorithm_of(key),
            private_key_pem=key_pem,
            timestamp_url=timestamp_url,
            trust_anchors_pem=anchors,
            development=_is_development(chain),
        )
        credentials.check(key)
        return credentials

    @classmethod
    def from_callback(
        cls,
        certificate: str | Path,
        sign_function: SignFunction,
        algorithm: SigningAlgorithm,
        *,
        timestamp_url: str | None = None,
        trust_anchors: list[str | Path] | None = None,
    ) -> SigningCredentials:
        """A chain whose key lives elsewhere: ``sign_function`` signs with it."""
        if algorithm not in SIGNING_ALGORITHMS:
            raise CredentialsError(
                f"unknown signing algorithm {algorithm!r}; one of {', '.join(SIGNING_ALGORITHMS)}"
            )
        anchors = b"".join(_read(p, "trust anchor") for p in trust_anchors or [])
        credentials = cls(
            chain_pem=_read(certificate, "certificate chain"),
            algorithm=algorithm,
            sign_function=sign_function,
            timestamp_url=timestamp_url,
            trust_anchors_pem=anchors,
            development=False,
        )
        credentials.check()
        return credentials

    @classmethod
    def development_default(
        cls,
        directory: Path | None = None,
        *,
        timestamp_url: str | None = None,
        trust_anchors: list[str | Path] | None = None,
    ) -> SigningCredentials:
        """The development credentials in ``directory``, created there first if absent.

        The development CA is a trust anchor of its own credentials, so this operator's tools
        read its manifests as valid while everyone else's read them as untrusted.
        """
        directory = directory or provenance_directory()
        if not (directory / _CERTIFICATE_FILE).exists():
            try:
                create_development_credentials(directory)
            except CredentialsError:
                if not (directory / _CERTIFICATE_FILE).exists():  # else: another process won
                    raise
        return cls.from_files(
            directory / _CERTIFICATE_FILE,
            directory / _KEY_FILE,
            timestamp_url=timestamp_url,
            trust_anchors=[directory / _CA_FILE, *(trust_anchors or [])],
        )

    # -- what the certificate says --------------------------------------------------------------

    @property
    def certificates(self) -> list[x509.Certificate]:
        """The chain, end-entity first."""
        return x509.load_pem_x509_certificates(self.chain_pem)

    @property
    def signer(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the signing certificate (DER), hex: how the registry names the signer."""
        return self.signer.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        return self.signer.subject.rfc4514_string()

    @property
    def not_after(self) -> datetime.datetime:
        return self.signer.not_valid_after_utc

    def describe(self) -> dict[str, object]:
        """What a status command shows: who signs, until when, whether it is development."""
        return {
            "subject": self.subject,
            "issuer": self.signer.issuer.rfc4514_string(),
            "fingerprint_sha256": self.fingerprint,
            "not_after": self.not_after.isoformat(),
            "algorithm": self.algorithm,
            "development": self.development,
            "timestamp_url": self.timestamp_url,
            "signs_with": "callback" if self.sign_function is not None else "private key",
        }

    # -- checks ---------------------------------------------------------------------------------

    def check(
        self, key: PrivateKeyTypes | None = None, *, now: datetime.datetime | None = None
    ) -> None:
        """Raise :class:`CredentialsError` naming the first thing a C2PA validator would refuse."""
        now = now or datetime.datetime.now(datetime.UTC)
        try:
            chain = self.certificates
        except ValueError as exc:
            raise CredentialsError(f"the certificate chain is not PEM: {exc}") from None
        if not chain:
            raise CredentialsError("the certificate chain holds no certificate")
        signer = chain[0]
        name = signer.subject.rfc4514_string()
        for certificate in chain:
            label = certificate.subject.rfc4514_string()
            if certificate.not_valid_after_utc <= now:
                raise CredentialsError(
                    f"certificate {label!r} expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
                )
            if certificate.not_valid_before_utc > now:
                raise CredentialsError(
                    f"certificate {label!r} is not valid before "
                    f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
                )
        basic = _extension(signer, x509.BasicConstraints)
        if basic is not None and basic.ca:
            raise CredentialsError(
                f"{name!r} is a CA certificate; C2PA signs with an end-entity certificate "
                "issued by it (the chain lists the end-entity certificate first)"
            )
        usage = _extension(signer, x509.KeyUsage)
        if usage is None or not usage.digital_signature:
            raise CredentialsError(
                f"{name!r} lacks the digitalSignature key usage that C2PA requires"
            )
        extended = _extension(signer, x509.ExtendedKeyUsage)
        accepted = ", ".join(sorted(_C2PA_EKUS.values()))
        if extended is None:
            raise CredentialsError(
                f"{name!r} has no extended key usage; C2PA requires one of: {accepted}"
            )
        if not any(oid in _C2PA_EKUS for oid in extended):
            found = ", ".join(getattr(o, "_name", o.dotted_string) for o in extended)
            raise CredentialsError(
                f"{name!r} has extended key usage {found}; C2PA requires one of: {accepted}"
            )
        if _extension(signer, x509.AuthorityKeyIdentifier) is None:
            raise CredentialsError(
                f"{name!r} lacks the authorityKeyIdentifier extension that C2PA requires of a "
                "certificate issued by a CA"
            )
        for child, issuer in itertools.pairwise(chain):
            try:
                child.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                raise CredentialsError(
                    f"the chain is out of order or broken: {child.subject.rfc4514_string()!r} "
                    f"is not issued by {issuer.subject.rfc4514_string()!r}"
                ) from None
        if key is not None and _public_bytes(key.public_key()) != _public_bytes(
            signer.public_key()
        ):
            raise CredentialsError(
                f"the private key does not belong to the signing certificate {name!r}"
            )

    def signature_callback(self) -> SignFunction:
        """A function that signs bytes the way C2PA wants them for :attr:`algorithm`."""
        if self.sign_function is not None:
            return self.sign_function
        assert self.private_key_pem is not None
        key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        return _raw_signer(key, self.algorithm)


# -- development certificates ---------------------------------------------------------------------


def create_development_credentials(
    directory: Path, *, days: int = 365, overwrite: bool = False
) -> dict[str, Path]:
    """Write a development CA and a C2PA signing certificate under it into ``directory``.

    Files: ``dev-ca.pem`` / ``dev-ca-key.pem`` (the CA), ``signer-chain.pem`` (signing
    certificate then CA) and ``signer-key.pem``; keys are readable by the owner only. Written
    under a file lock, each file atomically, so two processes starting at once never mix two
    sets. Refuses to replace existing files unless ``overwrite``.
    """
    if days < 1:
        raise CredentialsError(f"days must be at least 1, got {days}")
    paths = {
        "certificate": directory / _CERTIFICATE_FILE,
        "private_key": directory / _KEY_FILE,
        "ca_certificate": directory / _CA_FILE,
        "ca_private_key": directory / _CA_KEY_FILE,
    }
    if paths["certificate"].exists() and not overwrite:
        raise CredentialsError(
            f"development credentials exist already in {directory} (pass overwrite to replace)"
        )
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("safestack development CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name("safestack development signer"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    contents = {
        "certificate": signer.public_bytes(pem) + ca.public_bytes(pem),
        "private_key": _key_pem(key),
        "ca_certificate": ca.public_bytes(pem),
        "ca_private_key": _key_pem(ca_key),
    }
    directory.mkdir(parents=True, exist_ok=True)
    # Two processes starting at once (gateway replicas, parallel tests) must not interleave
    # their files: the set is written under a lock, and the chain (what readers look for) last.
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if paths["certificate"].exists() and not overwrite:
            raise CredentialsError(f"development credentials exist already in {directory}")
        for role in ("ca_certificate", "ca_private_key", "private_key", "certificate"):
            _write_atomically(paths[role], contents[role], private=role.endswith("private_key"))
        (directory / "README.txt").write_text(_README)
    return paths


def _write_atomically(path: Path, data: bytes, *, private: bool) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, 0o600 if private else 0o644)
        os.write(handle, data)
        os.fsync(handle)
    finally:
        os.close(handle)
    os.replace(temporary, path)


_README = """\
These are DEVELOPMENT signing credentials made by `safestack provenance init`.

The CA is self-made: no public C2PA validator trusts it, so images signed with it read as
"untrusted" everywhere except where dev-ca.pem is loaded as a trust anchor. For production, get
a signing certificate from a CA on the C2PA trust list and configure it (provenance.certificate,
provenance.private_key, or provenance.signer for an HSM / KMS). Keep the *-key.pem files secret.
"""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEVELOPMENT_ORGANIZATION),
        ]
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read(path: str | Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CredentialsError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise CredentialsError(f"the {what} {path} is empty")
    return data


def _extension(certificate: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _is_development(chain_pem: bytes) -> bool:
    try:
        first = x509.load_pem_x509_certificates(chain_pem)[0]
    except (ValueError, IndexError):
        return False
    organizations = first.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(o.value == DEVELOPMENT_ORGANIZATION for o in organizations)


def _algorithm_of(key: PrivateKeyTypes) -> SigningAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves: dict[str, SigningAlgorithm] = {
            "secp256r1": "es256",
            "secp384r1": "es384",
            "secp521r1": "es512",
        }
        if key.curve.name not in curves:
            raise CredentialsError(
                f"EC curve {key.curve.name} cannot sign C2PA; use P-256, P-384 or P-521"
            )
        return curves[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise CredentialsError(f"an RSA key of {key.key_size} bits is too short (2048+)")
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise CredentialsError(f"a {type(key).__name__} cannot sign C2PA manifests")


def _raw_signer(key: PrivateKeyTypes, algorithm: SigningAlgorithm) -> SignFunction:
    """Sign as C2PA's COSE expects: ECDSA as fixed-width r‖s, RSA as PSS."""
    digests: dict[str, hashes.HashAlgorithm] = {
        "256": hashes.SHA256(),
        "384": hashes.SHA384(),
        "512": hashes.SHA512(),
    }
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ec_key = key
        ec_digest = digests[algorithm[-3:]]
        width = (ec_key.curve.key_size + 7) // 8

        def sign_ec(data: bytes) -> bytes:
            r, s = decode_dss_signature(ec_key.sign(data, ec.ECDSA(ec_digest)))
            return r.to_bytes(width, "big") + s.to_bytes(width, "big")

        return sign_ec
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_key = key
        rsa_digest = digests[algorithm[-3:]]
        pss = padding.PSS(mgf=padding.MGF1(rsa_digest), salt_length=rsa_digest.digest_size)

        def sign_rsa(data: bytes) -> bytes:
            return rsa_key.sign(data, pss, rsa_digest)

        return sign_rsa
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign
    raise CredentialsError(f"a {type(key).__name__} cannot sign C2PA manifests")
