"""What one gateway process holds: the stacks per model name, the store, metrics, the admin key.

Nothing here is per-account state: accounts, keys and bans live in the store and are read on
every request, so any number of replicas sharing one database agree at once on who is banned.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, field

import anyio

from safestack.gateway._config import DEFAULT_MODEL_NAME, GatewayConfig
from safestack.gateway._metrics import GatewayMetrics
from safestack.http_endpoint import HTTPEndpoint
from safestack.models import OpenAICompatibleModel
from safestack.policy import Audience
from safestack.stack import SafetyStack
from safestack.store import Store

__all__ = ["Gateway", "build_stacks"]

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


@dataclass
class Gateway:
    """The parts every route uses; built once by :func:`~safestack.gateway.create_app`."""

    config: GatewayConfig
    store: Store
    stacks: dict[str, SafetyStack]
    admin_key: str | None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    ready: threading.Event = field(default_factory=threading.Event)
    load_error: str | None = None
    limiter: anyio.CapacityLimiter | None = None

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
        for stack in self.stacks.values():
            if isinstance(stack.model, HTTPEndpoint):
                stack.model.close()

    def is_admin_key(self, presented: str) -> bool:
        return self.admin_key is not None and hmac.compare_digest(
            presented.encode(), self.admin_key.encode()
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
            for audience in Audience:
                stack.warm_up(audience)
        except Exception as exc:  # reported by /readyz; requests still get the layer's failure mode
            self.load_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()
