"""Provenance: C2PA manifests, an invisible watermark, and a registry of every released image.

* :class:`Provenance` — :meth:`~Provenance.stamp` watermarks, signs and registers an image
  before it is released (the gateway does this to every image it lets out); :meth:`~Provenance.
  verify` reads a manifest back; :meth:`~Provenance.lookup` answers "did we make this image?"
  by exact hash, manifest, watermark or perceptual hash.
* :class:`ProvenanceConfig` — the ``provenance:`` section of the gateway's configuration.
* :class:`SigningCredentials` and :func:`create_development_credentials` — signing material,
  checked the way C2PA validators check it; development certificates for trying it out.
* :class:`ManifestSigner` / :func:`read_manifest`, :class:`Watermarker`, :class:`Registry` —
  the parts, usable on their own.

See docs/provenance.md.
"""

from safestack.provenance._config import ProvenanceConfig
from safestack.provenance._credentials import (
    DEVELOPMENT_ORGANIZATION,
    PROVENANCE_DIR_ENV,
    SigningAlgorithm,
    SigningCredentials,
    create_development_credentials,
    provenance_directory,
)
from safestack.provenance._manifest import (
    MEDIA_TYPES,
    REGISTRY_ASSERTION,
    ManifestReport,
    ManifestSigner,
    ManifestState,
    SignedImage,
    embeddable,
    read_manifest,
    sniff_media_type,
)
from safestack.provenance._provenance import (
    LookupEvidence,
    LookupResult,
    Provenance,
    RecordSummary,
    Signal,
    StampedImage,
)
from safestack.provenance._registry import Registry
from safestack.provenance._watermark import (
    MIN_WATERMARK_PIXELS,
    WATERMARK_METHODS,
    Watermarker,
    WatermarkMethod,
)

__all__ = [
    "DEVELOPMENT_ORGANIZATION",
    "MEDIA_TYPES",
    "MIN_WATERMARK_PIXELS",
    "PROVENANCE_DIR_ENV",
    "REGISTRY_ASSERTION",
    "WATERMARK_METHODS",
    "LookupEvidence",
    "LookupResult",
    "ManifestReport",
    "ManifestSigner",
    "ManifestState",
    "Provenance",
    "ProvenanceConfig",
    "RecordSummary",
    "Registry",
    "Signal",
    "SignedImage",
    "SigningAlgorithm",
    "SigningCredentials",
    "StampedImage",
    "WatermarkMethod",
    "Watermarker",
    "create_development_credentials",
    "embeddable",
    "provenance_directory",
    "read_manifest",
    "sniff_media_type",
]
