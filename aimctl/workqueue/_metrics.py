"""Workqueue metrics with controller-runtime's exact names, labels, help and buckets.

Owns the metric families of all queues on one registry and how a queue's state becomes samples.
It imports no queue: a queue hands it a :class:`MetricsSource` (read at scrape time) and gets
back two histogram sinks to observe into. Names follow controller-runtime
``pkg/internal/metrics/workqueue.go``; both labels ``name`` and ``controller`` carry the queue
name.

What costs what:
- ``workqueue_adds_total``: derived at scrape time. An add is a key becoming due (re-adding a
  dirty key is not an add, as in client-go and controller-runtime), and every such key has
  since been handed out (counted by ``workqueue_queue_duration_seconds``) or is still due
  (``len``), so adds = that histogram's count + the due keys. Monotonic: a hand-out moves one
  key from one term to the other, and a due key never stops being due without a hand-out.
- ``workqueue_retries_total``: a plain int the queue keeps, read at scrape time.
- ``workqueue_depth{priority}``: counted at scrape time from the queue's dirty keys (one pass;
  no per-item gauge updates). The ``priority="0"`` series exists from the start; another
  priority's series appears at the first scrape that sees a key at it, then stays. At most
  :data:`MAX_PRIORITY_LABELS` distinct priorities get their own series per queue; the rest
  are summed under ``exceeded_cardinality_limit`` (controller-runtime's cap and placeholder;
  it switches every later update to the placeholder, we keep the first 25 exact).
- ``workqueue_unfinished_work_seconds``, ``workqueue_longest_running_processor_seconds``:
  computed at scrape time from the processing start times, so no 500 ms ticker is needed.
- ``workqueue_queue_duration_seconds``, ``workqueue_work_duration_seconds``: the only
  per-item cost: one clock read per add, get and done, and an append to the histogram's
  ``pending`` list, folded into the buckets every 1024 values (``aimctl.metrics.Histogram``).

All families of all queues on one registry share one collector; a queue registering a name that
is already registered takes over that name's series (counters restart, which Prometheus reads
as a counter reset). The controller builder rejects duplicate controller names anyway.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from aimctl.metrics._primitives import (
    CounterFamily,
    FamilyCollector,
    GaugeFamily,
    Histogram,
    HistogramFamily,
    exponential_buckets,
)

__all__ = [
    "MAX_PRIORITY_LABELS",
    "WORKQUEUE_BUCKETS",
    "MetricsSource",
    "QueueMetrics",
    "register_queue_metrics",
]

# ExponentialBuckets(10e-9, 10, 12): 1e-8 s ... 1e3 s, for both duration histograms.
WORKQUEUE_BUCKETS = exponential_buckets(10e-9, 10, 12)

MAX_PRIORITY_LABELS = 25
_EXCEEDED = "exceeded_cardinality_limit"


class MetricsSource(Protocol):
    """What the metrics read from a queue, at scrape time only, without mutating it."""

    def due(self) -> int: ...
    def retries_total(self) -> int: ...
    def depth_by_priority(self) -> Mapping[int, int]: ...
    def processing_ages(self) -> Iterable[float]: ...


class QueueMetrics:
    """One queue's per-item sinks: the two duration histograms.

    The queue appends to each histogram's ``pending`` list and calls ``fold`` every
    ``Histogram.FOLD_AT`` values (the primitives' fast path).
    """

    __slots__ = ("queue_duration", "work_duration")

    def __init__(self, queue_duration: Histogram, work_duration: Histogram) -> None:
        self.queue_duration = queue_duration
        self.work_duration = work_duration


class _DepthFamily:
    """``workqueue_depth{name,controller,priority}``, counted at scrape time."""

    name = "workqueue_depth"

    def __init__(self) -> None:
        # queue name -> (source, priorities with their own series, in first-seen order).
        self.sources: dict[str, tuple[MetricsSource, dict[int, None]]] = {}

    def collect(self) -> Metric:
        m = GaugeMetricFamily(
            self.name,
            "Current depth of workqueue by workqueue and priority",
            labels=("name", "controller", "priority"),
        )
        for qname, (source, labelled) in list(self.sources.items()):
            exceeded = 0
            counts = source.depth_by_priority()
            for priority in sorted(counts):
                if priority not in labelled:
                    if len(labelled) < MAX_PRIORITY_LABELS:
                        labelled[priority] = None
                    else:
                        exceeded += counts[priority]
            for priority in labelled:
                m.add_metric([qname, qname, str(priority)], counts.get(priority, 0))
            if exceeded or len(labelled) >= MAX_PRIORITY_LABELS:
                m.add_metric([qname, qname, _EXCEEDED], exceeded)
        return m


class _Families:
    """All workqueue families on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("name", "controller")
        self.depth = _DepthFamily()
        self.adds = CounterFamily(
            "workqueue_adds", "Total number of adds handled by workqueue", labels
        )
        self.queue_duration = HistogramFamily(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            labels,
            buckets=WORKQUEUE_BUCKETS,
        )
        self.work_duration = HistogramFamily(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            labels,
            buckets=WORKQUEUE_BUCKETS,
        )
        self.unfinished = GaugeFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been "
            "observed by work_duration. Large values indicate stuck threads. One can deduce "
            "the number of stuck threads by observing the rate at which this increases.",
            labels,
        )
        self.longest = GaugeFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels,
        )
        self.retries = CounterFamily(
            "workqueue_retries", "Total number of retries handled by workqueue", labels
        )
        FamilyCollector(
            [
                self.depth,
                self.adds,
                self.queue_duration,
                self.work_duration,
                self.unfinished,
                self.longest,
                self.retries,
            ]
        ).register(registry)


_FAMILIES: weakref.WeakKeyDictionary[CollectorRegistry, _Families] = weakref.WeakKeyDictionary()


def register_queue_metrics(
    registry: CollectorRegistry, name: str, source: MetricsSource
) -> QueueMetrics:
    """Export ``source``'s metrics on ``registry`` under queue ``name``; return its sinks.

    Raises ``ValueError`` if another collector already owns a ``workqueue_*`` name there.
    """
    families = _FAMILIES.get(registry)
    if families is None:
        families = _FAMILIES[registry] = _Families(registry)
    families.depth.sources[name] = (source, {0: None})
    histograms = []
    for family in (families.queue_duration, families.work_duration):
        family.remove(name, name)
        histograms.append(family.labels(name, name))
    queue_duration = histograms[0]

    def adds() -> float:
        return queue_duration.count + source.due()

    for counter, read in ((families.adds, adds), (families.retries, source.retries_total)):
        counter.remove(name, name)
        counter.labels(name, name).set_function(read)

    def unfinished() -> float:
        return sum(source.processing_ages())

    def longest() -> float:
        return max(source.processing_ages(), default=0.0)

    families.unfinished.labels(name, name).set_function(unfinished)
    families.longest.labels(name, name).set_function(longest)
    return QueueMetrics(histograms[0], histograms[1])
