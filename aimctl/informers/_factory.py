"""The informer factory: one shared informer per (kind, namespace scope, label selector).

Owns the informers of a process and their lifecycle. Fed by the REST client and mapper; feeds
controllers (handlers) and the cache-backed client (``informers_for``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from prometheus_client.registry import CollectorRegistry

from aimctl._internal.clock import MONOTONIC, Clock
from aimctl.client import GVK, RestClient, RESTMapper
from aimctl.informers._informer import InformerSyncError, SharedInformer
from aimctl.informers._listwatch import RestListerWatcher
from aimctl.informers._metrics import InformerMetrics
from aimctl.informers._reflector import ReflectorOptions
from aimctl.informers._selectors import SelectorLike, to_selector
from aimctl.informers._transforms import Transform, strip_managed_fields

__all__ = ["InformerFactory"]

log = structlog.get_logger(__name__)

InformerKey = tuple[GVK, str | None, str | None]


class InformerFactory:
    """Hands out one shared informer per (GVK, namespace, label selector), started together.

    Guarantees:
        - ``informer()`` with equal arguments returns the same informer (selectors are compared
          in canonical form, so ``"b=2,a=1"`` and ``{"a": "1", "b": "2"}`` are one informer).
        - Informers requested after ``start()`` are started at once; ``stop()`` stops all.
        - ``wait_for_sync`` raises ``InformerSyncError`` naming the kind and the server's
          reason (e.g. RBAC's 403 message) instead of timing out silently.

    Caller obligations:
        Call ``stop()`` before closing the ``RestClient``. Use from one event loop.

    Args:
        rest, mapper: the client used by every informer, and discovery for their paths.
        transform: applied to every object before it is stored. Default: strip managedFields.
        registry: where the ``aimctl_informer_*`` metrics are exported. Default: nowhere.
        options: reflector tuning shared by all informers.
        clock: monotonic time source.
    """

    def __init__(
        self,
        rest: RestClient,
        mapper: RESTMapper,
        *,
        transform: Transform | None = strip_managed_fields,
        registry: CollectorRegistry | None = None,
        options: ReflectorOptions | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.rest = rest
        self.mapper = mapper
        self._transform = transform
        self._metrics = InformerMetrics.for_registry(registry)
        self._options = options
        self._clock = clock
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._started = False

    def informer(
        self,
        gvk: GVK,
        namespace: str | None = None,
        label_selector: SelectorLike | None = None,
    ) -> SharedInformer:
        """The shared informer for ``gvk`` in ``namespace`` (None: all) with the selector.

        Raises:
            ValueError: a malformed label selector.
        """
        selector = to_selector(label_selector)
        selector_text = str(selector) if selector is not None else None
        key: InformerKey = (gvk, namespace or None, selector_text)
        informer = self._informers.get(key)
        if informer is None:
            lw = RestListerWatcher(
                self.rest, self.mapper, gvk, namespace=namespace, label_selector=selector_text
            )
            informer = SharedInformer(
                lw,
                transform=self._transform,
                options=self._options,
                metrics=self._metrics,
                clock=self._clock,
            )
            self._informers[key] = informer
            log.debug("informer created", kind=str(gvk), scope=informer.scope)
            if self._started:
                informer.start_soon()
        return informer

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    def informers_for(self, gvk: GVK) -> Sequence[SharedInformer]:
        """Every informer of ``gvk`` (any scope), for cache readers."""
        return [i for (g, _, _), i in self._informers.items() if g == gvk]

    async def start(self) -> None:
        """Start every informer (and any requested later). Idempotent."""
        self._started = True
        for informer in self._informers.values():
            await informer.start()

    async def wait_for_sync(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until every informer has synced.

        Raises:
            InformerSyncError: the first informer to fail (401/403 at once, anything else at
                the timeout); the message names the kind, scope and the server's reason. When
                several time out, the error names the first and lists the others in its notes.
        """
        informers = list(self._informers.values())
        if not informers:
            return
        tasks = [asyncio.create_task(i.wait_for_sync(timeout)) for i in informers]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        for t in pending:
            t.cancel()
        errors = [e for t in done if (e := t.exception()) is not None]
        if not errors:
            return
        first = errors[0]
        if isinstance(first, InformerSyncError):
            for other in errors[1:]:
                first.add_note(str(other))
        raise first

    async def stop(self) -> None:
        """Stop every informer; their stores keep their last contents."""
        self._started = False
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
