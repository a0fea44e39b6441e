"""ControllerBuilder: wire informers, handlers and a queue to a reconciler, as a sentence.

    (ControllerBuilder(manager)
        .for_(AIMKVCACHE)                       # watch + enqueue the object itself
        .owns(STATEFULSET).owns(SERVICE)        # watch + enqueue the controller owner
        .watches(AIMSERVICE, services_to_cache) # watch + enqueue what a mapper returns
        .watches_channel(external_events)       # consume an asyncio.Queue fed by user code
        .with_options(max_concurrent_reconciles=2)
        .complete(reconciler))

Each method names the lower-level piece it stands for: ``for_`` is ``watches(gvk,
for_object)``; ``owns`` is ``watches(gvk, for_owners(for-group, for-kind))`` with the owner's
key put in the for_ kind's scope (discovery says whether it is cluster-scoped);
``watches_channel`` is a channel source. Misuse (no ``for_``, ``for_`` twice, a duplicate name)
is reported by :meth:`complete`, not mid-chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aimctl.controller._controller import Controller, SourceFunc
from aimctl.controller._handlers import EnqueueHandler, Mapper, for_object, for_owners
from aimctl.controller._metrics import controller_metrics
from aimctl.controller._owner_scope import OwnerScopeQueue, ScopeResolver
from aimctl.controller._sources import Channel, channel_source
from aimctl.workqueue import LOW_PRIORITY, Queue, RateLimiter, default_controller_rate_limiter

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from aimctl.client import GVK
    from aimctl.controller._predicates import Predicate
    from aimctl.controller._reconcile import ReconcileFunc, Reconciler, Request
    from aimctl.informers import EventHandler

__all__ = ["BuilderError", "ControllerBuilder", "ControllerHost"]


class BuilderError(ValueError):
    """The builder chain was incomplete or contradictory."""


class ControllerHost(Protocol):
    """What a builder needs from its manager (the manager implements it)."""

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def mapper(self) -> ScopeResolver:
        """Discovery (a ``RESTMapper``): ``owns`` asks it for the owner kind's scope."""
        ...

    def watch(self, gvk: GVK, handler: EventHandler) -> None:
        """Attach ``handler`` to the informer(s) of ``gvk`` when the host starts."""
        ...

    def add_controller(self, controller: Controller) -> None: ...


@dataclass
class _Watch:
    gvk: GVK
    mapper: Mapper | None  # None: owners of the for_ kind, resolved at complete()
    predicates: tuple[Predicate, ...]
    only_controller: bool = True  # for owner watches


