"""Runnables: user tasks the manager starts, stops and supervises with its controllers.

controller-runtime's ``mgr.Add(Runnable)`` with ``LeaderElectionRunnable.NeedLeaderElection()``
(kubernetes-sigs/controller-runtime: pkg/manager/runnable_group.go), in asyncio's shape:

- A runnable is an async callable ``async def start(stop: asyncio.Event) -> None``, or an object
  with that ``start`` method. It runs until ``stop`` is set, then returns; it may clean up on
  its way out.
- ``need_leader_election`` (an attribute or property of the object; default True, as in
  controller-runtime) says whether it may run only while this process leads.

Lifecycle, owned by :class:`aimctl.manager.Manager`:

- Every runnable starts after the caches have synced; one that needs leader election starts
  only once the lease is acquired (with the controllers), the others also on standbys.
- Returning before ``stop`` is set is allowed: the runnable is simply done (controller-runtime
  treats a nil return the same way). Raising stops the manager, which shuts down as on
  :meth:`~aimctl.manager.Manager.stop` and then raises that exception from ``run()``.
- On shutdown ``stop`` is set; a runnable still running when ``graceful_shutdown_timeout``
  ends is cancelled. When the lease is lost there is no grace: the runnables are cancelled
  at once (``stop`` set too), since another replica may already lead.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import structlog

__all__ = ["Runnable", "RunnableFunc"]

log = structlog.get_logger("aimctl.manager")


@runtime_checkable
class Runnable(Protocol):
    """An object the manager runs: ``start(stop)`` returns once ``stop`` is set.

    An optional ``need_leader_election: bool`` attribute (default True) set to False lets it
    run on standbys too (a cache warmer, a metrics exporter).

    Cancellation: ``start`` is cancelled when it outlives the graceful shutdown timeout, or at
    once when the lease is lost; it must let the ``CancelledError`` propagate."""

    async def start(self, stop: asyncio.Event) -> None: ...


RunnableFunc = Callable[[asyncio.Event], Awaitable[None]]
"""A plain ``async def start(stop: asyncio.Event) -> None``; it needs leader election unless
added with ``need_leader_election=False``."""


def _start_of(runnable: Runnable | RunnableFunc) -> RunnableFunc:
    start = getattr(runnable, "start", runnable)
    if not inspect.iscoroutinefunction(start):
        raise TypeError(f"runnable {runnable!r}: start must be an async function (stop) -> None")
    fn: RunnableFunc = start
    return fn


def needs_leader_election(runnable: object) -> bool:
    """The runnable's ``need_leader_election`` (an attribute, or a method returning it, as
    Go's ``NeedLeaderElection()``); True when absent, as in controller-runtime."""
    need = getattr(runnable, "need_leader_election", True)
    if callable(need):
        need = need()
    return bool(need)


@dataclass
class ManagedRunnable:
    """One added runnable and, once started, its task."""

    name: str
    start: RunnableFunc
    need_leader_election: bool
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @classmethod
    def of(
        cls, runnable: Runnable | RunnableFunc, *, name: str | None, need_leader_election: bool
    ) -> ManagedRunnable:
        start = _start_of(runnable)
        if name is None:
            name = getattr(runnable, "__qualname__", None) or type(runnable).__qualname__
        return cls(name=name, start=start, need_leader_election=need_leader_election)

    def launch(self, on_failure: Callable[[ManagedRunnable, BaseException], None]) -> None:
        """Start the task; ``on_failure`` is called if it raises (not if it is cancelled)."""
        if self.task is not None:
            return

        async def run() -> None:
            log.info("Starting runnable", runnable=self.name)
            await self.start(self.stop)

        def done(task: asyncio.Task[None]) -> None:
            if task.cancelled():
                return
            err = task.exception()
            if err is not None:
                on_failure(self, err)

        self.task = asyncio.create_task(run(), name=f"runnable-{self.name}")
        self.task.add_done_callback(done)

    async def shut_down(self, grace: float) -> None:
        """Set ``stop``; cancel the task if it has not returned within ``grace`` seconds
        (at once when ``grace`` is 0). Never raises the runnable's own error (the failure
        callback has seen it)."""
        self.stop.set()
        task = self.task
        if task is None or task.done():
            return
        if grace > 0:
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            log.warning("Runnable did not stop in time: cancelling it", runnable=self.name)
            task.cancel()
            # A runnable that swallows the cancellation is waited for: the manager must not
            # close the client it may still be using.
            await asyncio.wait({task})
