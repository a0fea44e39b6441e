"""Delays: ``add_after(key, delay)`` on top of the base queue, with one timer for the queue.

Owns the delayed keys (a heap of ready times) and the single loop timer that wakes the queue
at the earliest one. Fed by ``add_after`` (and ``add_rate_limited`` above it); feeds the base
queue's ready set when a ready time passes.

Contract:
- A key added with a delay becomes due at ``now + delay`` (``delay <= 0`` is a plain ``add``).
- A key added again keeps the *earlier* ready time and the higher priority; a plain ``add``
  makes a delayed key due now. Delayed keys count in ``len`` and ``workqueue_depth`` only
  from their ready time on.
- Keys whose ready time passed become due in ready-time order (ties in the order they were
  scheduled) before any operation that could order them (``add``, ``add_after``, ``get``,
  ``done``, ``len``, ``shut_down``), so FIFO within a priority follows ready times.
- ``workqueue_retries_total`` counts every ``add_after`` with a delay ``> 0`` that the queue
  accepted (controller-runtime's priority queue: "adds with non-zero delay"), whether or not
  the key was already dirty. client-go's delaying queue also counts zero delays; we do not,
  because a zero delay is a plain ``add``.

Timer: one ``loop.call_later`` handle for the whole queue, armed for the earliest ready time and
re-armed only when an earlier one arrives. It is clamped to ``MAX_WAIT`` seconds (client-go's
10 s "insurance" against a stuck timer), and the queue also reads its clock on every operation,
so a clock that does not follow the loop's time (``ManualClock`` in tests) releases keys at
the next operation after it moves (``len(q)`` is enough).
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Hashable
from typing import TypeVar

from aimctl._internal.clock import Clock
from aimctl.workqueue._queue import BaseQueue

__all__ = ["MAX_WAIT", "DelayingQueue"]

K = TypeVar("K", bound=Hashable)

# client-go delaying_queue.go: wake at least this often, in case a timer is missed or the
# clock and the loop disagree.
MAX_WAIT = 10.0


class DelayingQueue(BaseQueue[K]):
    """The base queue plus ``add_after``; see the module docstring."""

    def __init__(self, *, clock: Clock, timed: bool) -> None:
        super().__init__(clock=clock, timed=timed)
        # Tie-breaker for equal ready times: FIFO in scheduling order; it also keeps keys out
        # of slot comparisons.
        self._seq = 0
        # workqueue_retries_total: accepted add_after calls with delay > 0.
        self._retries = 0
        # The one timer, and the clock time it was armed for (inf when unarmed).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def add_after(self, item: K, delay: float, priority: int = 0) -> None:
        """Mark ``item`` as needing processing ``delay`` seconds from now.

        Guarantees: an earlier ready time or a higher priority already recorded for ``item``
        wins; ``delay <= 0`` is ``add(item, priority=priority)``. Ignored once shutting down.
        """
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item, priority=priority)
            return
        self._retries += 1
        now = self._now()
        if self._waiting:
            self._release_due(now)
        ready_at = now + delay
        current = self._dirty.get(item)
        if current is None:
            self._dirty[item] = priority
            self._schedule(item, ready_at)
            return
        if priority > current:
            self._dirty[item] = priority
            if item not in self._delayed and item not in self._processing:
                self._ready.move(item, current, priority)
        slot = self._delayed.get(item)
        if slot is not None and ready_at < slot[0]:
            self._schedule(item, ready_at)  # the old slot becomes stale

    # -- internals -----------------------------------------------------------------------

    def _schedule(self, key: K, ready_at: float) -> None:
        heap = self._waiting
        # Stale slots are skipped when popped; rebuild when they outnumber live ones, so the
        # heap stays proportional to the delayed keys.
        if len(heap) > 64 and len(heap) > 2 * len(self._delayed):
            delayed = self._delayed
            heap[:] = [slot for slot in heap if delayed.get(slot[2]) is slot]
            heapq.heapify(heap)
        slot = (ready_at, self._seq, key)
        self._seq += 1
        self._delayed[key] = slot
        heapq.heappush(heap, slot)
        if ready_at < self._timer_at:
            self._arm_timer()

    def _release_due(self, now: float) -> None:
        heap = self._waiting
        delayed = self._delayed
        while heap and heap[0][0] <= now:
            slot = heapq.heappop(heap)
            if delayed.get(slot[2]) is slot:
                self._make_due(slot[2], slot[0])

    def _arm_timer(self) -> None:
        """(Re-)arm the one timer for the earliest waiting ready time, if a loop is running."""
        if not self._waiting:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # added outside a loop: the first waiting get() arms it
            return
        if self._timer is not None:
            self._timer.cancel()
        now = self._now()
        delay = min(max(self._waiting[0][0] - now, 0.0), MAX_WAIT)
        self._timer_at = now + delay
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        try:
            self._release_due(self._now())
        finally:
            # Re-armed even if releasing raised: an unarmed timer would strand every delayed key.
            self._arm_timer()

    def _before_wait(self) -> None:
        if self._waiting and self._timer is None:
            self._arm_timer()

    def _begin_shut_down(self) -> None:
        super()._begin_shut_down()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
