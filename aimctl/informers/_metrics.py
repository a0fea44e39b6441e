"""Cache metrics controller-runtime does not export and its users ask for (#3182, #1653).

Owns the metric families (scrape-time primitives: the hot path bumps plain numbers). One
``InformerMetrics`` per registry; each informer gets an ``InformerMetricSet`` of children
labelled ``kind`` (``group/version/Kind``, ``v1/ConfigMap`` for the core group) and ``scope``
(``""`` for cluster-wide without a selector, else ``namespace=<ns>`` and/or
``labels=<selector>``, ``fields=<selector>`` and ``metadata-only`` joined by ``;``).

| name | type | extra labels | meaning |
|---|---|---|---|
| ``aimctl_informer_objects`` | gauge | | objects in the store now |
| ``aimctl_informer_synced`` | gauge | | 1 once the first list completed |
| ``aimctl_informer_lists_total`` | counter | | completed lists (paginated or streamed) |
| ``aimctl_informer_relists_total`` | counter | | lists after the first (410 Gone, restarts) |
| ``aimctl_informer_watches_total`` | counter | | watch requests opened |
| ``aimctl_informer_list_errors_total`` | counter | reason | failed list attempts |
| ``aimctl_informer_watch_errors_total`` | counter | reason | watches ended by an error |
| ``aimctl_informer_last_resource_version_age_seconds`` | gauge | | seconds since the last event |
|  |  |  | or bookmark (-1 before the first) |
| ``aimctl_informer_handler_errors_total`` | counter | | exceptions raised by event handlers |
| ``aimctl_informer_index_errors_total`` | counter | | writes refused because an index |
|  |  |  | function raised (each one triggers a relist) |
| ``aimctl_informer_transform_errors_total`` | counter | | exceptions raised by the transform |
|  |  |  | (the object is stored as received) |

``reason`` is one of ``gone``, ``stalled``, ``transport``, ``throttled``, ``server_error``,
``unauthorized``, ``forbidden``, ``not_found``, ``invalid``, ``no_kind_match``, ``other``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar
from weakref import WeakKeyDictionary

from prometheus_client.registry import CollectorRegistry

from aimctl.client import (
    ApiError,
    BadRequest,
    Forbidden,
    Gone,
    Invalid,
    NoKindMatch,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
    Unauthorized,
    WatchStalled,
)
from aimctl.metrics import Counter, CounterFamily, FamilyCollector, Gauge, GaugeFamily

__all__ = ["InformerMetricSet", "InformerMetrics", "error_reason"]


def error_reason(error: BaseException) -> str:
    """The bounded ``reason`` label for a list/watch failure."""
    if isinstance(error, Gone):
        return "gone"
    if isinstance(error, WatchStalled):
        return "stalled"
    if isinstance(error, TransportError):
        return "transport"
    if isinstance(error, TooManyRequests):
        return "throttled"
    if isinstance(error, ServerError):
        return "server_error"
    if isinstance(error, Unauthorized):
        return "unauthorized"
    if isinstance(error, Forbidden):
        return "forbidden"
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, Invalid | BadRequest):
        return "invalid"
    if isinstance(error, NoKindMatch):
        return "no_kind_match"
    if isinstance(error, ApiError):
        return "other"
    return "other"


class InformerMetrics:
    """The informer metric families of one registry (``for_registry``) or unregistered."""

    _by_registry: ClassVar[WeakKeyDictionary[CollectorRegistry, InformerMetrics]] = (
        WeakKeyDictionary()
    )

    def __init__(self) -> None:
        base = ("kind", "scope")
        self.objects = GaugeFamily(
            "aimctl_informer_objects", "Objects in the informer's store.", base
        )
        self.synced = GaugeFamily(
            "aimctl_informer_synced", "1 once the informer's first list has completed.", base
        )
        self.lists = CounterFamily(
            "aimctl_informer_lists", "Completed lists (paginated or streamed).", base
        )
        self.relists = CounterFamily(
            "aimctl_informer_relists",
            "Lists after the first one (after 410 Gone or a restart of the watch loop).",
            base,
        )
        self.watches = CounterFamily("aimctl_informer_watches", "Watch requests opened.", base)
        self.list_errors = CounterFamily(
            "aimctl_informer_list_errors", "Failed list attempts.", (*base, "reason")
        )
        self.watch_errors = CounterFamily(
            "aimctl_informer_watch_errors", "Watches ended by an error.", (*base, "reason")
        )
        self.rv_age = GaugeFamily(
            "aimctl_informer_last_resource_version_age_seconds",
            "Seconds since the informer last saw a resourceVersion (event or bookmark); "
            "-1 before the first.",
            base,
        )
        self.handler_errors = CounterFamily(
            "aimctl_informer_handler_errors", "Exceptions raised by event handlers.", base
        )
        self.index_errors = CounterFamily(
            "aimctl_informer_index_errors",
            "Writes to the store refused because an index function raised.",
            base,
        )
        self.transform_errors = CounterFamily(
            "aimctl_informer_transform_errors",
            "Exceptions raised by the informer's transform (the object is stored as received).",
            base,
        )
        self.families = (
            self.objects,
            self.synced,
            self.lists,
            self.relists,
            self.watches,
            self.list_errors,
            self.watch_errors,
            self.rv_age,
            self.handler_errors,
            self.index_errors,
            self.transform_errors,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None) -> InformerMetrics:
        """The families exported on ``registry`` (registered on first use); None: unexported."""
        if registry is None:
            return cls()
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls()
            FamilyCollector(metrics.families).register(registry)
        return metrics

    def for_informer(self, kind: str, scope: str) -> InformerMetricSet:
        return InformerMetricSet(self, kind, scope)


class InformerMetricSet:
    """The children of one informer; attributes are bumped directly on hot paths."""

    def __init__(self, families: InformerMetrics, kind: str, scope: str) -> None:
        self._families = families
        self._labels = (kind, scope)
        self.objects: Gauge = families.objects.labels(kind, scope)
        self.synced: Gauge = families.synced.labels(kind, scope)
        self.lists: Counter = families.lists.labels(kind, scope)
        self.relists: Counter = families.relists.labels(kind, scope)
        self.watches: Counter = families.watches.labels(kind, scope)
        self.rv_age: Gauge = families.rv_age.labels(kind, scope)
        self.rv_age.set(-1)
        self.handler_errors: Counter = families.handler_errors.labels(kind, scope)
        self.index_errors: Counter = families.index_errors.labels(kind, scope)
        self.transform_errors: Counter = families.transform_errors.labels(kind, scope)

    def list_error(self, error: BaseException) -> None:
        self._families.list_errors.labels(*self._labels, error_reason(error)).inc()

    def watch_error(self, error: BaseException) -> None:
        self._families.watch_errors.labels(*self._labels, error_reason(error)).inc()

    def count_objects(self, fn: Callable[[], float]) -> None:
        self.objects.set_function(fn)

    def rv_age_from(self, fn: Callable[[], float]) -> None:
        self.rv_age.set_function(fn)
