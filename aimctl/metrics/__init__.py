"""Metrics: scrape-time primitives with controller-runtime's names, on a caller-owned registry.

Packages keep plain counters (cheap on hot paths); a :class:`FamilyCollector` exports them when
``/metrics`` is scraped. See ``_primitives`` for the contract.
"""

from aimctl.metrics._primitives import (
    Collectable as Collectable,
    Counter as Counter,
    CounterFamily as CounterFamily,
    FamilyCollector as FamilyCollector,
    Gauge as Gauge,
    GaugeFamily as GaugeFamily,
    Histogram as Histogram,
    HistogramFamily as HistogramFamily,
    exponential_buckets as exponential_buckets,
)

__all__ = [
    "Collectable",
    "Counter",
    "CounterFamily",
    "FamilyCollector",
    "Gauge",
    "GaugeFamily",
    "Histogram",
    "HistogramFamily",
    "exponential_buckets",
]
