"""Rate limiters: client-go's numbers (default_rate_limiters.go) and composition."""

from __future__ import annotations

import random
from collections.abc import Hashable

import pytest

from aimctl._internal.clock import ManualClock
from aimctl.workqueue import (
    BucketRateLimiter,
    FastSlowRateLimiter,
    ItemExponentialRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    WithMaxWaitRateLimiter,
    default_controller_rate_limiter,
)


def test_exponential_doubles_from_base_and_caps_at_max() -> None:
    limiter = ItemExponentialRateLimiter()
    delays = [limiter.when("a") for _ in range(21)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[17] == pytest.approx(655.36)  # the 18th failure
    assert delays[18:] == [1000.0, 1000.0, 1000.0]  # capped from the 19th
    assert limiter.num_requeues("a") == 21


def test_exponential_is_per_item_and_forget_resets() -> None:
    limiter = ItemExponentialRateLimiter(1.0, 100.0)
    assert [limiter.when("a"), limiter.when("a"), limiter.when("b")] == [1.0, 2.0, 1.0]
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.num_requeues("b") == 1
    assert limiter.when("a") == 1.0
    limiter.forget("never-seen")  # harmless


def test_exponential_survives_huge_failure_counts() -> None:
    limiter = ItemExponentialRateLimiter(0.005, 1000.0)
    for _ in range(1100):
        delay = limiter.when("a")
    assert delay == 1000.0


def test_exponential_jitter_stays_within_its_fraction_and_below_max() -> None:
    limiter = ItemExponentialRateLimiter(1.0, 8.0, jitter=0.5, rng=random.Random(1))
    for n in range(10):
        nominal = min(2.0**n, 8.0)
        delay = limiter.when("a")
        assert nominal * 0.5 <= delay <= nominal
    assert limiter.num_requeues("a") == 10


@pytest.mark.parametrize(
    ("base", "maximum", "jitter"), [(0.0, 1.0, 0.0), (2.0, 1.0, 0.0), (1.0, 2.0, 1.5)]
)
def test_exponential_rejects_bad_options(base: float, maximum: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        ItemExponentialRateLimiter(base, maximum, jitter=jitter)


def test_bucket_allows_a_burst_then_spaces_by_qps() -> None:
    clock = ManualClock()
    limiter = BucketRateLimiter(10.0, 100, clock=clock)
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100
    assert limiter.when("x") == pytest.approx(0.1)
    assert limiter.when("y") == pytest.approx(0.2)  # reservations queue up
    assert limiter.num_requeues("x") == 0
    limiter.forget("x")  # not per item: nothing to forget
    assert limiter.when("z") == pytest.approx(0.3)


def test_bucket_refills_over_time_up_to_burst() -> None:
    clock = ManualClock()
    limiter = BucketRateLimiter(2.0, 3, clock=clock)
    for _ in range(3):
        assert limiter.when("a") == 0.0
    assert limiter.when("a") == pytest.approx(0.5)
    clock.advance(100.0)  # refills to the burst, no more
    assert [limiter.when("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.when("a") == pytest.approx(0.5)


def test_bucket_rejects_bad_options() -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(0.0, 1)
    with pytest.raises(ValueError):
        BucketRateLimiter(1.0, 0)


def test_fast_slow_switches_after_max_fast_attempts() -> None:
    limiter = FastSlowRateLimiter(0.1, 10.0, 3)
    assert [limiter.when("a") for _ in range(5)] == [0.1, 0.1, 0.1, 10.0, 10.0]
    assert limiter.num_requeues("a") == 5
    limiter.forget("a")
    assert limiter.when("a") == 0.1
    with pytest.raises(ValueError):
        FastSlowRateLimiter(-1.0, 1.0, 1)


def test_max_of_returns_the_longest_and_every_limiter_counts() -> None:
    fast_slow = FastSlowRateLimiter(0.5, 3.0, 2)
    exponential = ItemExponentialRateLimiter(0.1, 100.0)
    limiter = MaxOfRateLimiter(fast_slow, exponential)
    assert [limiter.when("a") for _ in range(4)] == [0.5, 0.5, 3.0, 3.0]
    assert exponential.num_requeues("a") == 4
    assert limiter.num_requeues("a") == 4
    limiter.forget("a")
    assert fast_slow.num_requeues("a") == exponential.num_requeues("a") == 0
    with pytest.raises(ValueError):
        MaxOfRateLimiter()


def test_with_max_wait_caps_the_delay() -> None:
    limiter = WithMaxWaitRateLimiter(ItemExponentialRateLimiter(1.0, 100.0), 3.0)
    assert [limiter.when("a") for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
    assert limiter.num_requeues("a") == 4
    limiter.forget("a")
    assert limiter.when("a") == 1.0
    with pytest.raises(ValueError):
        WithMaxWaitRateLimiter(limiter, -1.0)


def test_default_controller_rate_limiter_is_controller_runtimes_priority_queue_default() -> None:
    limiter = default_controller_rate_limiter()
    assert isinstance(limiter, ItemExponentialRateLimiter)
    assert (limiter.base_delay, limiter.max_delay, limiter.jitter) == (0.005, 1000.0, 0.0)


def test_default_controller_rate_limiter_with_bucket_is_client_gos_default() -> None:
    limiter = default_controller_rate_limiter(with_bucket=True)
    assert isinstance(limiter, MaxOfRateLimiter)
    exponential, bucket = limiter.limiters
    assert isinstance(exponential, ItemExponentialRateLimiter)
    assert (exponential.base_delay, exponential.max_delay) == (0.005, 1000.0)
    assert isinstance(bucket, BucketRateLimiter)
    assert (bucket.qps, bucket.burst) == (10.0, 100)
    # 100 distinct failing keys fit in the burst; the 101st waits on the bucket.
    assert [limiter.when(i) for i in range(100)] == [0.005] * 100
    assert limiter.when(100) > 0.05


def test_limiters_satisfy_the_protocol_for_any_key_type() -> None:
    limiters: list[RateLimiter[tuple[str, str]]] = [
        ItemExponentialRateLimiter(),
        BucketRateLimiter(),
        FastSlowRateLimiter(0.1, 1.0, 1),
        MaxOfRateLimiter(ItemExponentialRateLimiter()),
        WithMaxWaitRateLimiter(BucketRateLimiter(), 1.0),
        default_controller_rate_limiter(),
    ]
    key: Hashable = ("ns", "name")
    for limiter in limiters:
        assert limiter.when(("ns", "name")) >= 0
        assert limiter.num_requeues(("ns", "name")) >= 0
        limiter.forget(("ns", "name"))
    assert key == ("ns", "name")
