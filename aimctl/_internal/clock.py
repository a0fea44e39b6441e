"""Time sources.

Durations are always measured on a monotonic clock (wall-clock jumps must never shorten a
backoff or expire a lease). Components take a :class:`Clock` so tests can substitute one.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock", "ManualClock", "MONOTONIC"]


class Clock(Protocol):
    """A source of monotonic seconds."""

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        ...


class MonotonicClock:
    """The process's monotonic clock (``time.monotonic``)."""

    def now(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; for deterministic tests."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds


MONOTONIC: Clock = MonotonicClock()
