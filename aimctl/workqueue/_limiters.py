"""Rate limiters: how long a key waits before it is retried.

A limiter answers one question per failed attempt, ``when(item)``: the delay in seconds before
``item`` may be handed out again. It is client-go's ``RateLimiter`` (three methods), and the
limiters are small values composed by decorators (:class:`MaxOfRateLimiter`,
:class:`WithMaxWaitRateLimiter`), not flags.

Contract, for every limiter here:
- ``when(item)`` records an attempt and returns a delay ``>= 0`` seconds.
- ``forget(item)`` clears the item's history; the next ``when`` starts from the beginning.
  Remember to call ``forget`` when an item succeeds, or its backoff keeps growing.
- ``num_requeues(item)`` is the number of ``when`` calls since the last ``forget`` (0 for
  limiters that keep no per-item state).
- Per-item state is held only for items that failed and were not forgotten.
- Not thread-safe: a limiter belongs to one queue on one event loop.

Fed by: ``Queue.add_rate_limited``/``forget``/``num_requeues``. Feeds: nothing; it only
computes delays.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable
from typing import Protocol, TypeVar

from aimctl._internal.clock import MONOTONIC, Clock

__all__ = [
    "BucketRateLimiter",
    "FastSlowRateLimiter",
    "ItemExponentialRateLimiter",
    "MaxOfRateLimiter",
    "RateLimiter",
    "WithMaxWaitRateLimiter",
    "default_controller_rate_limiter",
]

K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[K_contra]):
    """Decides how long an item waits before its next attempt (client-go ``RateLimiter``).

    Generic in the key type and contravariant, so a limiter over ``Hashable`` (all limiters
    here) is a ``RateLimiter[Request]``.
    """

    def when(self, item: K_contra) -> float:
        """Record an attempt for ``item``; return the delay in seconds (``>= 0``)."""
        ...

    def forget(self, item: K_contra) -> None:
        """Stop tracking ``item``: its next ``when`` starts from the first delay."""
        ...

    def num_requeues(self, item: K_contra) -> int:
        """Attempts recorded for ``item`` since the last ``forget``."""
        ...


class ItemExponentialRateLimiter:
    """Per-item exponential backoff: ``base_delay * 2**failures``, capped at ``max_delay``.

    client-go's ``ItemExponentialFailureRateLimiter``: the n-th consecutive ``when`` for an item
    (counting from 0) returns ``base_delay * 2**n``. With the controller defaults (5 ms, 1000 s)
    that is 5 ms, 10 ms, 20 ms, ... 655.36 s at the 18th call, and 1000 s from the 19th on.

    Options (keyword-only):
        base_delay: first delay, seconds. Default: 0.005 (controller-runtime's).
        max_delay: cap, seconds. Default: 1000.0 (controller-runtime's).
        jitter: fraction in ``[0, 1]``. Default: 0.0 (client-go has none). When set, each delay
            is multiplied by a random factor in ``[1 - jitter, 1]`` *after* capping, so
            ``max_delay`` is never exceeded and retries that reached the cap are spread too.
        rng: random source for the jitter. Default: a fresh ``random.Random()``.
    """

    __slots__ = ("_failures", "_rng", "base_delay", "jitter", "max_delay")

    def __init__(
        self,
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        *,
        jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < base_delay <= max_delay:
            raise ValueError("exponential limiter needs 0 < base_delay <= max_delay")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self._rng = rng if rng is not None else random.Random()
        # Invariant: holds exactly the items with at least one ``when`` since their last
        # ``forget``; value = number of those calls.
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        try:
            delay = min(math.ldexp(self.base_delay, exp), self.max_delay)
        except OverflowError:  # 2**exp beyond a float: long past the cap
            delay = self.max_delay
        if self.jitter:
            delay *= 1.0 - self.jitter * self._rng.random()
        return delay

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """One token bucket shared by all items (client-go ``BucketRateLimiter``, x/time/rate).

    Holds up to ``burst`` tokens, refilled at ``qps`` per second; it starts full. Each ``when``
    takes a token, reserving one in the future if none is left, and returns how long until that
    token exists. It is an overall limit, not per item: ``forget`` does nothing and
    ``num_requeues`` is always 0.

    Options:
        qps: refill rate, tokens per second. Default: 10.0.
        burst: bucket size. Default: 100.
        clock: monotonic time source. Default: the process's monotonic clock.
    """

    __slots__ = ("_clock", "_last", "_tokens", "burst", "qps")

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock = MONOTONIC) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("bucket limiter needs qps > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        # Invariant: ``_tokens`` (may be negative: reservations not yet covered) was exact at
        # ``_last``; between reservations it grows by ``qps`` per second up to ``burst``.
        self._tokens = float(burst)
        self._last = clock.now()

    def when(self, item: Hashable) -> float:
        now = self._clock.now()
        elapsed = max(0.0, now - self._last)
        tokens = min(float(self.burst), self._tokens + elapsed * self.qps) - 1.0
        self._tokens = tokens
        self._last = now
        return 0.0 if tokens >= 0 else -tokens / self.qps

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class FastSlowRateLimiter:
    """``fast_delay`` for the first ``max_fast_attempts`` attempts of an item, then ``slow_delay``.

    client-go ``ItemFastSlowRateLimiter``: useful for "retry quickly a few times, then poll".
    """

    __slots__ = ("_failures", "fast_delay", "max_fast_attempts", "slow_delay")

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        if fast_delay < 0 or slow_delay < 0 or max_fast_attempts < 0:
            raise ValueError("fast-slow limiter needs non-negative delays and attempts")
        self.fast_delay = fast_delay
        self.slow_delay = slow_delay
        self.max_fast_attempts = max_fast_attempts
        # Invariant: as ItemExponentialRateLimiter._failures.
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        n = self._failures.get(item, 0) + 1
        self._failures[item] = n
        return self.fast_delay if n <= self.max_fast_attempts else self.slow_delay

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class MaxOfRateLimiter:
    """The worst (longest) delay of several limiters; every limiter sees every call.

    client-go ``MaxOfRateLimiter``: ``when`` calls each limiter (so each records the attempt,
    and a bucket limiter spends a token even when another limiter's delay is longer);
    ``num_requeues`` is the maximum; ``forget`` forgets in all.
    """

    __slots__ = ("limiters",)

    def __init__(self, *limiters: RateLimiter[Hashable]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters: tuple[RateLimiter[Hashable], ...] = limiters

    def when(self, item: Hashable) -> float:
        return max([limiter.when(item) for limiter in self.limiters])

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


class WithMaxWaitRateLimiter:
    """Caps another limiter's delay at ``max_wait`` seconds (client-go's
    ``WithMaxWaitRateLimiter``)."""

    __slots__ = ("limiter", "max_wait")

    def __init__(self, limiter: RateLimiter[Hashable], max_wait: float) -> None:
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self.limiter = limiter
        self.max_wait = max_wait

    def when(self, item: Hashable) -> float:
        return min(self.limiter.when(item), self.max_wait)

    def forget(self, item: Hashable) -> None:
        self.limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.limiter.num_requeues(item)


def default_controller_rate_limiter(*, with_bucket: bool = False) -> RateLimiter[Hashable]:
    """The limiter a controller uses unless told otherwise: controller-runtime's default.

    Returns ``ItemExponentialRateLimiter(0.005, 1000.0)``: per-key exponential backoff from 5 ms
    to 1000 s, no jitter, no overall bucket. This is controller-runtime's default for its
    priority queue (``priorityqueue.New``), which is its default queue since v0.23 and which
    :class:`~aimctl.workqueue.Queue` is the counterpart of.

    Why no bucket: client-go's ``DefaultControllerRateLimiter`` adds a 10 qps / burst 100 token
    bucket shared by *all* keys. It couples unrelated keys: after a burst of N failures the last
    key waits about ``(N - 100) / 10`` s whatever its own history (10k failing keys put the tail
    16 minutes out, kubernetes/kubernetes#104554), and because ``MaxOf`` consults both limiters
    the bucket spends a token even when the per-key delay dominates.

    ``with_bucket=True`` returns that legacy client-go default,
    ``MaxOfRateLimiter(ItemExponentialRateLimiter(0.005, 1000.0), BucketRateLimiter(10, 100))``,
    which controller-runtime still uses with its legacy (non-priority) queue.
    """
    exponential = ItemExponentialRateLimiter(0.005, 1000.0)
    if not with_bucket:
        return exponential
    return MaxOfRateLimiter(exponential, BucketRateLimiter(10.0, 100))
