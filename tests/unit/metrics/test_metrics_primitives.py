"""Scrape-time primitives: the exported text is prometheus-client's own, byte for byte,
whichever way values got in (direct bumps, scrape-time functions, pending/fold)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aimctl.metrics import (
    CounterFamily,
    FamilyCollector,
    GaugeFamily,
    Histogram,
    HistogramFamily,
    exponential_buckets,
)

BUCKETS = exponential_buckets(10e-9, 10, 12)


@pytest.fixture
def no_created_series() -> Iterator[None]:
    # prometheus-client adds *_created samples that scrape-time families do not have.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        prometheus_client.enable_created_metrics()  # type: ignore[no-untyped-call]


def values(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    # Exactly on bounds too: "le" means <=.
    return [rng.choice([rng.random() * 10 ** rng.randint(-9, 3), *BUCKETS]) for _ in range(n)]


@pytest.mark.usefixtures("no_created_series")
def test_counter_and_gauge_text_is_byte_identical_to_prometheus_client() -> None:
    ref, ours = CollectorRegistry(), CollectorRegistry()
    pc = prometheus_client.Counter("jobs", "Jobs done", ["kind"], registry=ref)
    pg = prometheus_client.Gauge("depth", "Queue depth", ["kind"], registry=ref)
    counter = CounterFamily("jobs", "Jobs done", ["kind"])
    gauge = GaugeFamily("depth", "Queue depth", ["kind"])
    FamilyCollector([counter, gauge]).register(ours)
    pc.labels("a").inc(3)
    pc.labels("b").inc()
    counter.labels("a").value += 3  # the hot-path way
    counter.labels("b").set_function(lambda: 1)  # the scrape-time way
    pg.labels("a").set(2.5)
    pg.labels("b").set(7)
    gauge.labels("a").set(2.5)
    gauge.labels("b").set_function(lambda: 7.0)
    assert generate_latest(ours) == generate_latest(ref)


@pytest.mark.usefixtures("no_created_series")
@pytest.mark.parametrize("fast_path", [False, True])
def test_histogram_text_is_byte_identical_to_prometheus_client(fast_path: bool) -> None:
    ref, ours = CollectorRegistry(), CollectorRegistry()
    ph = prometheus_client.Histogram(
        "latency_seconds", "Latency", ["name"], registry=ref, buckets=BUCKETS
    )
    family = HistogramFamily("latency_seconds", "Latency", ["name"], buckets=BUCKETS)
    FamilyCollector([family]).register(ours)
    # Dyadic values: their sum is exact in any order, so even the sum's digits match.
    observations = [v for v in (2.0**e for e in range(-27, 11)) for _ in range(3)]
    child = family.labels("q")
    for v in observations:
        ph.labels("q").observe(v)
        if fast_path:
            child.pending.append(v)
            if len(child.pending) >= Histogram.FOLD_AT:
                child.fold()
        else:
            child.observe(v)
    if fast_path:
        assert child.pending  # some values are still pending at scrape time
    assert generate_latest(ours) == generate_latest(ref)


def test_fold_files_values_exactly_as_observe_does() -> None:
    direct, folded = Histogram(BUCKETS), Histogram(BUCKETS)
    for v in values(1, 5000):
        direct.observe(v)
        folded.pending.append(v)
        if len(folded.pending) >= 700:
            folded.fold()
    assert folded.counts == direct.counts
    assert folded.count == direct.count == 5000
    assert folded.sum == pytest.approx(direct.sum)
    assert folded.pending == []


def test_pending_list_is_never_replaced() -> None:
    h = Histogram(BUCKETS)
    pending = h.pending
    append = pending.append
    append(1.0)
    h.fold()
    append(2.0)
    assert h.pending is pending
    assert h.count == 2


def test_histogram_sum_can_be_bumped_directly() -> None:
    h = Histogram([1.0])
    h.pending.append(0.5)
    h.sum += 1.0
    assert h.sum == 1.5
    assert h.counts == [1, 0]


def test_counter_function_is_read_at_scrape_time() -> None:
    registry = CollectorRegistry()
    family = CounterFamily("events", "Events", ["src"])
    FamilyCollector([family]).register(registry)
    seen = [0]
    family.labels("x").set_function(lambda: seen[0])
    seen[0] = 41
    assert registry.get_sample_value("events_total", {"src": "x"}) == 41
    assert family.labels("x").get() == 41


def test_exponential_buckets_are_gos_repeated_multiplication() -> None:
    assert exponential_buckets(10e-9, 10, 12)[3] == 9.999999999999999e-06
    assert exponential_buckets(1.0, 2.0, 4) == [1.0, 2.0, 4.0, 8.0]
    assert exponential_buckets(1.0, 2.0, 0) == []


def test_labels_must_match_the_declared_names() -> None:
    family = GaugeFamily("g", "G", ["a", "b"])
    with pytest.raises(ValueError, match="takes labels"):
        family.labels("only-one")
    child = family.labels("x", "y")
    assert family.labels("x", "y") is child
    family.remove("x", "y")
    assert family.labels("x", "y") is not child
    family.remove("never", "there")


def test_duplicate_names_are_rejected_at_registration() -> None:
    registry = CollectorRegistry()
    FamilyCollector([GaugeFamily("dup", "D")]).register(registry)
    with pytest.raises(ValueError):
        FamilyCollector([CounterFamily("dup", "D")]).register(registry)


def test_collector_can_grow_after_registration() -> None:
    registry = CollectorRegistry()
    collector = FamilyCollector().register(registry)
    gauge = GaugeFamily("late", "Late")
    collector.add(gauge)
    gauge.labels().set(3)
    assert registry.get_sample_value("late") == 3
    assert [m.name for m in collector.describe()] == ["late"]
