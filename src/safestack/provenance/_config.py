"""How provenance is configured: the ``provenance:`` section of the gateway's YAML file.

Every field has a default, so provenance works with no configuration: images are signed with the
development credentials in the data directory (created on first use, labelled as untrusted by
public validators: run ``safestack provenance init`` to see where) and watermarked with
``dwtDctSvd``. A production deployment names its own certificate chain and key, or a signing
callback for a key held in an HSM or a cloud KMS.
"""

from __future__ import annotations

import importlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from safestack.errors import CredentialsError
from safestack.provenance._credentials import (
    SignFunction,
    SigningAlgorithm,
    SigningCredentials,
)

__all__ = ["ProvenanceConfig"]


class ProvenanceConfig(BaseModel):
    """Signing material, watermark and registry options."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True,
        description="Sign, watermark and register every image the gateway releases. Off: images "
        "go out as the model made them (documented as a deliberate choice, not a default).",
    )
    certificate: str | None = Field(
        default=None,
        description="PEM certificate chain, signing certificate first. Default: the development "
        "chain in the provenance directory (created if missing).",
    )
    private_key: str | None = Field(default=None, description="Its PEM private key (unencrypted).")
    signer: str | None = Field(
        default=None,
        description="'package.module:function' that signs bytes with a key held elsewhere (HSM, "
        "KMS) and returns the raw signature; replaces private_key; needs algorithm.",
    )
    algorithm: SigningAlgorithm | None = Field(
        default=None, description="With signer: es256, es384, es512, ps256, ps384, ps512, ed25519."
    )
    timestamp_url: str | None = Field(
        default=None,
        description="An RFC 3161 timestamp authority, so signatures stay valid after the "
        "certificate expires. It is called for every image and once at start-up (the signing "
        "self-test), so an unreachable authority stops the gateway from starting. Default: "
        "none (no network call when signing).",
    )
    trust_anchors: list[str] = Field(
        default_factory=list,
        description="PEM CA certificates trusted when reading manifests back (verify, lookup). "
        "Default with development credentials: the development CA.",
    )
    watermark: Literal["dwtDctSvd", "rivaGan", "none"] = Field(
        default="dwtDctSvd", description="Invisible watermark method, or none."
    )
    watermark_max_bit_errors: int | None = Field(
        default=None,
        ge=0,
        description="Flipped payload bits still accepted as a match (default 8 of 64 for "
        "dwtDctSvd, 3 of 32 for rivaGan).",
    )
    pdq_max_distance: int = Field(
        default=31, ge=0, le=64, description="PDQ radius of a perceptual match (of 256 bits)."
    )
    store_prompts: bool = Field(
        default=False,
        description="Keep the prompt text in the registry; by default only its SHA-256.",
    )
    thumbnail: bool = Field(
        default=False, description="Embed a thumbnail in each manifest (~30 KB per image)."
    )

    @field_validator("timestamp_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"timestamp_url must be an http(s) URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _material(self) -> ProvenanceConfig:
        if self.private_key and self.signer:
            raise ValueError("give private_key or signer, not both")
        if (self.private_key or self.signer) and not self.certificate:
            raise ValueError("private_key and signer need the certificate chain (certificate)")
        if self.certificate and not (self.private_key or self.signer):
            raise ValueError("certificate needs private_key, or signer with algorithm")
        if self.signer and not self.algorithm:
            raise ValueError("signer needs algorithm (e.g. es256)")
        return self

    def credentials(self) -> SigningCredentials:
        """Load and check the signing material (raises :class:`CredentialsError`)."""
        if self.certificate is None:
            return SigningCredentials.development_default(
                timestamp_url=self.timestamp_url, trust_anchors=list(self.trust_anchors)
            )
        if self.signer is not None:
            assert self.algorithm is not None
            return SigningCredentials.from_callback(
                self.certificate,
                _import_signer(self.signer),
                self.algorithm,
                timestamp_url=self.timestamp_url,
                trust_anchors=list(self.trust_anchors),
            )
        assert self.private_key is not None
        return SigningCredentials.from_files(
            self.certificate,
            self.private_key,
            timestamp_url=self.timestamp_url,
            trust_anchors=list(self.trust_anchors),
        )


def _import_signer(spec: str) -> SignFunction:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CredentialsError(f"signer must look like 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise CredentialsError(f"cannot load the signer {spec!r}: {exc}") from None
    if not callable(function):
        raise CredentialsError(f"the signer {spec!r} is not callable")
    return function  # type: ignore[no-any-return]
