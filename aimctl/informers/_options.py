"""Per-kind cache options: what the factory's informers of one kind cache, and how.

Owns the ``ByObject`` value type only (controller-runtime's ``cache.ByObject``,
kubernetes-sigs/controller-runtime: pkg/cache/cache.go). The factory reads it when it creates an
informer of the kind; the manager's ``cache_only`` fills it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aimctl.informers._selectors import FieldSelectorLike, SelectorLike
from aimctl.informers._transforms import Transform

__all__ = ["ByObject"]


@dataclass(frozen=True)
class ByObject:
    """How the informers of one kind list, watch and store it.

    Every option narrows or reshapes the cache, so objects outside it are invisible to cached
    reads: a controller must be able to see what it creates (label it, for instance).

    Attributes:
        namespaces: cache only these namespaces (one informer per namespace). Ignored for
            cluster-scoped kinds. Default: None, the caller's namespaces (all, or the
            manager's).
        label_selector: only objects whose labels match (``labelSelector``). Default: all.
        field_selector: only objects whose fields match, evaluated by the API server
            (``fieldSelector``; e.g. ``"metadata.name=x"``, ``{"type": "kubernetes.io/tls"}``
            on Secrets). Default: all.
        transform: applied to each object before it is stored. Default: None, the factory's
            transform (strip managedFields); pass ``lambda o: o`` to store objects whole.
        resync_period: seconds between cache replays to handlers that set none
            (``SharedInformer.resync_period``). Default: None (no resync).
        metadata_only: cache ``PartialObjectMetadata`` (apiVersion ``meta.k8s.io/v1``, kind
            ``PartialObjectMetadata``, and ``metadata``) instead of whole objects, for kinds
            a controller only needs the names, labels, owners or resourceVersions of. Reads
            of the kind then return that shape. Default: False.
    """

    namespaces: Sequence[str] | None = None
    label_selector: SelectorLike | None = None
    field_selector: FieldSelectorLike | None = None
    transform: Transform | None = None
    resync_period: float | None = None
    metadata_only: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.namespaces, str):
            raise TypeError("namespaces is a sequence of names, not one string")
        if self.resync_period is not None and self.resync_period != 0 and self.resync_period < 1:
            raise ValueError("resync_period must be 0 (none) or at least 1 second")
