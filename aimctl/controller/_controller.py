"""The controller: N workers taking keys from one queue and running the reconciler.

Guarantees (from the queue's contract): one key is never reconciled by two workers at once; many
events for a key while it waits collapse into one reconcile; a key re-added while it is being
reconciled runs again after the current reconcile finishes.

Outcome handling follows controller-runtime's ``reconcileHandler``
(kubernetes-sigs/controller-runtime: pkg/internal/controller/controller.go):

=====================================  =========================================  ==================
reconcile returns / raises             queue action                               result label
=====================================  =========================================  ==================
``Result()`` / ``None``                forget (reset backoff)                     ``success``
``Result(requeue_after=d)``, ``d > 0``  forget, then ``add_after(d)``              ``requeue_after``
``Result(requeue=True)``               ``add_rate_limited`` (backoff grows)       ``requeue``
:class:`TerminalError`                 forget; not requeued                       ``error``
any other exception / timeout          ``add_rate_limited`` (per-key backoff)     ``error``
=====================================  =========================================  ==================

``requeue_after=0`` is "not set" (``success``), as ``RequeueAfter > 0`` is the test upstream:
an immediate unthrottled requeue would be a hot loop.

Deviation: controller-runtime does not ``Forget`` on a terminal error; we do, so that the next
event-driven attempt after the user fixes their input starts from the base delay.

Workers are supervised. Only the worker's own cancellation stops it: a ``CancelledError`` that
reaches the worker while its task has no pending cancellation (``Task.cancelling() == 0``) came
from something the reconciler awaited (a task someone else cancelled) and is an ordinary
reconcile error. A worker task that ends while the controller runs (a bug in the loop, or its
task cancelled from outside) is logged, counted in ``aimctl_controller_worker_restarts_total``
and restarted (at once, then with backoff if it keeps dying without finishing a reconcile); the
key it held goes back to the queue. :meth:`Controller.workers_alive` is what ``/healthz`` asks.

Sources: besides informer handlers (attached by the builder), a controller may run source
coroutines (a channel of external events): started with the workers, cancelled by
:meth:`stop`, restarted with backoff if they raise.

Cancellation and shutdown: :meth:`stop` shuts the queue down, lets in-flight reconciles finish
within the drain timeout, then cancels whatever is left and waits for it at most
``abandon_after`` seconds more: a reconcile that swallows its cancellation is logged with its key
and abandoned (still running, no longer waited for). Keys still queued are not reconciled, as in
controller-runtime, and a reconcile cancelled at the deadline is not requeued: the next process
(or leader) reconciles everything from its initial list anyway.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import structlog

from aimctl.controller._metrics import ControllerMetrics
from aimctl.controller._reconcile import (
    ReconcileFunc,
    Reconciler,
    Request,
    Result,
    TerminalError,
)
from aimctl.workqueue import Queue, ShutDown

if TYPE_CHECKING:
    from aimctl.metrics import Counter, Gauge, Histogram

__all__ = ["Controller", "SourceFunc"]

SourceFunc = Callable[[], Awaitable[None]]
"""A source: a coroutine function that feeds the controller's queue until cancelled."""

_RESTART_BASE = 0.05  # second and later consecutive restarts of one worker slot back off
_RESTART_MAX = 10.0


class _ReconcileTimeout(Exception):
    pass


log = structlog.get_logger("aimctl.controller")


