"""Workqueue metrics: controller-runtime's names, labels, help and buckets, computed at scrape
time from the queue's state on a caller-owned registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from aimctl._internal.clock import ManualClock
from aimctl.metrics import Histogram
from aimctl.workqueue import LOW_PRIORITY, ItemExponentialRateLimiter, Queue
from aimctl.workqueue._queue import FOLD_AT

NAME = "kvcache"
LABELS = {"name": NAME, "controller": NAME}


def new_queue(name: str = NAME) -> tuple[Queue[str], ManualClock, CollectorRegistry]:
    clock = ManualClock()
    registry = CollectorRegistry()
    q: Queue[str] = Queue(
        name=name,
        registry=registry,
        clock=clock,
        rate_limiter=ItemExponentialRateLimiter(1.0, 10.0),
    )
    return q, clock, registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {**LABELS, **labels})


def depth(registry: CollectorRegistry) -> dict[str, float]:
    return {
        s.labels["priority"]: s.value
        for family in registry.collect()
        if family.name == "workqueue_depth"
        for s in family.samples
    }


def test_no_registry_or_no_name_means_no_metrics() -> None:
    registry = CollectorRegistry()
    unnamed: Queue[str] = Queue(registry=registry)
    unregistered: Queue[str] = Queue(name=NAME)
    assert list(registry.collect()) == []
    assert not unnamed._timed
    assert not unregistered._timed


def test_families_have_controller_runtimes_names_types_and_help() -> None:
    _, _, registry = new_queue()
    families = {f.name: (f.type, f.documentation) for f in registry.collect()}
    assert families == {
        "workqueue_depth": ("gauge", "Current depth of workqueue by workqueue and priority"),
        "workqueue_adds": ("counter", "Total number of adds handled by workqueue"),
        "workqueue_queue_duration_seconds": (
            "histogram",
            "How long in seconds an item stays in workqueue before being requested",
        ),
        "workqueue_work_duration_seconds": (
            "histogram",
            "How long in seconds processing an item from workqueue takes.",
        ),
        "workqueue_unfinished_work_seconds": (
            "gauge",
            "How many seconds of work has been done that is in progress and hasn't been "
            "observed by work_duration. Large values indicate stuck threads. One can deduce "
            "the number of stuck threads by observing the rate at which this increases.",
        ),
        "workqueue_longest_running_processor_seconds": (
            "gauge",
            "How many seconds has the longest running processor for workqueue been running.",
        ),
        "workqueue_retries": ("counter", "Total number of retries handled by workqueue"),
    }


def test_every_series_is_labelled_name_and_controller_and_exists_from_the_start() -> None:
    _, _, registry = new_queue()
    text = generate_latest(registry).decode()
    for series in (
        'workqueue_depth{controller="kvcache",name="kvcache",priority="0"} 0.0',
        'workqueue_adds_total{controller="kvcache",name="kvcache"} 0.0',
        'workqueue_retries_total{controller="kvcache",name="kvcache"} 0.0',
        'workqueue_unfinished_work_seconds{controller="kvcache",name="kvcache"} 0.0',
        'workqueue_longest_running_processor_seconds{controller="kvcache",name="kvcache"} 0.0',
        'workqueue_queue_duration_seconds_count{controller="kvcache",name="kvcache"} 0.0',
        'workqueue_work_duration_seconds_count{controller="kvcache",name="kvcache"} 0.0',
    ):
        assert series in text


def test_duration_buckets_are_go_exponential_buckets_1e_8_to_1e3() -> None:
    _, _, registry = new_queue()
    les = [
        s.labels["le"]
        for f in registry.collect()
        if f.name == "workqueue_queue_duration_seconds"
        for s in f.samples
        if s.name.endswith("_bucket")
    ]
    assert les == [
        "1e-08",
        "1e-07",
        "1e-06",
        "9.999999999999999e-06",
        "9.999999999999999e-05",
        "0.001",
        "0.01",
        "0.1",
        "1.0",
        "10.0",
        "100.0",
        "1000.0",
        "+Inf",
    ]


async def test_depth_by_priority_equals_len() -> None:
    q, clock, registry = new_queue()
    q.add("a")
    q.add("b", priority=LOW_PRIORITY)
    q.add("c", priority=5)
    q.add_after("d", 2.0)
    assert depth(registry) == {"0": 1, "-100": 1, "5": 1}
    clock.advance(2.0)
    # Scraped before any operation read the clock: d counts already, without mutating.
    assert depth(registry) == {"0": 2, "-100": 1, "5": 1}
    assert "d" in q._delayed
    assert len(q) == 4
    assert await q.get() == "c"
    assert depth(registry) == {"0": 2, "-100": 1, "5": 0}
    q.add("c", priority=5)  # parked behind done: still counted
    assert depth(registry) == {"0": 2, "-100": 1, "5": 1}
    assert sum(depth(registry).values()) == len(q) == 4


async def test_depth_moves_with_a_raised_priority() -> None:
    q, _, registry = new_queue()
    q.add("a", priority=LOW_PRIORITY)
    assert depth(registry) == {"0": 0, "-100": 1}
    q.add("a")
    # A priority's series appears at the first scrape that sees it and then stays.
    assert depth(registry) == {"0": 1, "-100": 0}


async def test_adds_total_counts_keys_becoming_due_not_duplicate_adds() -> None:
    q, clock, registry = new_queue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert sample(registry, "workqueue_adds_total") == 2
    q.add_after("c", 1.0)
    assert sample(registry, "workqueue_adds_total") == 2  # not due yet
    clock.advance(1.0)
    assert sample(registry, "workqueue_adds_total") == 3  # due from its ready time on
    assert len(q) == 3
    assert sample(registry, "workqueue_adds_total") == 3
    await q.get()
    assert sample(registry, "workqueue_adds_total") == 3  # handed out: still counted once
    key = await q.get()
    q.add(key)  # re-added while processing: a new add, as in client-go
    assert sample(registry, "workqueue_adds_total") == 4
    q.shut_down()
    q.add_after("d", 5.0)  # ignored
    assert sample(registry, "workqueue_adds_total") == 4


async def test_retries_total_counts_adds_with_a_positive_delay() -> None:
    q, _, registry = new_queue()
    q.add_after("a", 1.0)
    q.add_after("a", 2.0)  # deduplicated, still a retry (controller-runtime's priority queue)
    q.add_after("b", 0.0)  # a zero delay is a plain add
    q.add_rate_limited("c")  # the limiter's first delay is 1 s
    assert sample(registry, "workqueue_retries_total") == 3


async def test_queue_duration_is_observed_at_get() -> None:
    q, clock, registry = new_queue()
    q.add("a")
    clock.advance(2.0)
    await q.get()
    name = "workqueue_queue_duration_seconds"
    assert sample(registry, name + "_count") == 1
    assert sample(registry, name + "_sum") == 2.0
    assert sample(registry, name + "_bucket", le="1.0") == 0
    assert sample(registry, name + "_bucket", le="10.0") == 1


async def test_queue_duration_of_a_delayed_key_starts_at_its_ready_time() -> None:
    q, clock, registry = new_queue()
    q.add_after("a", 5.0)
    clock.advance(7.0)
    await q.get()
    assert sample(registry, "workqueue_queue_duration_seconds_sum") == 2.0


async def test_work_duration_is_observed_at_done() -> None:
    q, clock, registry = new_queue()
    q.add("a")
    await q.get()
    clock.advance(0.5)
    q.done("a")
    name = "workqueue_work_duration_seconds"
    assert sample(registry, name + "_count") == 1
    assert sample(registry, name + "_sum") == 0.5
    assert sample(registry, name + "_bucket", le="0.1") == 0
    assert sample(registry, name + "_bucket", le="1.0") == 1


async def test_unfinished_and_longest_running_are_computed_at_scrape_time() -> None:
    q, clock, registry = new_queue()
    q.add("a")
    q.add("b")
    await q.get()
    clock.advance(1.0)
    await q.get()
    clock.advance(2.0)
    assert sample(registry, "workqueue_unfinished_work_seconds") == 5.0  # 3 + 2
    assert sample(registry, "workqueue_longest_running_processor_seconds") == 3.0
    q.done("a")
    q.done("b")
    assert sample(registry, "workqueue_unfinished_work_seconds") == 0.0
    assert sample(registry, "workqueue_longest_running_processor_seconds") == 0.0


def test_the_queue_folds_as_often_as_the_histogram_asks() -> None:
    assert FOLD_AT == Histogram.FOLD_AT


async def test_histograms_count_every_item_across_folds() -> None:
    q, _, registry = new_queue()
    for i in range(2500):
        q.add(f"k{i}")
    for _ in range(2500):
        q.done(await q.get())
    assert sample(registry, "workqueue_queue_duration_seconds_count") == 2500
    assert sample(registry, "workqueue_work_duration_seconds_count") == 2500
    assert sample(registry, "workqueue_queue_duration_seconds_bucket", le="1e-08") == 2500


def test_two_queues_share_a_registry_with_their_own_series() -> None:
    registry = CollectorRegistry()
    first: Queue[str] = Queue(name="one", registry=registry, clock=ManualClock())
    second: Queue[str] = Queue(name="two", registry=registry, clock=ManualClock())
    first.add("a")
    second.add("a")
    second.add("b")
    for name, expected in (("one", 1), ("two", 2)):
        labels = {"name": name, "controller": name}
        assert registry.get_sample_value("workqueue_adds_total", labels) == expected
        assert registry.get_sample_value("workqueue_depth", {**labels, "priority": "0"}) == expected


def test_a_queue_with_a_taken_name_takes_over_its_series() -> None:
    registry = CollectorRegistry()
    old: Queue[str] = Queue(name=NAME, registry=registry, clock=ManualClock())
    old.add("a")
    new: Queue[str] = Queue(name=NAME, registry=registry, clock=ManualClock())
    assert sample(registry, "workqueue_adds_total") == 0
    new.add("b")
    new.add("c")
    assert sample(registry, "workqueue_adds_total") == 2
    assert sample(registry, "workqueue_depth", priority="0") == 2


def test_priority_labels_are_capped_at_25_per_queue() -> None:
    q, _, registry = new_queue()
    for p in range(30):
        q.add(f"k{p}", priority=p)
    series = depth(registry)
    assert len(series) == 26
    assert series["exceeded_cardinality_limit"] == 5  # 0..24 have their own series
    assert sum(series.values()) == len(q) == 30
