"""The informer factory: one shared informer per (kind, namespace, selectors, metadata-only).

Owns the informers of a process, their lifecycle and the per-kind cache options
(``ByObject``). Fed by the REST client and mapper; feeds controllers (handlers) and the
cache-backed client (``informers_for``, ``resolve``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import structlog
from prometheus_client.registry import CollectorRegistry

from aimctl._internal.clock import MONOTONIC, Clock
from aimctl.client import GVK, RestClient, RESTMapper
from aimctl.informers._informer import InformerSyncError, SharedInformer
from aimctl.informers._listwatch import RestListerWatcher
from aimctl.informers._metrics import InformerMetrics
from aimctl.informers._options import ByObject
from aimctl.informers._reflector import ReflectorOptions
from aimctl.informers._selectors import (
    FieldSelectorLike,
    SelectorLike,
    to_field_selector,
    to_selector,
)
from aimctl.informers._transforms import Transform, strip_managed_fields

__all__ = ["InformerFactory"]

log = structlog.get_logger(__name__)

# (kind, namespace, canonical label selector, canonical field selector, metadata only)
InformerKey = tuple[GVK, str | None, str | None, str | None, bool]
_NO_OPTIONS = ByObject()


class InformerFactory:
    """Hands out one shared informer per (GVK, namespace, selectors, metadata-only), started
    together, configured per kind by ``ByObject`` (controller-runtime's ``cache.Options``).

    Guarantees:
        - ``informer()`` with equal arguments returns the same informer (selectors are compared
          in canonical form, so ``"b=2,a=1"`` and ``{"a": "1", "b": "2"}`` are one informer).
        - A kind's ``ByObject`` supplies every option the caller leaves out: selectors,
          metadata-only, transform, default resync period, and (in ``resolve``) namespaces.
        - Informers requested after ``start()`` are started at once; ``stop()`` stops all.
        - ``wait_for_sync`` raises ``InformerSyncError`` naming the kind and the server's
          reason (e.g. RBAC's 403 message) instead of timing out silently.

    Caller obligations:
        Call ``stop()`` before closing the ``RestClient``. Use from one event loop. Set a
        kind's options before its first informer is created.

    Args:
        rest, mapper: the client used by every informer, and discovery for their paths.
        transform: applied to every object before it is stored, unless the kind's
            ``ByObject`` has its own. Default: strip managedFields.
        registry: where the ``aimctl_informer_*`` metrics are exported. Default: nowhere.
        options: reflector tuning shared by all informers.
        by_object: per-kind options (see ``set_by_object``). Default: none.
        clock: monotonic time source.

    Raises:
        ValueError: a malformed selector in ``by_object``.
    """

    def __init__(
        self,
        rest: RestClient,
        mapper: RESTMapper,
        *,
        transform: Transform | None = strip_managed_fields,
        registry: CollectorRegistry | None = None,
        options: ReflectorOptions | None = None,
        by_object: Mapping[GVK, ByObject] | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.rest = rest
        self.mapper = mapper
        self._transform = transform
        self._metrics = InformerMetrics.for_registry(registry)
        self._options = options
        self._clock = clock
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._by_object: dict[GVK, ByObject] = {}
        self._started = False
        for gvk, opts in (by_object or {}).items():
            self.set_by_object(gvk, opts)

    # -- per-kind options --------------------------------------------------------------------

    def set_by_object(self, gvk: GVK, options: ByObject) -> None:
        """Cache ``gvk`` as ``options`` say (replacing earlier options of the kind).

        Raises:
            RuntimeError: an informer of ``gvk`` exists already (it was built without them).
            ValueError: a malformed selector.
        """
        if any(k[0] == gvk for k in self._informers):
            raise RuntimeError(f"options for {gvk} must be set before its first informer")
        to_selector(options.label_selector)  # fail here, not at the first read
        to_field_selector(options.field_selector)
        self._by_object[gvk] = options

    def by_object(self, gvk: GVK) -> ByObject:
        """The options of ``gvk`` (all defaults when none were set)."""
        return self._by_object.get(gvk, _NO_OPTIONS)

    # -- informers ---------------------------------------------------------------------------

    def informer(
        self,
        gvk: GVK,
        namespace: str | None = None,
        label_selector: SelectorLike | None = None,
        field_selector: FieldSelectorLike | None = None,
        *,
        metadata_only: bool | None = None,
    ) -> SharedInformer:
        """The shared informer for ``gvk`` in ``namespace`` (None: all) with the selectors.

        ``label_selector``, ``field_selector`` and ``metadata_only`` left as None come from
        the kind's ``ByObject``; so do the transform and the default resync period.

        Raises:
            ValueError: a malformed selector.
        """
        opts = self.by_object(gvk)
        labels = to_selector(opts.label_selector if label_selector is None else label_selector)
        fields = to_field_selector(
            opts.field_selector if field_selector is None else field_selector
        )
        meta = opts.metadata_only if metadata_only is None else metadata_only
        label_text = str(labels) if labels is not None else None
        field_text = str(fields) if fields is not None else None
        key: InformerKey = (gvk, namespace or None, label_text, field_text, meta)
        informer = self._informers.get(key)
        if informer is None:
            lw = RestListerWatcher(
                self.rest,
                self.mapper,
                gvk,
                namespace=namespace or None,
                label_selector=label_text,
                field_selector=field_text,
                metadata_only=meta,
            )
            informer = SharedInformer(
                lw,
                transform=opts.transform if opts.transform is not None else self._transform,
                options=self._options,
                resync_period=opts.resync_period,
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
        return [i for key, i in self._informers.items() if key[0] == gvk]

    async def resolve(
        self, gvk: GVK, namespaces: Sequence[str] | None = None
    ) -> list[SharedInformer]:
        """The informers that serve ``gvk`` under its options: one per namespace of its
        ``ByObject.namespaces`` (else of ``namespaces``; None: one for all namespaces), and
        always one cluster-wide informer for a cluster-scoped kind.

        Raises:
            NoKindMatch: the server does not serve ``gvk`` (a CRD not installed).
            ValueError: a malformed selector.
        """
        resource = await self.mapper.resource_for(gvk)
        scope = self.by_object(gvk).namespaces
        scope = namespaces if scope is None else scope
        if not resource.namespaced or not scope:
            return [self.informer(gvk)]
        return [self.informer(gvk, ns) for ns in dict.fromkeys(scope)]

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
