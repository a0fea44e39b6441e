"""Rate limiting: per-key backoff on top of delays. ``Queue`` is the type controllers use.

``add_rate_limited(key)`` is ``add_after(key, limiter.when(key))``; ``forget`` and
``num_requeues`` delegate to the limiter (client-go ``rate_limiting_queue.go``). The class also
wires the optional metrics, so it is where a queue is configured.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

from prometheus_client.registry import CollectorRegistry

from aimctl._internal.clock import MONOTONIC, Clock
from aimctl.workqueue._delaying import DelayingQueue
from aimctl.workqueue._limiters import RateLimiter, default_controller_rate_limiter
from aimctl.workqueue._metrics import register_queue_metrics

__all__ = ["LOW_PRIORITY", "Queue"]

K = TypeVar("K", bound=Hashable)

# controller-runtime handler.LowPriority: initial-list and resync events are added at this
# priority so that real changes are reconciled first after a restart.
LOW_PRIORITY = -100


class Queue(DelayingQueue[K]):
    """The controller queue: client-go's contract, delays, per-key rate limiting, priorities.

    Guarantees:
    - A key is never handed to two workers at once; adds of a key that is already waiting
      collapse into one hand-out; a key re-added while it is processed is handed out again
      after ``done`` (never concurrently, never lost).
    - Highest priority first, FIFO within a priority (in the order keys became available).
      A key added twice keeps the higher priority and the earlier ready time.
    - ``add_after``/``add_rate_limited`` delay a key without a task per key (one timer).
    - With ``name`` and ``registry``, controller-runtime's ``workqueue_*`` metrics are exported
      on that registry, computed at scrape time; without them, no metric costs anything.

    Not guaranteed: which of several waiting ``get`` calls receives a key (they are woken
    oldest first, but a ``get`` that finds a key ready takes it without waiting); progress for
    low priorities while higher ones keep the workers busy (controller-runtime#3496 has the
    same starvation).

    Differences from controller-runtime's priority queue, on purpose: ``shut_down`` keeps
    handing out queued keys until none is left (client-go's contract; controller-runtime
    returns shutdown at once); keys that become due join the FIFO of their priority in
    ready-time order (controller-runtime sorts every never-delayed key before every delayed
    one); a raised priority joins the tail of its new priority (controller-runtime keeps the
    key's first-add position).

    Caller obligations: ``done(key)`` after every ``get``; ``forget(key)`` once a key succeeds
    (or its backoff keeps growing: the limiter counts every ``add_rate_limited``).

    Cancellation and shutdown: ``get`` is the only cancellation point besides
    ``shut_down_with_drain``; everything else is synchronous. See ``shut_down``.

    Options (keyword-only):
        name: queue name, the ``name`` and ``controller`` metric labels. Default: None (no
            metrics).
        rate_limiter: decides ``add_rate_limited`` delays. Default:
            :func:`default_controller_rate_limiter` (per-key exponential, 5 ms to 1000 s).
        registry: where metrics are registered; never the global default. Default: None (no
            metrics).
        clock: monotonic time source. Default: the process's monotonic clock.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        rate_limiter: RateLimiter[K] | None = None,
        registry: CollectorRegistry | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        timed = bool(name) and registry is not None
        super().__init__(clock=clock, timed=timed)
        self.name = name
        self._limiter: RateLimiter[K] = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter()
        )
        if name and registry is not None:
            sinks = register_queue_metrics(registry, name, _Source(self))
            self._queue_durations = sinks.queue_duration.pending
            self._fold_queue_durations = sinks.queue_duration.fold
            self._work_durations = sinks.work_duration.pending
            self._fold_work_durations = sinks.work_duration.fold

    def add_rate_limited(self, item: K, priority: int = 0) -> None:
        """``add_after(item, rate_limiter.when(item))``: back off according to the limiter.

        Ignored once shutting down (the limiter is not consulted then).
        """
        if self._shutting_down:
            return
        self.add_after(item, self._limiter.when(item), priority=priority)

    def forget(self, item: K) -> None:
        """Clear ``item``'s history in the limiter. Only that: ``done`` is still owed."""
        self._limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        """How many times ``item`` was rate-limited since its last ``forget``."""
        return self._limiter.num_requeues(item)

    def __repr__(self) -> str:
        return (
            f"<Queue {self.name!r} dirty={len(self._dirty)} delayed={len(self._delayed)} "
            f"processing={len(self._processing)}>"
        )


class _Source:
    """The read-only view the metrics scrape (a ``MetricsSource``)."""

    __slots__ = ("_queue",)

    def __init__(self, queue: Queue[K]) -> None:
        self._queue: Queue[Hashable] = queue  # type: ignore[assignment]

    def due(self) -> int:
        return self._queue._due_count()

    def retries_total(self) -> int:
        return self._queue._retries

    def depth_by_priority(self) -> Mapping[int, int]:
        return self._queue._depth_by_priority()

    def processing_ages(self) -> Iterable[float]:
        return self._queue._processing_ages()
