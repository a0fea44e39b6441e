"""The controller: N workers taking keys from one queue and running the reconciler.

Guarantees (from the queue's contract): one key is never reconciled by two workers at once; many
events for a key while it waits collapse into one reconcile; a key re-added while it is being
reconciled runs again after the current reconcile finishes.

Outcome handling follows controller-runtime's ``reconcileHandler``:

================================  =========================================  ==================
reconcile returns / raises        queue action                               result label
================================  =========================================  ==================
``Result()`` / ``None``           forget (reset backoff)                     ``success``
``Result(requeue_after=d)``       forget, then ``add_after(d)``              ``requeue_after``
:class:`TerminalError`            forget; not requeued                       ``error``
any other exception / timeout     ``add_rate_limited`` (per-key backoff)     ``error``
================================  =========================================  ==================

Deviation: controller-runtime does not ``Forget`` on a terminal error; we do, so that the next
event-driven attempt after the user fixes their input starts from the base delay.

Cancellation and shutdown: :meth:`stop` shuts the queue down, lets in-flight reconciles finish
within the drain timeout, then cancels whatever is left. Keys still queued are not reconciled, as
in controller-runtime, and a reconcile cancelled at the deadline is not requeued: the next process
(or leader) reconciles everything from its initial list anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
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

__all__ = ["Controller"]


class _ReconcileTimeout(Exception):
    pass


log = structlog.get_logger("aimctl.controller")


class Controller:
    """Runs ``reconciler`` over ``queue`` with ``max_concurrent_reconciles`` workers.

    Build one with :class:`aimctl.controller.ControllerBuilder` rather than directly.
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
        self._workers: list[asyncio.Task[None]] = []
        self._active = 0
        self._stopping = False
        m = metrics
        self._m_success: Counter | None = None
        if m is not None:
            self._m_success = m.total.labels(name, "success")
            self._m_error = m.total.labels(name, "error")
            self._m_requeue_after = m.total.labels(name, "requeue_after")
            m.total.labels(name, "requeue")  # pre-initialised to 0, as controller-runtime does
            self._m_errors = m.errors.labels(name)
            self._m_terminal = m.terminal_errors.labels(name)
            m.panics.labels(name)  # exported at 0: Python has exceptions, not panics
            self._m_timeouts = m.timeouts.labels(name)
            self._m_time: Histogram = m.time.labels(name)
            m.max_concurrent.labels(name).set(max_concurrent_reconciles)
            active: Gauge = m.active_workers.labels(name)
            active.set_function(lambda: self._active)

    @property
    def in_flight(self) -> int:
        """Reconciles running right now."""
        return self._active

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers. Sources (informer handlers) must already feed the queue."""
        if self._workers:
            raise RuntimeError(f"controller {self.name} already started")
        log.info(
            "Starting workers", controller=self.name, worker_count=self.max_concurrent_reconciles
        )
        self._workers = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
            for i in range(self.max_concurrent_reconciles)
        ]

    async def wait(self) -> None:
        """Wait until all workers have exited (after :meth:`stop` or queue shutdown)."""
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)

    async def stop(self, drain_timeout: float | None = 30.0) -> None:
        """Stop taking work; let in-flight reconciles finish for up to ``drain_timeout`` s.

        ``drain_timeout=0`` cancels in-flight reconciles at once (used when leadership is lost).
        """
        self._stopping = True
        self.queue.shut_down()
        if not self._workers:
            return
        if drain_timeout != 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.wait()), drain_timeout)
        for t in self._workers:
            t.cancel()
        await self.wait()
        log.info("All workers finished", controller=self.name)

    # -- the loop --------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            try:
                req = await self.queue.get()
            except ShutDown:
                return
            try:
                if self._stopping:
                    return  # queued work is dropped on stop; only in-flight reconciles finish
                await self._process(req)
            finally:
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
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.queue.add_rate_limited(req)
                self._count_error()
                log.error("Reconciler error", retries=self.queue.num_requeues(req), exc_info=err)
            else:
                self.queue.forget(req)
                if result is not None and result.requeue_after is not None:
                    self.queue.add_after(req, result.requeue_after)
                    if self._m_success is not None:
                        self._m_requeue_after.value += 1
                elif self._m_success is not None:
                    self._m_success.value += 1
            finally:
                self._active -= 1
                if self._m_success is not None:
                    self._m_time.observe(time.perf_counter() - start)

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
