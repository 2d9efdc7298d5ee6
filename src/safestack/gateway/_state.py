"""What one gateway process holds: the stacks per model name, the store, metrics, the admin key.

Nothing here is per-account state: accounts, keys and bans live in the store and are read on
every request, so any number of replicas sharing one database agree at once on who is banned.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import platformdirs

from safestack.classify.faces import OptOutFaceClassifier, OptOutFaceMatcher
from safestack.classify.images import ImageSafetyClassifier
from safestack.classify.rules import ArtistStyleRule, NameRegistry, PublicFigureRule
from safestack.gateway._config import DEFAULT_IMAGE_MODEL_NAME, DEFAULT_MODEL_NAME, GatewayConfig
from safestack.gateway._image_files import ImageFiles
from safestack.gateway._metrics import GatewayMetrics
from safestack.hashing import Enforcer, HashMatcher, hash_image
from safestack.http_endpoint import HTTPEndpoint
from safestack.media import ImageLimits
from safestack.models import OpenAICompatibleImageModel, OpenAICompatibleModel, SamplePhotosModel
from safestack.policy import Audience
from safestack.provenance import Provenance
from safestack.stack import Decision, ImageSafetyStack, SafetyStack
from safestack.store import NewDecision, Store, Traffic

__all__ = ["Gateway", "build_image_stacks", "build_stacks", "image_directory"]

log = logging.getLogger("safestack.gateway")

#: How stale the in-memory opt-out list may get (seconds) before an image request re-reads it.
OPT_OUT_REFRESH_S = 2.0
_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def build_stacks(config: GatewayConfig, base: SafetyStack | None = None) -> dict[str, SafetyStack]:
    """One stack per served model name, all sharing the same loaded classifiers."""
    base = base or SafetyStack.from_config(config.stack)
    stacks: dict[str, SafetyStack] = {}
    if config.serve_stack_model or not config.models:
        stacks[DEFAULT_MODEL_NAME] = base
    for name, upstream in config.models.items():
        model = OpenAICompatibleModel(
            upstream.base_url,
            upstream.model or name,
            api_key=upstream.api_key(),
            timeout=upstream.timeout_s,
            max_retries=1,
        )
        stack = base.with_model(model)
        stack.model_timeout_s = upstream.timeout_s
        stacks[name] = stack
    return stacks


def opt_out_faces(store: Store) -> OptOutFaceClassifier | None:
    """Face matching against opted-out people's reference photos, if the extra is installed.

    Without ``safestack[faces]`` the gateway runs without it (logged at start-up, documented):
    opt-outs are then enforced on names in prompts only.
    """
    if importlib.util.find_spec("face_recognition_models") is None:
        log.warning(
            "face matching of opted-out people is off: install 'safestack[faces]' to enable it"
        )
        return None
    return OptOutFaceClassifier(OptOutFaceMatcher([]), store=store, max_age_s=None)


def build_image_checks(
    config: GatewayConfig,
    base: SafetyStack,
    matcher: HashMatcher,
    names: NameRegistry,
    faces: OptOutFaceClassifier | None,
) -> ImageSafetyStack:
    """Every image check, around the offline sample-photos model (see build_image_stacks).

    Prompts go through the chat stack's own input layer (the same loaded text classifiers),
    then the living-artist and public-figure rules, which read the opt-outs through ``names``;
    uploads and outputs through known-bad hash matching (the store's enabled banks), the image
    classifiers and ``faces``.
    """
    return ImageSafetyStack(
        model=SamplePhotosModel(),
        policy=base.policy,
        prompt_layer=base.input_layer,
        prompt_rules=[ArtistStyleRule(registry=names), PublicFigureRule(registry=names)],
        image_classifier=ImageSafetyClassifier(policy=base.policy),
        face_matcher=faces,
        hash_matcher=matcher,
        hash_image=hash_image,
        limits=ImageLimits(max_bytes=config.max_upload_bytes),
        name=f"{base.name}+images",
    )


def build_image_stacks(
    config: GatewayConfig, base: ImageSafetyStack
) -> dict[str, ImageSafetyStack]:
    """One image stack per served image model name, all sharing the same loaded checks."""
    stacks: dict[str, ImageSafetyStack] = {}
    if not config.image_models:
        stacks[DEFAULT_IMAGE_MODEL_NAME] = base
    for name, upstream in config.image_models.items():
        model = OpenAICompatibleImageModel(
            upstream.base_url,
            upstream.model or name,
            api_key=upstream.api_key(),
            timeout=upstream.timeout_s,
        )
        stacks[name] = base.with_model(model, name=base.name)
        stacks[name].model_timeout_s = upstream.timeout_s
    return stacks


def image_directory(config: GatewayConfig) -> Path:
    """Where URL-response images are kept (see :class:`ImageFiles`)."""
    if config.image_dir is not None:
        return Path(config.image_dir)
    return Path(platformdirs.user_data_dir("safestack", appauthor=False)) / "images"


@dataclass
class Gateway:
    """The parts every route uses; built once by :func:`~safestack.gateway.create_app`."""

    config: GatewayConfig
    store: Store
    stacks: dict[str, SafetyStack]
    admin_key: str | None
    image_stacks: dict[str, ImageSafetyStack]
    image_files: ImageFiles
    enforcer: Enforcer
    opt_out_names: NameRegistry
    opt_out_faces: OptOutFaceClassifier | None = None
    hash_matcher: HashMatcher | None = None
    #: Stamps every released image (manifest, watermark, registry); None when disabled.
    provenance: Provenance | None = None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    ready: threading.Event = field(default_factory=threading.Event)
    load_error: str | None = None
    limiter: anyio.CapacityLimiter | None = None
    opt_outs_read_at: float = float("-inf")

    def __post_init__(self) -> None:
        self.policy = next(iter(self.stacks.values())).policy

    @property
    def admin_actor(self) -> str:
        """Who an admin action is recorded as: a fingerprint of the key, never the key."""
        digest = hashlib.sha256((self.admin_key or "").encode()).hexdigest()[:12]
        return f"admin:{digest}"

    def close(self) -> None:
        """Release the database and the upstreams' pooled connections when the app stops."""
        self.store.close()
        models: list[object] = [s.model for s in self.stacks.values()]
        models += [s.model for s in self.image_stacks.values()]
        for model in models:
            if isinstance(model, HTTPEndpoint):
                model.close()

    def refresh_opt_outs(self, max_age_s: float = OPT_OUT_REFRESH_S) -> None:
        """Re-read the opt-outs if the copy in memory is older than ``max_age_s``.

        Called before every image request (in its worker thread): an opt-out added through any
        replica is enforced by every replica within ``max_age_s`` seconds, at the cost of one
        small query per interval, not per request.
        """
        now = time.monotonic()
        if now - self.opt_outs_read_at < max_age_s:
            return
        self.opt_out_names.refresh(self.store.list_opt_outs())
        if self.opt_out_faces is not None:
            self.opt_out_faces.refresh()
        self.opt_outs_read_at = now

    def is_admin_key(self, presented: str) -> bool:
        return self.admin_key is not None and hmac.compare_digest(
            presented.encode(), self.admin_key.encode()
        )

    def decision_record(
        self,
        decision: Decision,
        *,
        request_id: str,
        account_id: str | None,
        endpoint: str,
        model: str | None,
        latency_ms: float,
        traffic: Traffic = "real_world",
    ) -> NewDecision:
        """The decision log's row for a stack decision (severity from the policy)."""
        return NewDecision(
            request_id=request_id,
            account_id=account_id,
            endpoint=endpoint,
            model=model,
            status=decision.status,
            blocked=decision.blocked,
            layer=decision.layer,
            categories=decision.categories,
            severity=self.severity(decision.categories),
            clause=decision.clause,
            audience=decision.audience.value,
            latency_ms=latency_ms,
            traffic=traffic,
        )

    def severity(self, categories: list[str]) -> str | None:
        """The gravest severity among the policy categories of a decision."""
        known = [
            self.policy.category(c).severity for c in categories if c in self.policy.category_ids
        ]
        return max(known, key=_SEVERITY_RANK.__getitem__, default=None)

    def warm_up(self) -> None:
        """Load every classifier for both audiences; ``/readyz`` says ready only after this."""
        try:
            stack = next(iter(self.stacks.values()))
            images = next(iter(self.image_stacks.values()))
            for audience in Audience:
                stack.warm_up(audience)
                images.warm_up(audience)
        except Exception as exc:  # reported by /readyz; requests still get the layer's failure mode
            self.load_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()
