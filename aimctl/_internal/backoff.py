"""Jittered exponential backoff with a reset after a healthy period.

Owns one piece of state: how many consecutive failures were seen and when the last one started
waiting. It does not sleep; callers ask for the next delay and sleep themselves (so the delay is
testable and the caller decides what a cancellation point is).

The numbers default to client-go's reflector backoff (``tools/cache/reflector.go``), which
kube-rs's ``DefaultBackoff`` copies: the nominal delay starts at 0.8 s, doubles per failure and is
capped at 30 s; a jitter factor of 1.0 adds up to 100 % on top (so a delay lies in
``[nominal, nominal * (1 + jitter))``); after 120 s without a failure the next failure starts
again from 0.8 s. Used by the informers' reflector and meant for leader election too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from aimctl._internal.clock import MONOTONIC, Clock

__all__ = ["Backoff", "BackoffPolicy"]


@dataclass(frozen=True)
class BackoffPolicy:
    """How delays grow.

    Attributes:
        initial: the nominal first delay in seconds. Default: 0.8.
        cap: the largest nominal delay in seconds (jitter is added on top). Default: 30.
        factor: growth per consecutive failure. Default: 2.0.
        jitter: up to this fraction of the nominal delay is added at random. Default: 1.0.
        reset_after: a failure more than this many seconds after the previous one starts again
            from ``initial``. Default: 120.
    """

    initial: float = 0.8
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0
    reset_after: float = 120.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap < self.initial:
            raise ValueError("backoff needs 0 < initial <= cap")
        if self.factor < 1 or self.jitter < 0 or self.reset_after < 0:
            raise ValueError("backoff needs factor >= 1, jitter >= 0, reset_after >= 0")


class Backoff:
    """Consecutive-failure counter that turns failures into delays.

    Guarantees:
        - ``next_delay()`` is in ``[nominal, nominal * (1 + jitter))`` where nominal is
          ``min(cap, initial * factor**(n-1))`` for the n-th consecutive failure.
        - A failure more than ``reset_after`` seconds (on ``clock``) after the previous failure
          counts as the first again; ``reset()`` does the same at once.

    Caller obligations:
        Call ``next_delay()`` once per failure, then wait that long. Not thread-safe; one owner.
    """

    def __init__(
        self,
        policy: BackoffPolicy | None = None,
        *,
        clock: Clock = MONOTONIC,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or BackoffPolicy()
        self._clock = clock
        self._rng = rng or random.Random()
        self._failures = 0  # consecutive failures since the last reset
        self._last_failure: float | None = None  # clock time of the last next_delay() call

    @property
    def failures(self) -> int:
        """Consecutive failures counted so far (0 after a reset)."""
        return self._failures

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next attempt, in seconds."""
        p = self.policy
        now = self._clock.now()
        if self._last_failure is not None and now - self._last_failure > p.reset_after:
            self._failures = 0
        self._last_failure = now
        nominal = min(p.cap, p.initial * p.factor**self._failures)
        if nominal < p.cap:
            self._failures += 1
        return nominal * (1.0 + p.jitter * self._rng.random())

    def reset(self) -> None:
        """Forget past failures: the next delay is ``initial`` again."""
        self._failures = 0
        self._last_failure = None
