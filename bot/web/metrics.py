"""Prometheus metrics of one application, in a registry of its own (tests run several apps)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


@dataclass(frozen=True)
class Metrics:
    http_requests: Counter
    http_duration_s: Histogram
    rejected_activities: Counter
    outbox_depth: Gauge
    lease_held: Gauge
    heap_frozen: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            http_requests=Counter(
                "bot_http_requests",
                "HTTP requests served, by route and status.",
                ["route", "method", "status"],
                registry=registry,
            ),
            http_duration_s=Histogram(
                "bot_http_request_duration_seconds",
                "Time to answer an HTTP request.",
                ["route"],
                registry=registry,
            ),
            rejected_activities=Counter(
                "bot_rejected_activities",
                "Inbound activities refused before reaching the bot, by reason.",
                ["reason"],
                registry=registry,
            ),
            outbox_depth=Gauge(
                "bot_outbox_messages",
                "Outbox messages by status (shared by all replicas).",
                ["status"],
                registry=registry,
            ),
            lease_held=Gauge(
                "bot_lease_held",
                "1 when this replica holds the named background lease.",
                ["lease"],
                registry=registry,
            ),
            heap_frozen=Gauge(
                "bot_heap_frozen_objects",
                "Objects set aside from the garbage collector's walks once the app started "
                "(bot.heap); 0 when the process does not serve (tests, the demo).",
                registry=registry,
            ),
        )
