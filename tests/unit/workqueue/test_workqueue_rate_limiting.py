"""add_rate_limited / forget / num_requeues delegate to the limiter (rate_limiting_queue.go)."""

from __future__ import annotations

from aimctl._internal.clock import ManualClock
from aimctl.workqueue import FastSlowRateLimiter, ItemExponentialRateLimiter, Queue


def new_queue() -> tuple[Queue[str], ManualClock]:
    clock = ManualClock()
    return Queue(rate_limiter=ItemExponentialRateLimiter(1.0, 8.0), clock=clock), clock


async def test_add_rate_limited_waits_the_limiters_delay() -> None:
    q, clock = new_queue()
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 1
    clock.advance(0.999)
    assert len(q) == 0
    clock.advance(0.001)
    assert await q.get() == "a"
    q.done("a")
    q.add_rate_limited("a")  # second failure: 2 s
    clock.advance(1.0)
    assert len(q) == 0
    clock.advance(1.0)
    assert len(q) == 1
    assert q.num_requeues("a") == 2


async def test_forget_resets_the_backoff_but_not_the_queue() -> None:
    q, clock = new_queue()
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 2
    q.forget("a")
    assert q.num_requeues("a") == 0
    clock.advance(1.0)  # the recorded ready time (1 s, the earlier one) still holds
    assert await q.get() == "a"
    q.done("a")
    q.add_rate_limited("a")
    clock.advance(1.0)
    assert len(q) == 1  # back to the first delay


async def test_add_rate_limited_with_zero_delay_is_immediate() -> None:
    q: Queue[str] = Queue(rate_limiter=FastSlowRateLimiter(0.0, 5.0, 1), clock=ManualClock())
    q.add_rate_limited("a")
    assert len(q) == 1  # first attempt: the fast delay, 0 s, is a plain add
    assert await q.get() == "a"
    q.done("a")
    q.add_rate_limited("a")  # second attempt: the slow delay
    assert len(q) == 0
    assert q.num_requeues("a") == 2


async def test_add_rate_limited_keeps_the_priority() -> None:
    q, clock = new_queue()
    q.add("x")
    q.add_rate_limited("a", priority=5)
    clock.advance(1.0)
    assert [await q.get(), await q.get()] == ["a", "x"]


async def test_default_limiter_is_used_when_none_is_given() -> None:
    clock = ManualClock()
    q: Queue[str] = Queue(clock=clock)
    q.add_rate_limited("a")
    clock.advance(0.004)
    assert len(q) == 0
    clock.advance(0.001)
    assert len(q) == 1


def test_repr_names_the_queue() -> None:
    q: Queue[str] = Queue(name="kvcache")
    assert "kvcache" in repr(q)
