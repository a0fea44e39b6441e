"""The base queue: client-go's workqueue contract, with priorities, on asyncio.

Contract (client-go ``util/workqueue/doc.go``, the four properties):
- Fair: keys are handed out in order (highest priority first, FIFO within a priority; the exact
  order is in ``_priority.py``).
- Stingy: a key is never handed to two workers at once, and a key added many times before it is
  handed out is handed out once.
- Many producers and consumers; a key may be re-added while it is being processed: it is handed
  out again only after ``done``, never concurrently, and never lost.
- Shutdown: ``shut_down`` stops accepting keys and lets workers take what is queued, then
  ``get`` raises :class:`ShutDown`; ``shut_down_with_drain`` also waits for in-flight keys.

Why priorities live in the base rather than in a layer of their own: the ready set is the only
ordered structure a queue has, and a ready set holding only priority 0 is the one deque a plain
FIFO would use (``_priority.py``), so a separate plain base queue would be this class without
the ``priority`` argument. Delays (``_delaying.py``) and rate limiting (``_rate_limiting.py``)
are layers on top, as in client-go; ``Queue`` is the one type controllers use.

Vocabulary (client-go's): a key is *dirty* while it needs processing: *delayed* until its ready
time, then *due*. A due key is *queued* in the ready set unless it is being *processed*; then it
is *parked* until ``done`` queues it.

Per key the queue keeps only dict entries and one deque slot (no per-key objects): that is what
makes add/get/done cost little more than a plain deque-and-sets queue.

Not thread-safe: one event loop owns a queue. Scrape-time metrics read it without mutating it,
on the loop's thread (aimctl serves ``/metrics`` there).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from aimctl._internal.clock import Clock, MonotonicClock
from aimctl.workqueue._priority import EMPTY, ReadySet

__all__ = ["BaseQueue", "ShutDown"]

K = TypeVar("K", bound=Hashable)

# A heap slot of the delay layer: (ready_at, seq, key).
Slot = tuple[float, int, K]

# Fold pending durations into the histogram buckets every this many values: the metrics'
# Histogram.FOLD_AT (not imported: the queue does not depend on the metrics package).
FOLD_AT = 1024


class ShutDown(Exception):
    """Raised by ``await queue.get()`` once the queue is shut down and nothing is queued."""


class BaseQueue(Generic[K]):
    """client-go's ``workqueue.Interface`` plus priorities; see the module docstring.

    Not used on its own: :class:`~aimctl.workqueue.Queue` adds delays and rate limiting. The
    delay layer's state (``_delayed``, ``_waiting``) is declared here because every operation
    first releases delayed keys whose ready time has passed (``_release_due``), so that keys
    become available in ready-time order.
    """

    def __init__(self, *, clock: Clock, timed: bool) -> None:
        # time.monotonic itself for the process's monotonic clock: one call, not two.
        self._now: Callable[[], float] = (
            time.monotonic if type(clock) is MonotonicClock else clock.now
        )
        # Whether metrics are kept. Only then do add/get/done read the clock.
        self._timed = timed

        # Every dirty key -> its priority (only ever raised while the key stays dirty).
        self._dirty: dict[K, int] = {}
        # Dirty keys still waiting for their ready time -> their live heap slot in _waiting.
        # A dirty key not in here is due.
        self._delayed: dict[K, Slot[K]] = {}
        # Heap of slots (ready_at, seq, key); a slot is live iff _delayed[key] is it, others
        # are stale and skipped when popped.
        self._waiting: list[Slot[K]] = []
        # Due keys not being processed, in hand-out order. Invariant: a key is queued here iff
        # it is due and not in _processing.
        self._ready: ReadySet[K] = ReadySet()
        # Keys handed out by get and not yet done -> when (0.0 when untimed). A key here is
        # dirty only if it was re-added since (then it is parked, or delayed).
        self._processing: dict[K, float] = {}

        # Timed only: due key -> when it became due (start of workqueue_queue_duration).
        self._due_since: dict[K, float] = {}
        # Duration histogram fast paths (aimctl.metrics.Histogram.pending/fold), bound by the
        # metrics layer; only used when timed.
        self._queue_durations: list[float] = []
        self._work_durations: list[float] = []
        self._fold_queue_durations: Callable[[], None] = self._queue_durations.clear
        self._fold_work_durations: Callable[[], None] = self._work_durations.clear

        # Futures of get() calls waiting for a key, oldest first.
        self._getters: deque[asyncio.Future[None]] = deque()
        # Futures of shut_down_with_drain() calls waiting for _processing to empty.
        self._drainers: list[asyncio.Future[None]] = []
        self._shutting_down = False

    # -- producers -----------------------------------------------------------------------

    def add(self, item: K, priority: int = 0) -> None:
        """Mark ``item`` as needing processing, now.

        Guarantees: a key that is already dirty is not added twice: it keeps the higher of
        the two priorities, and becomes due now if it was delayed. A key being processed is
        handed out again after ``done``. Ignored once the queue is shutting down (client-go).
        """
        # ``priority`` is not keyword-only on purpose: CPython fills keyword-only defaults on
        # a slower path, and this is the hottest call of a controller. Pass it by name anyway.
        if self._waiting:  # empty once shut down
            self._release_due(self._now())
        dirty = self._dirty
        current = dirty.get(item)
        if current is not None:
            # The common duplicate returns here, before any other check.
            if (priority > current or self._delayed) and not self._shutting_down:
                self._readd(item, priority, current)
            return
        if self._shutting_down:
            return
        dirty[item] = priority
        if self._timed:
            self._due_since[item] = self._now()
        if item not in self._processing:
            self._ready.push(item, priority)
            if self._getters:
                self._wake_getter()

    # -- consumers -----------------------------------------------------------------------

    async def get(self) -> K:
        """Wait for the next key and hand it out; the caller owns it until ``done``.

        Caller obligations: call ``done(key)`` exactly once when finished, also on error,
        or the key is never handed out again (and ``shut_down_with_drain`` never returns).
        Raises: :class:`ShutDown` once the queue is shut down and nothing is queued.
        Cancellation: a cancellation point only while it waits; a cancelled ``get`` takes
        nothing (a key it was woken for goes to the next waiting ``get``).
        """
        if self._waiting:
            self._release_due(self._now())
        key = self._ready.pop()
        if key is EMPTY:
            key = await self._wait_for_key()
        del self._dirty[key]
        if self._timed:
            now = self._now()
            durations = self._queue_durations
            durations.append(now - self._due_since.pop(key))
            if len(durations) >= FOLD_AT:
                self._fold_queue_durations()
            self._processing[key] = now
        else:
            self._processing[key] = 0.0
        return key

    def done(self, item: K) -> None:
        """Finish processing ``item``; if it was re-added meanwhile, it is queued again now.

        Ignored for a key that is not being processed (never handed out, or done twice).
        """
        processing = self._processing
        started = processing.pop(item, None)
        if started is None:
            return
        if self._timed:
            now = self._now()
            durations = self._work_durations
            durations.append(now - started)
            if len(durations) >= FOLD_AT:
                self._fold_work_durations()
        if self._waiting:
            # Release what became due first, with item still processing: keys that were
            # ready earlier go ahead of it, and item itself, if due, is parked, not queued.
            processing[item] = started
            self._release_due(self._now())
            del processing[item]
        if item in self._dirty and item not in self._delayed:
            # Parked while processing: queue it now, at the tail of its priority.
            self._ready.push(item, self._dirty[item])
            if self._getters:
                self._wake_getter()
        if self._drainers and not self._processing:
            self._wake_drainers()

    # -- inspection ----------------------------------------------------------------------

    def __len__(self) -> int:
        """Due keys: queued, plus re-added while processing (they are owed a hand-out).

        Informational only (client-go: never gate add/get on it). A delayed key counts from
        its ready time on. Equals the sum of ``workqueue_depth`` over priorities.
        """
        if self._waiting:
            self._release_due(self._now())
        return len(self._dirty) - len(self._delayed)

    @property
    def shutting_down(self) -> bool:
        """True once ``shut_down`` or ``shut_down_with_drain`` was called."""
        return self._shutting_down

    # -- shutdown ------------------------------------------------------------------------

    def shut_down(self) -> None:
        """Stop accepting keys; ``get`` raises :class:`ShutDown` once nothing is queued.

        Guarantees: later adds are ignored; queued keys are still handed out (client-go), and
        so are keys parked behind ``done``, if a worker still calls ``get`` after that
        ``done``; delayed keys whose ready time has not come are dropped (client-go's delaying
        queue stops its loop); waiting ``get`` calls wake up; a pending
        ``shut_down_with_drain`` returns at once. Idempotent.
        """
        self._begin_shut_down()
        self._wake_drainers()

    async def shut_down_with_drain(self) -> None:
        """``shut_down``, then wait until no key is being processed.

        Caller obligations: workers must keep calling ``done``; this waits for them.
        Queued keys are still handed out to workers that keep calling ``get``; the wait ends
        the first moment nothing is in flight (client-go's ``ShutDownWithDrain``). A
        concurrent ``shut_down`` ends the wait. Cancellation: the queue stays shut down.
        """
        self._begin_shut_down()
        if not self._processing:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drainers.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._drainers:
                self._drainers.remove(waiter)

    # -- internals -----------------------------------------------------------------------

    def _readd(self, item: K, priority: int, current: int) -> None:
        # add() of a dirty key: keep the higher priority and the earlier ready time (now).
        if priority > current:
            self._dirty[item] = priority
            if item not in self._delayed and item not in self._processing:
                self._ready.move(item, current, priority)
        if item in self._delayed:
            self._make_due(item, self._now())

    def _make_due(self, key: K, since: float) -> None:
        # A delayed key becomes due (its heap slot, if any, becomes stale).
        del self._delayed[key]
        if not self._delayed:
            # Only stale slots can be left: drop them, so that operations stop checking the
            # clock for a heap with nothing live in it.
            self._waiting.clear()
        if self._timed:
            self._due_since[key] = since
        if key not in self._processing:
            self._ready.push(key, self._dirty[key])
            if self._getters:
                self._wake_getter()

    def _release_due(self, now: float) -> None:
        """Make due the delayed keys whose ready time is ``<= now`` (the delay layer's)."""

    def _before_wait(self) -> None:
        """Hook: called before a ``get`` sleeps (the delay layer arms its timer here)."""

    def _begin_shut_down(self) -> None:
        if self._waiting:
            self._release_due(self._now())
        self._shutting_down = True
        for key in self._delayed:
            del self._dirty[key]
        self._delayed.clear()
        self._waiting.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    async def _wait_for_key(self) -> K:
        loop = asyncio.get_running_loop()
        while True:
            if self._shutting_down:
                raise ShutDown
            self._before_wait()
            getter: asyncio.Future[None] = loop.create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled():
                    # Woken for a key but cancelled before taking it: pass the wake-up on.
                    self._wake_getter()
                elif getter in self._getters:
                    self._getters.remove(getter)
                raise
            if self._waiting:
                self._release_due(self._now())
            key = self._ready.pop()
            if key is not EMPTY:
                return key

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def _wake_drainers(self) -> None:
        for waiter in self._drainers:
            if not waiter.done():
                waiter.set_result(None)
        self._drainers.clear()

    # -- read-only views for scrape-time metrics -----------------------------------------

    def _depth_by_priority(self) -> dict[int, int]:
        """Due keys per priority, counting delayed keys whose time has passed. No mutation:
        a scrape may come between two operations (on the loop's thread)."""
        now = self._now()
        dirty = self._dirty
        # Count every dirty key in C, then take out the delayed ones not yet due (usually few):
        # a scrape runs on the event loop, and 100k dirty keys must not stall it.
        depth = Counter(dirty.values())
        for key, slot in self._delayed.items():
            if slot[0] > now:
                depth[dirty[key]] -= 1
        return dict(depth)

    def _due_count(self) -> int:
        """``len`` as a scrape sees it: delayed keys count from their ready time, no mutation."""
        now = self._now()
        return len(self._dirty) - sum(1 for slot in self._delayed.values() if slot[0] > now)

    def _processing_ages(self) -> list[float]:
        now = self._now()
        return [now - started for started in self._processing.values()]
