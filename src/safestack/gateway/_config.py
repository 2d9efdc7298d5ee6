"""The gateway's configuration: which stack, which upstream per model name, which database.

Like a stack file, a gateway file is YAML that people review, validated with ``file:line``
errors. Every field has a default, so ``safestack serve`` runs with no file at all: the default
stack around the recorded-responses model, a SQLite file in the user's data directory.

Secrets never live in the file: an upstream's API key is read from the environment variable the
file names (``api_key_env``), and the admin key only from ``SAFESTACK_ADMIN_KEY``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from safestack.errors import ConfigError
from safestack.hashing._reports import ReportReceiverConfig
from safestack.provenance import ProvenanceConfig
from safestack.store import StrikePolicy
from safestack.yaml_config import load_yaml_model

__all__ = [
    "DEFAULT_IMAGE_MODEL_NAME",
    "DEFAULT_MODEL_NAME",
    "ConsoleConfig",
    "GatewayConfig",
    "ReviewConfig",
    "UpstreamConfig",
    "load_gateway_config",
]

#: The model name served when no upstream is configured: the stack's own (recorded) model.
DEFAULT_MODEL_NAME = "safestack-recorded"
#: The image model served when no image upstream is configured: public-domain sample photos.
DEFAULT_IMAGE_MODEL_NAME = "safestack-sample-photos"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpstreamConfig(_Strict):
    """An OpenAI-compatible model the gateway forwards to, under the name clients ask for."""

    base_url: str = Field(description="e.g. 'https://api.openai.com/v1' or a vLLM server.")
    model: str | None = Field(
        default=None, description="The upstream's model id (default: the name clients use)."
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the upstream's API key."
    )
    timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Budget for one answer, streamed or not; overrunning gives the client 504.",
    )

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        return value

    def api_key(self) -> str | None:
        """The key from the environment, read when the upstream is built (never stored)."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(
                f"the upstream's API key: environment variable {self.api_key_env} is not set",
                path="environment",
            )
        return key


class ReviewConfig(_Strict):
    """Which served requests are queued for a person to look at (the console's review queue).

    The queued item keeps the conversation and the answer (each cut to ``max_text_chars``) so
    that the reviewer can decide; nothing else of ordinary traffic is kept. Red teamers' traffic
    is never queued: they label their own.
    """

    enabled: bool = Field(default=True, description="Queue flagged decisions at all.")
    under_18_blocks: bool = Field(
        default=True, description="Queue every blocked request of an under-18 account."
    )
    monitor_disagreements: bool = Field(
        default=True,
        description="Queue requests where the policy monitor and the output classifier disagreed.",
    )
    near_threshold: float = Field(
        default=0.15,
        ge=0.0,
        lt=1.0,
        description="Queue requests whose top classifier score is within this fraction of its "
        "category's threshold, on either side (0.15: between 0.85x and 1.15x). 0 turns it off.",
    )
    max_text_chars: int = Field(
        default=4000, ge=100, le=100_000, description="How much of each message is kept."
    )


class ConsoleConfig(_Strict):
    """The web console under ``/console/`` (see docs/console.md)."""

    enabled: bool = Field(
        default=True, description="Serve the console (it needs the admin API to be enabled)."
    )
    session_ttl_s: float = Field(
        default=8 * 3600.0,
        gt=0,
        le=30 * 86_400.0,
        description="How long a sign-in lasts; the session ends earlier on sign-out or when the "
        "account loses its role or is banned.",
    )
    evidence_dir: str = Field(
        default="safestack-logs",
        description="Where the evidence browser reads evaluation run logs and reports, and "
        "where campaign re-runs write theirs (relative to the working directory, or to the "
        "gateway file).",
    )
    system_card: str | None = Field(
        default=None,
        description="An HTML system card to show in the evidence browser (e.g. the one "
        "'safestack card build' wrote).",
    )


