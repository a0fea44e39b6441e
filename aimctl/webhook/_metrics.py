"""controller-runtime's webhook metrics, with its exact names, labels and buckets.

kubernetes-sigs/controller-runtime: pkg/webhook/internal/metrics/metrics.go
(``controller_runtime_webhook_latency_seconds{webhook}``, buckets ``ExponentialBuckets(10e-9,
10, 12)``; ``controller_runtime_webhook_requests_total{webhook,code}``, with codes 200 and 500
created at registration; ``controller_runtime_webhook_requests_in_flight{webhook}``; the
label ``webhook`` is the path), pkg/webhook/admission/metrics/metrics.go and
pkg/webhook/conversion/metrics/metrics.go (the panic counters, no labels) and
pkg/certwatcher/metrics/metrics.go (certificate reads).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from aimctl.metrics import (
    CounterFamily,
    FamilyCollector,
    GaugeFamily,
    HistogramFamily,
    exponential_buckets as _exp,
)

__all__ = ["LATENCY_BUCKETS", "WebhookMetrics"]

LATENCY_BUCKETS = _exp(10e-9, 10, 12)


class WebhookMetrics:
    """The families of one webhook server; :meth:`register` exports them on a registry."""

    def __init__(self) -> None:
        self.latency = HistogramFamily(
            "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission requests",
            ["webhook"],
            buckets=LATENCY_BUCKETS,
        )
        self.requests = CounterFamily(
            "controller_runtime_webhook_requests",
            "Total number of admission requests by HTTP status code.",
            ["webhook", "code"],
        )
        self.in_flight = GaugeFamily(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served.",
            ["webhook"],
        )
        panics = CounterFamily(
            "controller_runtime_webhook_panics", "Total number of webhook panics"
        )
        conversion_panics = CounterFamily(
            "controller_runtime_conversion_webhook_panics",
            "Total number of conversion webhook panics",
        )
        reads = CounterFamily("certwatcher_read_certificate", "Total number of certificate reads")
        read_errors = CounterFamily(
            "certwatcher_read_certificate_errors", "Total number of certificate read errors"
        )
        self.admission_panics = panics.labels()
        self.conversion_panics = conversion_panics.labels()
        self.cert_reads = reads.labels()
        self.cert_read_errors = read_errors.labels()
        self.collector = FamilyCollector(
            [
                self.latency,
                self.requests,
                self.in_flight,
                panics,
                conversion_panics,
                reads,
                read_errors,
            ]
        )
        self._registries: list[CollectorRegistry] = []

    def register(self, registry: CollectorRegistry) -> None:
        """Export on ``registry`` (once per registry; later calls are no-ops)."""
        if any(r is registry for r in self._registries):
            return
        self.collector.register(registry)
        self._registries.append(registry)

    def watch(self, path: str) -> None:
        """Create the path's series at registration, as controller-runtime does."""
        self.requests.labels(path, "200")
        self.requests.labels(path, "500")
        self.in_flight.labels(path)
        self.latency.labels(path)
