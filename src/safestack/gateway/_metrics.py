"""Prometheus metrics: traffic, what the stack blocked, and where the time went.

Each app owns its registry (not the process-global one), so two apps in one process — tests, or
a server embedding the gateway — never share or clash over counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from safestack.stack import Decision

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_STACK_LAYERS = ("input", "model", "model_refusal", "output", "monitor", "added")


class GatewayMetrics:
    """The gateway's instruments, exposed at ``/metrics`` in the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "safestack_requests",
            "HTTP requests by route and status code.",
            ["route", "code"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "safestack_request_latency_seconds",
            "Wall-clock time to the response headers (streams: to the first byte), by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "safestack_decisions",
            "Stack decisions by status and acting layer ('none' when the answer went through).",
            ["status", "layer"],
            registry=self.registry,
        )
        self.blocks = Counter(
            "safestack_blocks",
            "Blocked requests by acting layer and policy category.",
            ["layer", "category"],
            registry=self.registry,
        )
        self.layer_latency = Histogram(
            "safestack_layer_latency_seconds",
            "Time spent in each stack layer per request ('added' = all safety layers).",
            ["layer"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.suspensions = Counter(
            "safestack_suspensions",
            "Accounts suspended automatically after repeated violations.",
            registry=self.registry,
        )
        self.hash_matches = Counter(
            "safestack_hash_matches",
            "Uploads and outputs that matched a known-bad hash bank, by bank.",
            ["bank"],
            registry=self.registry,
        )
        self.provenance_stamped = Counter(
            "safestack_provenance_stamped",
            "Images released with a C2PA manifest and a registry record, by watermark method "
            "('none' when the image carried no watermark).",
            ["watermark"],
            registry=self.registry,
        )
        self.provenance_failures = Counter(
            "safestack_provenance_failures",
            "Image responses held back (503) because stamping failed: 'store' (the registry "
            "could not record them), 'provenance' (signing or watermarking), 'internal'.",
            ["reason"],
            registry=self.registry,
        )

    def observe_decision(self, decision: Decision) -> None:
        self.decisions.labels(decision.status, decision.layer or "none").inc()
        if decision.layer is not None:
            for category in decision.categories or ["unspecified"]:
                self.blocks.labels(decision.layer, category).inc()
        for layer in _STACK_LAYERS:
            if layer in decision.timings_ms:
                self.layer_latency.labels(layer).observe(decision.timings_ms[layer] / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