class ControllerBuilder:
    def __init__(self, host: ControllerHost) -> None:
        self._host = host
        self._name: str | None = None
        self._for: GVK | None = None
        self._watches: list[_Watch] = []
        self._channels: list[tuple[Channel, Mapper]] = []
        self._filters: tuple[Predicate, ...] = ()
        self._max_concurrent = 1
        self._rate_limiter: RateLimiter[Request] | None = None
        self._timeout: float | None = None
        self._low_priority = LOW_PRIORITY
        self._errors: list[str] = []

    def named(self, name: str) -> ControllerBuilder:
        """The controller's name (metrics label, log key). Default: the for_ kind, lowercased."""
        self._name = name
        return self

    def for_(self, gvk: GVK, *predicates: Predicate) -> ControllerBuilder:
        """Reconcile objects of ``gvk``: each event enqueues the object's own key."""
        if self._for is not None:
            self._errors.append(f"for_() called twice ({self._for.kind}, {gvk.kind})")
        self._for = gvk
        self._watches.insert(0, _Watch(gvk, for_object, predicates))
        return self

    def owns(
        self, gvk: GVK, *predicates: Predicate, only_controller: bool = True
    ) -> ControllerBuilder:
        """Watch children of ``gvk``; an event enqueues the child's controller owner if it is
        of the for_ kind, or with ``only_controller=False`` every owner of the for_ kind
        (controller-runtime's ``EnqueueRequestForOwner`` without ``OnlyControllerOwner``).

        The owner's key is ``(child namespace, name)`` for a namespaced for_ kind and
        ``("", name)`` for a cluster-scoped one, which discovery decides at the first event.
        """
        self._watches.append(_Watch(gvk, None, predicates, only_controller))
        return self

    def watches(self, gvk: GVK, mapper: Mapper, *predicates: Predicate) -> ControllerBuilder:
        """Watch ``gvk``; an event enqueues whatever ``mapper(obj)`` returns. The mapper reads
        only the object and the cache; it must not call the API server."""
        self._watches.append(_Watch(gvk, mapper, predicates))
        return self

    def watches_channel(self, channel: Channel, mapper: Mapper = for_object) -> ControllerBuilder:
        """Consume ``channel``, an ``asyncio.Queue`` that user code feeds with objects (mapped
        by ``mapper``, default: the object's own key) or :class:`Request` s
        (controller-runtime's ``source.Channel``). Consumed while the controller runs; no
        predicates apply (``with_event_filter`` neither): the producer chooses what to send.
        """
        self._channels.append((channel, mapper))
        return self

    def with_event_filter(self, *predicates: Predicate) -> ControllerBuilder:
        """Predicates applied to every informer watch of this controller (not channels)."""
        self._filters += predicates
        return self

    def with_options(
        self,
        *,
        max_concurrent_reconciles: int | None = None,
        rate_limiter: RateLimiter[Request] | None = None,
        reconcile_timeout: float | None = None,
        low_priority: int | None = None,
    ) -> ControllerBuilder:
        """Options. Defaults: 1 worker; controller-runtime's default rate limiter; no reconcile
        timeout; initial-list and resync events at ``LOW_PRIORITY`` (-100)."""
        if max_concurrent_reconciles is not None:
            self._max_concurrent = max_concurrent_reconciles
        if rate_limiter is not None:
            self._rate_limiter = rate_limiter
        if reconcile_timeout is not None:
            self._timeout = reconcile_timeout
        if low_priority is not None:
            self._low_priority = low_priority
        return self

    def complete(self, reconciler: Reconciler | ReconcileFunc) -> Controller:
        """Build the controller, attach its handlers to the informers and register it."""
        if self._for is None:
            self._errors.append("for_() was not called: a controller needs a primary kind")
        if self._max_concurrent < 1:
            self._errors.append("max_concurrent_reconciles must be >= 1")
        if self._errors:
            raise BuilderError("; ".join(self._errors))
        assert self._for is not None
        name = self._name or self._for.kind.lower()
        queue: Queue[Request] = Queue(
            name=name,
            rate_limiter=self._rate_limiter or default_controller_rate_limiter(),
            registry=self._host.registry,
        )
        metrics = controller_metrics(self._host.registry)
        errors = metrics.handler_errors.labels(name)
        sources: list[SourceFunc] = [
            channel_source(
                channel,
                queue,
                EnqueueHandler(queue, mapper, low_priority=0, controller=name, errors=errors),
            )
            for channel, mapper in self._channels
        ]
        controller = Controller(
            name,
            reconciler,
            queue,
            max_concurrent_reconciles=self._max_concurrent,
            reconcile_timeout=self._timeout,
            metrics=metrics,
            sources=sources,
        )
        self._host.add_controller(controller)  # rejects duplicate names before any wiring
        owner_queue: OwnerScopeQueue | None = None  # one scope lookup for all owns() watches
        for w in self._watches:
            if w.mapper is None:
                if owner_queue is None:
                    owner_queue = OwnerScopeQueue(queue, self._host.mapper, self._for)
                target: OwnerScopeQueue | Queue[Request] = owner_queue
                mapper = for_owners(
                    self._for.group, self._for.kind, only_controller=w.only_controller
                )
            else:
                target, mapper = queue, w.mapper
            handler = EnqueueHandler(
                target,
                mapper,
                (*self._filters, *w.predicates),
                low_priority=self._low_priority,
                controller=name,
                errors=errors,
            )
            self._host.watch(w.gvk, handler)
        return controller
