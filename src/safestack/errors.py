"""The exceptions safestack raises.

Every error is a :class:`SafestackError`, so a caller can catch one class at the boundary. Errors
from third-party libraries are translated where they cross into safestack (``raise … from exc``),
so the original stays on ``__cause__`` for debugging but callers never depend on it.

The tree::

    SafestackError
    ├── ConfigError            a configuration file (e.g. a stack file) is missing or invalid
    │   ├── PolicyError        a policy file is missing, malformed or inconsistent
    │   └── CredentialsError   signing material (certificate chain, key) cannot sign C2PA
    ├── InputError             content handed to safestack is not usable (wrong type, bad encoding)
    │   └── ImageError         an image cannot be decoded safely (broken, unsupported, a bomb)
    │       └── ImageTooLargeError  the image's bytes exceed the size limit (413)
    ├── DataError              a training / evaluation data set is missing or malformed
    ├── UnknownComponentError  a registry name does not exist
    ├── ClassifierError        a classifier could not produce a verdict
    │   ├── ArtifactError      a trained artefact is missing, corrupted, or fails its hash check
    │   └── RemoteError        a remote endpoint failed, timed out, or answered out of contract
    ├── ProvenanceError        an image could not be signed, watermarked or read back
    ├── ModelError             the wrapped model gave no usable answer
    │   ├── ModelTimeoutError  the model did not answer within its time budget
    │   └── NoRecordingError   the recorded-responses model has no completion for this prompt
    └── StoreError             the store (the database behind accounts, keys, audit) failed
        ├── StoreUnavailableError  the database is unreachable, the connection dropped, or it
        │                          stayed locked past the busy timeout (try again later: 503)
        ├── RecordNotFoundError    an id given to the store does not exist (404)
        └── RecordConflictError    the record exists already (409)

Messages name the offending value and, where there is a finite set, the allowed ones.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ArtifactError",
    "ClassifierError",
    "ConfigError",
    "CredentialsError",
    "DataError",
    "ImageError",
    "ImageTooLargeError",
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
]


class SafestackError(Exception):
    """Root of every error safestack raises on purpose."""


class ConfigError(SafestackError):
    """A configuration file is missing, is not YAML, or does not validate.

    ``path`` and ``line`` (1-based) point at the offending spot when they are known, so the CLI
    can print ``file:line: reason`` the way compilers do.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None, line: int | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        where = self.path or self.default_source
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {reason}")

    default_source = "<config>"


class PolicyError(ConfigError):
    """A policy file is missing, is not YAML, or does not validate."""

    default_source = "<policy>"


class CredentialsError(ConfigError):
    """Signing material cannot sign C2PA manifests: expired, wrong key usage, key and certificate
    that do not belong together, unreadable files.

    Raised when the signer is built (at start-up), never at the first image: a gateway that
    cannot sign must not start, because it could not release a single image.
    """

    default_source = "<signing credentials>"


class InputError(SafestackError):
    """Content given to a classifier or command cannot be used as it is."""


class ImageError(InputError):
    """An image cannot be decoded safely: broken, truncated, unsupported, or a decompression bomb.

    ``code`` is a stable machine-readable reason (``image_unreadable``, ``image_unsupported``,
    ``image_too_many_pixels``, ``image_too_many_frames``, ``image_too_large``) that the gateway
    returns in its error body. An image that cannot be decoded is never passed on: every check
    that needs pixels (classifiers, perceptual hashes) would otherwise be skipped.
    """

    def __init__(self, message: str, *, code: str = "image_unreadable") -> None:
        super().__init__(message)
        self.code = code


class ImageTooLargeError(ImageError):
    """The image's encoded size exceeds the configured limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="image_too_large")


class DataError(SafestackError):
    """A data set needed for training or evaluation is missing or malformed."""


class UnknownComponentError(SafestackError, KeyError):
    """A registry lookup used a name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0]) if self.args else ""


class ClassifierError(SafestackError):
    """A classifier could not produce a verdict for the content it was given."""


class ArtifactError(ClassifierError):
    """A trained artefact (a head file) is missing, unreadable, or fails its hash check."""


class RemoteError(ClassifierError):
    """A remote endpoint failed, timed out, or answered in a shape safestack cannot trust."""


class ProvenanceError(SafestackError):
    """An image could not be signed, watermarked or registered, or its manifest not be read.

    The image in question is never released without its provenance: the caller refuses it.
    """


class ModelError(SafestackError):
    """The wrapped model gave no usable answer.

    An HTTP error, a refused connection, a body that is not a chat completion. The upstream's own
    message is kept, with secrets masked.
    """


class ModelTimeoutError(ModelError):
    """The model did not answer within its time budget (after retries, where they apply)."""


class NoRecordingError(ModelError):
    """The recorded-responses model holds no completion for this conversation.

    A replay model cannot invent an answer; the caller decides whether to skip the request
    (evaluations) or to say so (the CLI). ``prompt`` is the text that was looked up.
    """

    def __init__(self, message: str, *, prompt: str | None = None) -> None:
        self.prompt = prompt
        super().__init__(message)


class StoreError(SafestackError):
    """The store failed.

    Raised as itself for a database error that is neither an outage nor a missing record (for
    example a database whose schema is not migrated, or a value the database refused). The
    transaction that raised it was rolled back completely. Messages name the database by its
    URL with the password replaced by ``***``; they never carry a password or an API key.
    """


class StoreUnavailableError(StoreError):
    """The database cannot be used right now: unreachable, connection lost, or locked.

    A transient condition from the caller's point of view (the gateway answers 503 and a client
    retries); nothing was written.
    """


class RecordNotFoundError(StoreError):
    """An id handed to the store (account, key, opt-out, hash bank) does not exist."""


class RecordConflictError(StoreError):
    """The record exists already (an opt-out for that name, a hash bank with that name)."""
