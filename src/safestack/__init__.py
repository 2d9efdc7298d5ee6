"""safestack: the safety process of a frontier-lab system card, as open software.

The concepts, one sub-package each (see DESIGN.md): :mod:`safestack.policy` (the written policy),
:mod:`safestack.classify` (detectors and their verdicts), :mod:`safestack.stack` (the layers
around a model), :mod:`safestack.evals`, :mod:`safestack.gateway` (the OpenAI-compatible service)
with :mod:`safestack.store` (its database), :mod:`safestack.provenance` (C2PA manifests,
watermarks, the registry of released images), and :mod:`safestack.cli` (the command line).
"""

from safestack.errors import (
    ArtifactError,
    ClassifierError,
    ConfigError,
    CredentialsError,
    DataError,
    InputError,
    ModelError,
    ModelTimeoutError,
    NoRecordingError,
    PolicyError,
    ProvenanceError,
    RecordConflictError,
    RecordNotFoundError,
    RemoteError,
    SafestackError,
    StoreError,
    StoreUnavailableError,
    UnknownComponentError,
)

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "ClassifierError",
    "ConfigError",
    "CredentialsError",
    "DataError",
    "InputError",
    "ModelError",
    "ModelTimeoutError",
    "NoRecordingError",
    "PolicyError",
    "ProvenanceError",
    "RecordConflictError",
    "RecordNotFoundError",
    "RemoteError",
    "SafestackError",
    "StoreError",
    "StoreUnavailableError",
    "UnknownComponentError",
    "__version__",
]
