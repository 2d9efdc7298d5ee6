"""C2PA manifests through ``c2pa-python`` (the official bindings of the C2PA Rust SDK).

:class:`ManifestSigner` signs an image: a ``c2pa.created`` action with digital source type
``trainedAlgorithmicMedia`` for a generation; for an edit, ``c2pa.opened`` on the uploaded image
(a ``parentOf`` ingredient, which carries the upload's own manifest when it has one) followed by
``c2pa.edited`` with ``compositeWithTrainedAlgorithmicMedia``. A safestack assertion
(``org.safestack.registry``) names the registry record, so a manifest found later leads back to
the record. Formats the SDK cannot embed into (BMP, for one) get a *sidecar* manifest: the image
is left as it is and the manifest store is returned separately, to be published beside it
(``IMAGE.c2pa``), as the C2PA specification describes for external manifests.

:func:`read_manifest` reads one back and says, in four words, what a consumer should conclude:
``valid`` (signature and content hashes check, and the signer chains to a trust anchor),
``untrusted`` (they check, but the signer is not one this reader trusts), ``invalid`` (a hash or
the signature fails: the image or the manifest was changed), ``none`` (no manifest).
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from typing import Any, Literal

import c2pa
from PIL import Image
from pydantic import BaseModel, Field

from safestack.errors import CredentialsError, ImageError, ProvenanceError
from safestack.provenance._credentials import SigningCredentials

__all__ = [
    "MEDIA_TYPES",
    "REGISTRY_ASSERTION",
    "ManifestReport",
    "ManifestSigner",
    "ManifestState",
    "SignedImage",
    "embeddable",
    "read_manifest",
    "sniff_media_type",
]

#: The label of safestack's own assertion (reverse-DNS, as C2PA asks of custom assertions).
REGISTRY_ASSERTION = "org.safestack.registry"
_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
_UNTRUSTED = "signingCredential.untrusted"
_PARENT_LABEL = "parent"

ManifestState = Literal["valid", "invalid", "untrusted", "none"]
#: Pillow format → media type, for every format provenance accepts. BMP and TIFF are accepted
#: here (not by the safety checks' decoder) so that ``provenance sign`` covers the sidecar case.
MEDIA_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}

_STATE_WORDS: dict[str, str] = {
    "valid": "signed, unchanged since signing, by a signer this reader trusts",
    "untrusted": "signed and unchanged since signing, but the signer is not a trusted one",
    "invalid": "a manifest is present but does not check: the image or the manifest was changed",
    "none": "no C2PA manifest (never signed, or its metadata was stripped)",
}


def embeddable(media_type: str) -> bool:
    """Whether the SDK can embed a manifest into this format (else: a sidecar manifest)."""
    return media_type in _supported_types()


_SUPPORTED: list[frozenset[str]] = []


def _supported_types() -> frozenset[str]:
    if not _SUPPORTED:
        _SUPPORTED.append(frozenset(c2pa.Builder.get_supported_mime_types()))
    return _SUPPORTED[0]


@dataclass(frozen=True)
class SignedImage:
    """The signed bytes, the manifest store, and where the manifest lives."""

    data: bytes
    manifest: bytes
    label: str
    embedded: bool

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(self.manifest).hexdigest()


class ManifestSigner:
    """Signs images with C2PA manifests; built once, at start-up, from checked credentials.

    Construction signs a small test image and reads it back, so anything the SDK refuses (a key
    it cannot use, a chain it cannot parse) fails here with :class:`CredentialsError`, not at
    the first request. Thread-safe: every signature uses its own builder and signer.
    """

    def __init__(
        self,
        credentials: SigningCredentials,
        *,
        generator: str = "safestack",
        generator_version: str = "",
        thumbnail: bool = False,
    ) -> None:
        self.credentials = credentials
        self.generator = generator
        self.generator_version = generator_version
        # No thumbnail by default: it would copy a preview of every image (and of every upload,
        # as an ingredient) into the manifest, ~30 KB each, which nobody asked to publish.
        self._context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": thumbnail}}})
        self._lock = threading.Lock()
        try:
            self._self_test()
        except ProvenanceError as exc:
            raise CredentialsError(f"the signing credentials cannot sign C2PA: {exc}") from None

    def __repr__(self) -> str:
        return f"ManifestSigner(signer={self.credentials.subject!r})"

    def _signer(self) -> c2pa.Signer:
        credentials = self.credentials
        algorithm = c2pa.C2paSigningAlg[credentials.algorithm.upper()]
        if credentials.private_key_pem is not None:
            info = c2pa.C2paSignerInfo(
                algorithm,
                credentials.chain_pem,
                credentials.private_key_pem,
                credentials.timestamp_url,
            )
            return c2pa.Signer.from_info(info)
        return c2pa.Signer.from_callback(
            credentials.signature_callback(),
            algorithm,
            credentials.chain_pem.decode("ascii"),
            credentials.timestamp_url,
        )

    def _self_test(self) -> None:
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 120, 40)).save(buffer, format="PNG")
        signed = self.sign(buffer.getvalue(), "image/png", record_id="self-test", model=None)
        report = read_manifest(signed.data, "image/png")
        if report.state == "invalid" or report.state == "none":
            raise ProvenanceError(f"a test signature reads back as {report.state}")

    def sign(
        self,
        data: bytes,
        media_type: str,
        *,
        record_id: str,
        model: str | None,
        parent: bytes | None = None,
        parent_type: str | None = None,
        title: str | None = None,
    ) -> SignedImage:
        """Sign ``data``: a creation, or an edit of ``parent`` when given."""
        manifest = self._definition(record_id=record_id, model=model, edit=parent is not None)
        if title:
            manifest["title"] = title
        embedded = embeddable(media_type)
        try:
            builder = c2pa.Builder.from_json(manifest, self._context)
            if not embedded:
                builder.set_no_embed()
            if parent is not None:
                ingredient = {"title": "upload", "relationship": "parentOf", "label": _PARENT_LABEL}
                builder.add_ingredient(ingredient, parent_type or "image/png", io.BytesIO(parent))
            output = io.BytesIO()
            manifest_bytes = builder.sign(self._signer(), media_type, io.BytesIO(data), output)
        except c2pa.C2paError as exc:
            raise ProvenanceError(f"C2PA signing failed: {exc}") from None
        signed = output.getvalue() if embedded else data
        report = read_manifest(signed, media_type, sidecar=None if embedded else manifest_bytes)
        if report.label is None:
            raise ProvenanceError("the signed image has no readable manifest")
        return SignedImage(signed, manifest_bytes, report.label, embedded)

    def _definition(self, *, record_id: str, model: str | None, edit: bool) -> dict[str, Any]:
        agent = {"name": self.generator, "version": self.generator_version or "unknown"}
        parameters = {"model": model} if model else {}
        if edit:
            actions: list[dict[str, Any]] = [
                {"action": "c2pa.opened", "parameters": {"ingredientIds": [_PARENT_LABEL]}},
                {
                    "action": "c2pa.edited",
                    "digitalSourceType": _COMPOSITE,
                    "softwareAgent": agent,
                    **({"parameters": parameters} if parameters else {}),
                },
            ]
        else:
            actions = [
                {
                    "action": "c2pa.created",
                    "digitalSourceType": _TRAINED,
                    "softwareAgent": agent,
                    **({"parameters": parameters} if parameters else {}),
                }
            ]
        return {
            "claim_generator_info": [agent],
            "assertions": [
                {"label": "c2pa.actions", "data": {"actions": actions}},
                {"label": REGISTRY_ASSERTION, "data": {"record_id": record_id}},
            ],
        }


class ManifestReport(BaseModel):
    """What :func:`read_manifest` found (the JSON of ``safestack provenance verify``)."""

    state: ManifestState
    explanation: str = Field(description="The state in words.")
    embedded: bool | None = Field(
        default=None, description="True: inside the image; False: a sidecar; None: no manifest."
    )
    label: str | None = Field(default=None, description="The active manifest's URN.")
    generator: str | None = None
    actions: list[str] = Field(default_factory=list)
    digital_source_type: str | None = None
    signer: dict[str, str] = Field(
        default_factory=dict, description="Issuer and common name of the signing certificate."
    )
    record_id: str | None = Field(
        default=None, description="The safestack registry record the manifest names, if any."
    )
    ingredients: int = 0
    failures: list[str] = Field(
        default_factory=list,
        description="C2PA validation failure codes, e.g. assertion.dataHash.mismatch.",
    )
    error: str | None = Field(default=None, description="Why the manifest could not be read.")


def read_manifest(
    data: bytes,
    media_type: str | None = None,
    *,
    sidecar: bytes | None = None,
    trust_anchors_pem: bytes = b"",
) -> ManifestReport:
    """Read and validate the manifest of ``data`` (or its ``sidecar``) against the anchors.

    ``media_type`` is detected from the bytes when not given; bytes that are no image raise
    :class:`~safestack.errors.ImageError` (a file that is not an image has no state to report).
    """
    media_type = media_type or _detect(data)
    settings: dict[str, Any] = {"verify": {"verify_trust": True}}
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem.decode("ascii", "replace")}
    try:
        context = c2pa.Context.from_dict(settings)
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"the trust anchors cannot be loaded: {exc}") from None
    if sidecar is None and not embeddable(media_type):
        return ManifestReport(
            state="none",
            explanation=f"{media_type} cannot carry an embedded manifest, and no sidecar "
            "manifest (.c2pa) was given",
        )
    try:
        reader = c2pa.Reader.try_create(media_type, io.BytesIO(data), sidecar, context)
    except c2pa.C2paError as exc:
        return ManifestReport(
            state="invalid",
            explanation="a C2PA manifest is present but cannot be read (corrupted)",
            embedded=sidecar is None,
            error=str(exc).strip()[:500],
        )
    if reader is None:
        return ManifestReport(state="none", explanation=_STATE_WORDS["none"])
    with reader:
        validation = reader.get_validation_state() or ""
        results = reader.get_validation_results() or {}
        active = reader.get_active_manifest() or {}
    failures = [f.get("code", "") for f in results.get("activeManifest", {}).get("failure", [])]
    if validation == "Trusted":
        state: ManifestState = "valid"
    elif validation == "Valid":
        state = "untrusted" if _UNTRUSTED in failures else "valid"
    else:
        state = "invalid"
        if set(failures) <= {_UNTRUSTED} and failures:
            state = "untrusted"
    return _report(state, active, failures, embedded=sidecar is None)


def sniff_media_type(data: bytes) -> str | None:
    """The media type from the file's magic bytes (not a decode: a damaged file still has one)."""
    signatures = (
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
    )
    for signature, media_type in signatures:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _detect(data: bytes) -> str:
    found = sniff_media_type(data)
    if found is None:
        raise ImageError(
            f"not a readable image (provenance reads {', '.join(MEDIA_TYPES)})",
            code="image_unsupported",
        )
    return found


def _report(
    state: ManifestState, active: dict[str, Any], failures: list[str], *, embedded: bool
) -> ManifestReport:
    actions: list[str] = []
    source: str | None = None
    record_id: str | None = None
    for assertion in active.get("assertions", []):
        label = str(assertion.get("label", ""))
        body = assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            for action in body.get("actions", []):
                actions.append(str(action.get("action")))
                source = action.get("digitalSourceType") or source
        elif label == REGISTRY_ASSERTION:
            value = body.get("record_id")
            record_id = str(value) if value is not None else None
    generators = active.get("claim_generator_info") or [{}]
    signature = active.get("signature_info") or {}
    return ManifestReport(
        state=state,
        explanation=_STATE_WORDS[state],
        embedded=embedded,
        label=active.get("label"),
        generator=" ".join(
            str(generators[0].get(k)) for k in ("name", "version") if generators[0].get(k)
        )
        or None,
        actions=actions,
        digital_source_type=source,
        signer={
            key: str(signature[key])
            for key in ("issuer", "common_name", "alg")
            if signature.get(key) is not None
        },
        record_id=record_id,
        ingredients=len(active.get("ingredients", [])),
        failures=[f for f in failures if f],
    )
