"""Owner scope: put an owner's request in the owner kind's scope before it reaches the queue.

An owner reference names no namespace. A namespaced owner lives in its child's namespace (the
only place a namespaced owner may be); a cluster-scoped owner has no namespace at all, so its
key is ``("", name)``: keying it by the child's namespace finds nothing on ``get`` and, with
children in two namespaces, hands one owner to two workers. controller-runtime asks the REST
mapper for the owner kind's scope on each event (pkg/handler/enqueue_owner.go,
``getOwnerReconcileRequest``: ``mapping.Scope.Name() != meta.RESTScopeNameRoot``).

Discovery is asynchronous here and handlers are not, so :class:`OwnerScopeQueue` sits between
an owner handler and the controller's queue: it resolves the scope once, in the background, on
the first request that needs it, holds those requests meanwhile (one entry per key), then
forwards everything rewritten. With a manager the answer is already in the mapper's cache (the
controller's own kind was resolved first), so nothing waits on the network.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

import structlog

from aimctl.controller._reconcile import Request

if TYPE_CHECKING:
    from aimctl.client import GVK, Resource
    from aimctl.workqueue import Queue

__all__ = ["OwnerScopeQueue", "ScopeResolver"]

log = structlog.get_logger("aimctl.controller")

_RETRY_FIRST = 0.1
_RETRY_MAX = 30.0


class ScopeResolver(Protocol):
    """What resolves a kind's scope: :class:`aimctl.client.RESTMapper` is one."""

    async def resource_for(self, gvk: GVK) -> Resource: ...


class OwnerScopeQueue:
    """A queue front for requests naming owners of kind ``owner``.

    Guarantees: a request for a cluster-scoped owner reaches ``queue`` as ``("", name)``, one
    for a namespaced owner unchanged. Until the scope is known, requests with a namespace are
    held (deduplicated, the higher priority kept); a failed discovery is logged and retried
    (0.1 s doubling to 30 s) while the queue runs. Requests with no namespace (cluster-scoped
    children, whose owners are cluster-scoped too) pass at once.
    """

    def __init__(self, queue: Queue[Request], resolver: ScopeResolver, owner: GVK) -> None:
        self._queue = queue
        self._resolver = resolver
        self._owner = owner
        self._namespaced: bool | None = None  # None until discovery answered
        self._held: dict[Request, int] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def shutting_down(self) -> bool:
        return self._queue.shutting_down

    def add(self, item: Request, priority: int = 0) -> None:
        if self._namespaced is None and item.namespace:
            if priority > self._held.get(item, priority - 1):
                self._held[item] = priority
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(
                    self._resolve(), name=f"scope of {self._owner.kind}"
                )
            return
        if item.namespace and self._namespaced is False:
            item = Request("", item.name)
        self._queue.add(item, priority=priority)

    async def _resolve(self) -> None:
        delay = _RETRY_FIRST
        while not self._queue.shutting_down:
            try:
                resource = await self._resolver.resource_for(self._owner)
            except Exception as err:
                log.error(
                    "Cannot resolve the owner kind's scope; owner events are held",
                    owner=str(self._owner.kind),
                    api_version=self._owner.api_version,
                    held=len(self._held),
                    retry_in=delay,
                    exc_info=err,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            self._namespaced = resource.namespaced
            held, self._held = self._held, {}
            for req, priority in held.items():
                self.add(req, priority)
            return