def _cancelled_for_us() -> bool:
    """True when the running task has a pending cancellation, i.e. it was asked to stop.

    A CancelledError raised while this is False was not aimed at the task: it came out of an
    await on a future or task that someone else cancelled (Python 3.11 ``Task.cancelling``).
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Controller:
    """Runs ``reconciler`` over ``queue`` with ``max_concurrent_reconciles`` workers.

    Build one with :class:`aimctl.controller.ControllerBuilder` rather than directly.

    Args:
        sources: coroutine functions run with the workers (see the module docstring).
            Default: none (informer handlers feed the queue).
    """

    def __init__(
        self,
        name: str,
        reconciler: Reconciler | ReconcileFunc,
        queue: Queue[Request],
        *,
        max_concurrent_reconciles: int = 1,
        reconcile_timeout: float | None = None,
        metrics: ControllerMetrics | None = None,
        sources: Sequence[SourceFunc] = (),
    ) -> None:
        if max_concurrent_reconciles < 1:
            raise ValueError("max_concurrent_reconciles must be >= 1")
        self.name = name
        self.queue = queue
        self.max_concurrent_reconciles = max_concurrent_reconciles
        self.reconcile_timeout = reconcile_timeout
        fn = getattr(reconciler, "reconcile", reconciler)
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"controller {name}: reconcile must be an async function")
        self._reconcile: ReconcileFunc = fn
        self._sources = list(sources)
        self._source_tasks: list[asyncio.Task[None]] = []
        # One task per worker slot; a restart replaces the slot's task.
        self._workers: list[asyncio.Task[None]] = []
        # Consecutive deaths of each slot without a finished reconcile in between.
        self._deaths = [0] * max_concurrent_reconciles
        self._current: dict[asyncio.Task[None], Request] = {}  # the key each worker holds
        self._active = 0
        self._started = False
        self._stopping = False
        m = metrics
        self._m_success: Counter | None = None
        if m is not None:
            self._m_success = m.total.labels(name, "success")
            self._m_error = m.total.labels(name, "error")
            self._m_requeue_after = m.total.labels(name, "requeue_after")
            self._m_requeue = m.total.labels(name, "requeue")
            self._m_errors = m.errors.labels(name)
            self._m_terminal = m.terminal_errors.labels(name)
            m.panics.labels(name)  # exported at 0: Python has exceptions, not panics
            self._m_timeouts = m.timeouts.labels(name)
            self._m_time: Histogram = m.time.labels(name)
            self._m_restarts = m.worker_restarts.labels(name)
            m.handler_errors.labels(name)  # exported at 0, bumped by the builder's handlers
            m.max_concurrent.labels(name).set(max_concurrent_reconciles)
            active: Gauge = m.active_workers.labels(name)
            active.set_function(lambda: self._active)

    @property
    def in_flight(self) -> int:
        """Reconciles running right now."""
        return self._active

    def workers_alive(self) -> bool:
        """False only while the controller runs (started, not stopping) with no live worker
        task: it would never reconcile again. Backs the manager's ``/healthz``."""
        if not self._started or self._stopping or self.queue.shutting_down:
            return True
        return any(not t.done() for t in self._workers)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sources and the workers. Informer handlers may already feed the queue."""
        if self._started:
            raise RuntimeError(f"controller {self.name} already started")
        self._started = True
        log.info(
            "Starting workers", controller=self.name, worker_count=self.max_concurrent_reconciles
        )
        with structlog.contextvars.bound_contextvars(controller=self.name):
            self._source_tasks = [
                asyncio.create_task(self._run_source(src), name=f"{self.name}-source-{i}")
                for i, src in enumerate(self._sources)
            ]
        self._workers = [self._spawn(i, 0.0) for i in range(self.max_concurrent_reconciles)]

    async def wait(self) -> None:
        """Wait until all workers have exited (after :meth:`stop` or queue shutdown)."""
        while live := [t for t in self._workers if not t.done()]:
            await asyncio.wait(live)

    async def stop(self, drain_timeout: float | None = 30.0, *, abandon_after: float = 5.0) -> None:
        """Stop taking work; let in-flight reconciles finish for up to ``drain_timeout`` s.

        ``drain_timeout=0`` cancels in-flight reconciles at once (used when leadership is lost);
        ``None`` waits for them without a limit. Cancelled reconciles get ``abandon_after``
        seconds to end; one that swallows its cancellation is logged and abandoned, so this
        returns within ``drain_timeout + abandon_after`` seconds.
        """
        self._stopping = True
        self.queue.shut_down()
        for t in self._source_tasks:
            t.cancel()
        live = {t for t in (*self._workers, *self._source_tasks) if not t.done()}
        try:
            workers = {t for t in self._workers if not t.done()}
            if workers and drain_timeout != 0:
                await asyncio.wait(workers, timeout=drain_timeout)
        finally:
            for t in live:
                t.cancel()
        live = {t for t in live if not t.done()}
        stuck: set[asyncio.Task[None]] = set()
        if live:
            _, stuck = await asyncio.wait(live, timeout=abandon_after)
        if stuck:
            log.error(
                "Reconciles ignored their cancellation; abandoning them",
                controller=self.name,
                requests=sorted(str(self._current[t]) for t in stuck if t in self._current),
                tasks=sorted(t.get_name() for t in stuck),
                waited=abandon_after,
            )
            return
        log.info("All workers finished", controller=self.name)

    # -- supervision -----------------------------------------------------------------------

    def _spawn(self, slot: int, delay: float) -> asyncio.Task[None]:
        task = asyncio.create_task(self._worker(slot, delay), name=f"{self.name}-worker-{slot}")
        task.add_done_callback(functools.partial(self._on_worker_exit, slot))
        return task

    def _on_worker_exit(self, slot: int, task: asyncio.Task[None]) -> None:
        if self._stopping or self.queue.shutting_down:
            return  # the normal end
        if task.cancelled():
            reason, exc = "its task was cancelled from outside", None
        else:
            exc = task.exception()
            reason = "it raised" if exc is not None else "it returned"
        self._deaths[slot] += 1
        n = self._deaths[slot]
        delay = 0.0 if n == 1 else min(_RESTART_BASE * 2 ** (n - 2), _RESTART_MAX)
        log.error(
            "Worker died; restarting it",
            controller=self.name,
            worker=slot,
            reason=reason,
            restart_in=delay,
            exc_info=exc,
        )
        if self._m_success is not None:
            self._m_restarts.value += 1
        self._workers[slot] = self._spawn(slot, delay)

    async def _run_source(self, source: SourceFunc) -> None:
        delay = _RESTART_BASE
        while True:
            try:
                await source()
                return
            except asyncio.CancelledError as err:
                if _cancelled_for_us():
                    raise
                log.error("Source failed (a cancellation not aimed at it)", exc_info=err)
            except Exception as err:
                log.error("Source failed; restarting it", retry_in=delay, exc_info=err)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RESTART_MAX)

    # -- the loop --------------------------------------------------------------------------

    async def _worker(self, slot: int, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        me = asyncio.current_task()
        assert me is not None
        while True:
            try:
                req = await self.queue.get()
            except ShutDown:
                return
            try:
                if self._stopping:
                    return  # queued work is dropped on stop; only in-flight reconciles finish
                self._current[me] = req
                try:
                    await self._process(req)
                except BaseException:
                    # The worker dies (its own cancellation, or a bug past _process's handling).
                    # Unless the controller is stopping, the supervisor restarts it, and the
                    # key it held must not be lost with it.
                    if not self._stopping:
                        self.queue.add_rate_limited(req)
                    raise
                self._deaths[slot] = 0
            finally:
                self._current.pop(me, None)
                self.queue.done(req)
            # A reconcile served from the cache never suspends; without this a worker would
            # drain a whole resync while watches, probes and /metrics wait.
            await asyncio.sleep(0)

    async def _process(self, req: Request) -> None:
        reconcile_id = str(uuid.uuid4())
        with structlog.contextvars.bound_contextvars(
            controller=self.name, namespace=req.namespace, name=req.name, reconcileID=reconcile_id
        ):
            self._active += 1
            start = time.perf_counter()
            try:
                result = await self._call(req)
            except TerminalError as err:
                self.queue.forget(req)
                self._count_error(terminal=True)
                log.error("Reconciler error (terminal, not retried)", error=str(err), exc_info=err)
            except _ReconcileTimeout as err:
                self.queue.add_rate_limited(req)
                self._count_error(timeout=True)
                log.error(
                    "Reconcile timed out",
                    timeout=self.reconcile_timeout,
                    retries=self.queue.num_requeues(req),
                    exc_info=err,
                )
            except asyncio.CancelledError as err:
                if _cancelled_for_us():
                    raise  # aimed at this worker: it ends (see _worker for the key)
                # Raised by something the reconciler awaited (a task someone else cancelled):
                # an ordinary failure, and the worker lives on.
                self.queue.add_rate_limited(req)
                self._count_error()
                log.error(
                    "Reconciler error (a cancellation not aimed at the worker)",
                    retries=self.queue.num_requeues(req),
                    exc_info=err,
                )
            except Exception as err:
                self.queue.add_rate_limited(req)
                self._count_error()
                log.error("Reconciler error", retries=self.queue.num_requeues(req), exc_info=err)
            else:
                self._handle_result(req, result)
            finally:
                self._active -= 1
                if self._m_success is not None:
                    self._m_time.observe(time.perf_counter() - start)

    def _handle_result(self, req: Request, result: Result | None) -> None:
        if result is not None and result.requeue_after:  # only a positive delay requeues
            self.queue.forget(req)
            self.queue.add_after(req, result.requeue_after)
            if self._m_success is not None:
                self._m_requeue_after.value += 1
        elif result is not None and result.requeue:
            self.queue.add_rate_limited(req)  # not forgotten: the backoff grows, as upstream
            if self._m_success is not None:
                self._m_requeue.value += 1
        else:
            self.queue.forget(req)
            if self._m_success is not None:
                self._m_success.value += 1

    async def _call(self, req: Request) -> Result | None:
        if self.reconcile_timeout is None:
            return await self._reconcile(req)
        deadline = asyncio.timeout(self.reconcile_timeout)
        try:
            async with deadline:
                return await self._reconcile(req)
        except TimeoutError as err:
            # Only our own deadline is a reconcile timeout; a TimeoutError raised inside the
            # reconciler (an HTTP timeout, say) is an ordinary error.
            if deadline.expired():
                raise _ReconcileTimeout(f"reconcile exceeded {self.reconcile_timeout}s") from err
            raise

    def _count_error(self, *, terminal: bool = False, timeout: bool = False) -> None:
        if self._m_success is None:
            return
        self._m_error.value += 1
        self._m_errors.value += 1
        if terminal:
            self._m_terminal.value += 1
        if timeout:
            self._m_timeouts.value += 1
