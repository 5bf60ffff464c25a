"""Prometheus metrics, one registry per app (so tests and several apps never collide)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "hub_http_requests", "HTTP requests answered", ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "hub_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.events = Counter(
            "hub_ingested_events", "Inbound events by source and outcome", ["source", "outcome"],
            registry=self.registry,
        )
        self.webhook_rejected = Counter(
            "hub_webhook_rejected", "Webhook requests refused", ["source", "reason"],
            registry=self.registry,
        )
        self.dials = Counter(
            "hub_calls_dialed", "Click-to-call requests by provider and result",
            ["provider", "result"], registry=self.registry,
        )
        self.stale_calls = Counter(
            "hub_stale_calls_ended", "Calls the hub ended because their end never arrived",
            registry=self.registry,
        )
        self.outbox = Counter(
            "hub_outbox_sends", "Outbound mail sends by kind (offer, email, reminder) and "
            "outcome (sent, retry: failed and queued again, failed: given up)",
            ["kind", "outcome"], registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "hub_webhook_deliveries", "Outgoing webhook attempts by outcome (delivered; retry: "
            "failed and tried again later; failed: refused or given up)", ["outcome"],
            registry=self.registry,
        )
        self.online = Gauge("hub_managers_online", "Managers connected to the live stream",
                            registry=self.registry)
        self.webhooks_in_progress = Gauge(
            "hub_webhooks_in_progress", "Provider webhooks being handled right now",
            registry=self.registry)

    def http(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        """The request counter and timer of a route (labelled children cached: a hot path)."""
        key = (route, method, status)
        pair = self._http.get(key)
        if pair is None:
            pair = self._http[key] = (
                self.http_requests.labels(route, method, str(status)),
                self.http_latency.labels(route),
            )
        return pair

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