class GatewayConfig(_Strict):
    """Everything ``safestack serve`` needs besides the admin key."""

    stack: str = Field(
        default="system_mitigations_and_model_refusals",
        description="A stack preset name or a stack file (relative to this file).",
    )
    models: dict[str, UpstreamConfig] = Field(
        default_factory=dict,
        description="Model name → upstream. Empty: one model, 'safestack-recorded', the stack's "
        "own model (recorded real completions; works offline).",
    )
    serve_stack_model: bool = Field(
        default=False,
        description="Also serve the stack's own model (the recorded default) as "
        "'safestack-recorded' beside the upstreams. Always on when 'models' is empty.",
    )
    image_models: dict[str, UpstreamConfig] = Field(
        default_factory=dict,
        description="Image model name → OpenAI-compatible images upstream (/images/generations, "
        "/images/edits). Empty: one model, 'safestack-sample-photos', an offline stand-in that "
        "returns public-domain photographs (it generates nothing).",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest image accepted by /v1/images/edits (image and mask each); larger "
        "uploads get 413. The request body may be up to twice this plus 1 MiB.",
    )
    image_url_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        description="How long a response_format=url link stays valid (signed, no key needed).",
    )
    image_dir: str | None = Field(
        default=None,
        description="Where images handed out as URLs are kept until they expire. Default: "
        "'images' beside the SQLite file, or in the user's data directory. Replicas behind one "
        "load balancer need a shared directory for URL responses (b64_json needs none).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (sqlite:///… or postgresql://…). Default: "
        "$SAFESTACK_DATABASE_URL, else a SQLite file in the user's data directory.",
    )
    strikes: StrikePolicy = Field(
        default_factory=StrikePolicy,
        description="Blocked requests in high-severity categories that suspend an account.",
    )
    reports: ReportReceiverConfig | None = Field(
        default=None,
        description="Where reports of known-bad media matches are delivered (a signed webhook, "
        "retried until it answers 2xx) and who files them. None: reports stay in the store "
        "for review and export (GET /admin/reports/{id}/export).",
    )
    provenance: ProvenanceConfig = Field(
        default_factory=ProvenanceConfig,
        description="Provenance of every released image: a signed C2PA manifest, an invisible "
        "watermark and a registry record (see docs/provenance.md). The signing material is "
        "checked at start-up; an image that cannot be stamped is not released (503).",
    )
    review: ReviewConfig = Field(
        default_factory=ReviewConfig,
        description="Which decisions go to the review queue for a person to look at.",
    )
    console: ConsoleConfig = Field(
        default_factory=ConsoleConfig,
        description="The web console for red teamers, reviewers and administrators.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Larger request bodies get 413 before they are read.",
    )
    body_timeout_s: float = Field(
        default=15.0, gt=0, description="A client that sends its body slower gets 408."
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A connection that has not sent complete request headers by then is closed "
        "(slow-loris clients).",
    )
    stream_window_chars: int = Field(
        default=400,
        ge=1,
        description="Streamed answers are released in windows of this many characters, each "
        "judged by the output layer before it is sent.",
    )
    workers: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Requests judged at once (threads). Classifier inference runs there, never "
        "on the event loop.",
    )

    @field_validator("models", "image_models")
    @classmethod
    def _names(cls, value: dict[str, UpstreamConfig]) -> dict[str, UpstreamConfig]:
        for name in value:
            if not name or len(name) > 256 or any(c.isspace() for c in name):
                raise ValueError(f"model name {name!r} must be 1–256 characters, no spaces")
        return value


def load_gateway_config(path: str | Path) -> GatewayConfig:
    """A gateway file, with relative paths (``stack:``, provenance files) resolved against it."""
    config = load_yaml_model(path, GatewayConfig, what="gateway file", error=ConfigError)
    folder = Path(path).parent
    stack_path = folder / config.stack
    if config.stack.endswith((".yaml", ".yml")) and not Path(config.stack).is_absolute():
        config = config.model_copy(update={"stack": str(stack_path)})
    provenance = config.provenance

    def resolved(value: str) -> str:
        return value if Path(value).is_absolute() else str(folder / value)

    files = {
        "certificate": provenance.certificate and resolved(provenance.certificate),
        "private_key": provenance.private_key and resolved(provenance.private_key),
        "trust_anchors": [resolved(p) for p in provenance.trust_anchors],
    }
    console = config.console.model_copy(
        update={
            "evidence_dir": resolved(config.console.evidence_dir),
            "system_card": config.console.system_card and resolved(config.console.system_card),
        }
    )
    return config.model_copy(
        update={"provenance": provenance.model_copy(update=files), "console": console}
    )
