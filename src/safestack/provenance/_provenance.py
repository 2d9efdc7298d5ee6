"""Provenance for every released image: watermark, C2PA manifest, registry record; and lookups.

:meth:`Provenance.stamp` is what the gateway does to each image it lets out, in this order:

1. the pixels get an invisible watermark carrying a fresh random payload (images of at least
   256×256 pixels, single-frame), re-encoded in the image's own format (PNG and WebP losslessly,
   JPEG at quality 95), and the payload is read back before it is trusted;
2. a C2PA manifest naming the registry record is signed into the file (or, for formats C2PA
   cannot embed into, returned as a sidecar);
3. the record (SHA-256 and PDQ of the final bytes, payload, manifest label) goes into the
   registry. If any step fails, :class:`~safestack.errors.ProvenanceError` or a store error is
   raised and the caller must not release the image: nothing leaves unregistered.

:meth:`Provenance.lookup` answers "did we make this image?" from the strongest signal that
survives what happened to the image: the exact bytes (SHA-256), our manifest (metadata kept),
the watermark (metadata stripped, re-encoded; cropped too with ``rivaGan``), the PDQ hash
(re-encoded, resized, rotated or mirrored: all eight rotations and flips are tried; PDQ hashes
the whole picture, so it tolerates a crop of a few per cent at most). BENCHMARKS.md has the rates.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, Field

from safestack.errors import ImageError, ProvenanceError
from safestack.hashing import PDQ_MIN_QUALITY, pdq_dihedral_of, pdq_of
from safestack.media import DecodedImage, ImageLimits, decode_image
from safestack.provenance._config import ProvenanceConfig
from safestack.provenance._manifest import (
    MEDIA_TYPES,
    ManifestReport,
    ManifestSigner,
    read_manifest,
    sniff_media_type,
)
from safestack.provenance._registry import Registry
from safestack.provenance._watermark import Watermarker
from safestack.store import NewProvenanceRecord, ProvenanceRecord, Store

__all__ = [
    "LookupEvidence",
    "LookupResult",
    "Provenance",
    "RecordSummary",
    "Signal",
    "StampedImage",
]

Signal = Literal["sha256", "manifest", "watermark", "pdq"]
_LIMITS = ImageLimits(formats=frozenset(MEDIA_TYPES))
#: A manifest of ours that no longer matches the pixels still says where the image came from,
#: but also that it was changed after we released it.
_MANIFEST_CONFIDENCE = {"valid": 0.99, "untrusted": 0.99, "invalid": 0.7}


@dataclass(frozen=True)
class StampedImage:
    """A released image: its final bytes, its registry record and, if not embedded, its manifest."""

    data: bytes
    record: ProvenanceRecord
    sidecar_manifest: bytes | None


class RecordSummary(BaseModel):
    """What a lookup reveals of a record: never the prompt, never its hash."""

    id: str
    created_at: datetime
    model: str | None
    action: str
    account_id: str | None
    request_id: str | None
    media_type: str
    width: int
    height: int


class LookupEvidence(BaseModel):
    """One signal checked by a lookup, whether it matched, and how strongly."""

    signal: Signal
    matched: bool
    record_id: str | None = None
    confidence: float = 0.0
    distance: int | None = Field(
        default=None, description="Bits that differ (watermark payload, PDQ hash)."
    )
    detail: str


class LookupResult(BaseModel):
    """``safestack provenance lookup --json`` and ``POST /v1/provenance/lookup``."""

    made_by_us: bool
    signal: Signal | None = Field(description="The strongest signal that matched, or null.")
    record_id: str | None
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[LookupEvidence]
    record: RecordSummary | None = None
    manifest: ManifestReport


class Provenance:
    """Stamps released images and answers lookups; one per process, shared by its threads.

    Build it with :meth:`from_config` (loads and checks the signing material: a bad certificate
    fails here, at start-up) or from its parts.
    """

    def __init__(
        self,
        registry: Registry,
        signer: ManifestSigner,
        watermarker: Watermarker | None,
        *,
        store_prompts: bool = False,
    ) -> None:
        self.registry = registry
        self.signer = signer
        self.watermarker = watermarker
        self.store_prompts = store_prompts
        self._readers: dict[str, Watermarker] = {}
        if watermarker is not None:
            self._readers[watermarker.method] = watermarker

    @classmethod
    def from_config(
        cls, config: ProvenanceConfig, store: Store, *, generator_version: str = ""
    ) -> Provenance:
        from safestack import __version__

        signer = ManifestSigner(
            config.credentials(),
            generator_version=generator_version or __version__,
            thumbnail=config.thumbnail,
        )
        watermarker = (
            None
            if config.watermark == "none"
            else Watermarker(config.watermark, max_bit_errors=config.watermark_max_bit_errors)
        )
        registry = Registry(store, pdq_max_distance=config.pdq_max_distance)
        return cls(registry, signer, watermarker, store_prompts=config.store_prompts)

    def __repr__(self) -> str:
        return f"Provenance(signer={self.signer!r}, watermark={self.watermarker!r})"

    # -- stamping ---------------------------------------------------------------------------------

    def stamp(
        self,
        data: bytes,
        *,
        model: str | None = None,
        prompt: str | None = None,
        account_id: str | None = None,
        request_id: str | None = None,
        parent: bytes | None = None,
    ) -> StampedImage:
        """Watermark, sign and register ``data``; ``parent`` is the uploaded image of an edit."""
        decoded = decode_image(data, _LIMITS)
        media_type = MEDIA_TYPES[decoded.format]
        record_id = f"img_{uuid.uuid4().hex}"
        marked, method, payload = self._watermark(decoded)
        # Signing adds metadata and leaves the pixels alone: these are the released pixels.
        parent_type = None
        if parent is not None:
            parent_type = sniff_media_type(parent)
            if parent_type is None:
                raise ProvenanceError("the uploaded image of an edit is in an unknown format")
        signed = self.signer.sign(
            marked.data,
            media_type,
            record_id=record_id,
            model=model,
            parent=parent,
            parent_type=parent_type,
        )
        pdq, quality = pdq_of(marked.frames[0])
        record = NewProvenanceRecord(
            id=record_id,
            account_id=account_id,
            request_id=request_id,
            model=model,
            action="edited" if parent is not None else "created",
            prompt_sha256=None if prompt is None else _sha256(prompt.encode("utf-8")),
            prompt=prompt if self.store_prompts else None,
            media_type=media_type,
            width=marked.size[0],
            height=marked.size[1],
            sha256=_sha256(signed.data),
            pdq=pdq,
            pdq_quality=quality,
            watermark_method=method,
            watermark_payload=None if payload is None else f"{payload:x}",
            manifest_label=signed.label,
            manifest_sha256=signed.manifest_sha256,
            manifest_embedded=signed.embedded,
            sidecar_manifest=None if signed.embedded else signed.manifest,
            signer_fingerprint=self.signer.credentials.fingerprint,
        )
        stored = self.registry.register(record)
        return StampedImage(signed.data, stored, None if signed.embedded else signed.manifest)

    def _watermark(self, decoded: DecodedImage) -> tuple[DecodedImage, str | None, int | None]:
        """The watermarked image (decoded), method and payload; the input if none fits."""
        marker = self.watermarker
        if marker is None or decoded.animated or decoded.format == "GIF":
            return decoded, None, None  # GIF's palette would quantise the mark away
        with Image.open(io.BytesIO(decoded.data)) as opened:
            original = ImageOps.exif_transpose(opened)
        if not marker.fits(*original.size):
            return decoded, None, None
        alpha = original.getchannel("A") if "A" in original.getbands() else None
        payload = marker.new_payload()
        pixels = marker.embed(np.asarray(original.convert("RGB")), payload)
        result = Image.fromarray(pixels)
        if alpha is not None:
            result.putalpha(alpha)
        marked = decode_image(_encode(result, decoded.format), _LIMITS)
        read_back = marker.extract(np.asarray(marked.frames[0]))
        if read_back is None or (read_back ^ payload).bit_count() > marker.max_bit_errors:
            # The mark did not take (near-flat images carry too little texture): register the
            # image by its other signals rather than claim a watermark that is not there.
            return decoded, None, None
        return marked, marker.method, payload

    # -- reading ----------------------------------------------------------------------------------

    def verify(self, data: bytes, *, sidecar: bytes | None = None) -> ManifestReport:
        """The C2PA manifest of ``data`` checked against this operator's trust anchors."""
        return read_manifest(
            data,
            None,
            sidecar=sidecar,
            trust_anchors_pem=self.signer.credentials.trust_anchors_pem,
        )

    def lookup(self, data: bytes, *, sidecar: bytes | None = None) -> LookupResult:
        """Did we make this image? Every signal is checked; the strongest match answers.

        Raises :class:`~safestack.errors.ImageError` for what is no image at all, and for what
        the decoder refuses before decoding (decompression bombs, endless animations). A
        damaged image of a known format is answered from its bytes and its manifest.
        """
        try:
            frame: Image.Image | None = decode_image(data, _LIMITS).frames[0]
            undecodable = ""
        except ImageError as exc:
            if exc.code != "image_unreadable":
                raise
            frame, undecodable = None, str(exc)
        self.registry.refresh()
        evidence: list[LookupEvidence] = []
        records: dict[str, ProvenanceRecord] = {}

        exact = self.registry.by_sha256(_sha256(data))
        if exact is not None:
            records[exact.id] = exact
            evidence.append(
                LookupEvidence(
                    signal="sha256",
                    matched=True,
                    record_id=exact.id,
                    confidence=1.0,
                    detail="the bytes are exactly those released",
                )
            )
        else:
            evidence.append(
                LookupEvidence(signal="sha256", matched=False, detail="no release has these bytes")
            )

        manifest = self.verify(data, sidecar=sidecar)
        evidence.append(self._manifest_evidence(manifest, records))

        if frame is None:
            # A damaged file can still carry our bytes' hash or our manifest: report those.
            for signal in ("watermark", "pdq"):
                evidence.append(
                    LookupEvidence(
                        signal=signal,
                        matched=False,
                        detail=f"the pixels cannot be decoded: {undecodable}",
                    )
                )
        else:
            evidence.extend(self._watermark_evidence(np.asarray(frame), records))
            evidence.append(self._pdq_evidence(frame, records))

        matched = [e for e in evidence if e.matched]
        best = max(matched, key=lambda e: e.confidence, default=None)
        record = None if best is None or best.record_id is None else records[best.record_id]
        return LookupResult(
            made_by_us=best is not None,
            signal=None if best is None else best.signal,
            record_id=None if best is None else best.record_id,
            confidence=0.0 if best is None else best.confidence,
            evidence=evidence,
            record=None
            if record is None
            else RecordSummary.model_validate(record, from_attributes=True),
            manifest=manifest,
        )

    def _manifest_evidence(
        self, manifest: ManifestReport, records: dict[str, ProvenanceRecord]
    ) -> LookupEvidence:
        if manifest.state == "none":
            return LookupEvidence(signal="manifest", matched=False, detail=manifest.explanation)
        if manifest.label is None or manifest.record_id is None:
            return LookupEvidence(
                signal="manifest",
                matched=False,
                detail=f"a {manifest.state} manifest that names no safestack record",
            )
        record = self.registry.by_manifest_label(manifest.label)
        if record is None or record.id != manifest.record_id:
            return LookupEvidence(
                signal="manifest",
                matched=False,
                detail=f"manifest {manifest.label} names record {manifest.record_id}, which this "
                "registry did not issue",
            )
        records[record.id] = record
        changed = " (the image changed after release)" if manifest.state == "invalid" else ""
        return LookupEvidence(
            signal="manifest",
            matched=True,
            record_id=record.id,
            confidence=_MANIFEST_CONFIDENCE[manifest.state],
            detail=f"our {manifest.state} manifest {manifest.label}{changed}",
        )

    def _watermark_evidence(
        self, pixels: np.ndarray, records: dict[str, ProvenanceRecord]
    ) -> list[LookupEvidence]:
        """One entry per watermark method the registry holds payloads of (usually one)."""
        methods = self.registry.watermark_methods() or (
            [self.watermarker.method] if self.watermarker else []
        )
        return [self._watermark_match(method, pixels, records) for method in methods]

    def _watermark_match(
        self, method: str, pixels: np.ndarray, records: dict[str, ProvenanceRecord]
    ) -> LookupEvidence:
        def miss(detail: str, distance: int | None = None) -> LookupEvidence:
            return LookupEvidence(
                signal="watermark", matched=False, distance=distance, detail=detail
            )

        reader = self._reader(method)
        if reader is None:
            return miss(f"{method} watermarks cannot be read here (package missing)")
        payload = reader.extract(pixels)
        if payload is None:
            return miss("the image is too small to carry a watermark")
        hit = self.registry.nearest_watermark(method, payload)
        if hit is None:
            return miss(f"no {method} payload is registered")
        seq, distance = hit
        if distance > reader.max_bit_errors:
            return miss(
                f"no registered {method} payload within {reader.max_bit_errors} bits "
                f"(the nearest differs in {distance})",
                distance,
            )
        record = self.registry.by_seq(seq)
        if record is None:
            return miss("the matching record is gone")
        records[record.id] = record
        population = self.registry.watermark_population(method)
        chance = reader.chance_matches(distance, population)
        return LookupEvidence(
            signal="watermark",
            matched=True,
            record_id=record.id,
            confidence=round(min(0.999, max(0.0, 1.0 - chance)), 6),
            distance=distance,
            detail=f"{method} payload read with {distance} of {reader.bits} bits flipped; "
            f"chance matches among {population:,} payloads: {chance:.2g}",
        )

    def _reader(self, method: str) -> Watermarker | None:
        if method not in self._readers:
            try:
                self._readers[method] = Watermarker(method)  # type: ignore[arg-type]
            except Exception:  # a method this process cannot load: say so in the evidence
                return None
        return self._readers[method]

    def _pdq_evidence(
        self, frame: Image.Image, records: dict[str, ProvenanceRecord]
    ) -> LookupEvidence:
        hashes, quality = pdq_dihedral_of(frame)
        if quality < PDQ_MIN_QUALITY:
            return LookupEvidence(
                signal="pdq",
                matched=False,
                detail=f"PDQ quality {quality} is below {PDQ_MIN_QUALITY}: too flat to compare",
            )
        hit = self.registry.nearest_pdq(hashes)
        radius = self.registry.pdq_max_distance
        if hit is None:
            return LookupEvidence(
                signal="pdq", matched=False, detail=f"no release within PDQ distance {radius}"
            )
        seq, distance = hit
        record = self.registry.by_seq(seq)
        if record is None:
            return LookupEvidence(signal="pdq", matched=False, detail="the record is gone")
        records[record.id] = record
        return LookupEvidence(
            signal="pdq",
            matched=True,
            record_id=record.id,
            confidence=round(min(0.99, 1.0 - 0.5 * distance / (radius + 1)), 4),
            distance=distance,
            detail=f"perceptually the same image: PDQ distance {distance} of 256 bits "
            f"(match radius {radius})",
        )


def _encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    if image_format == "JPEG":
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    elif image_format == "WEBP":
        image.save(buffer, format="WEBP", lossless=True)
    else:
        image.save(buffer, format=image_format)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
