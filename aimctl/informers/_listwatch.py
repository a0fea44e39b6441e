"""The REST ``ListerWatcher``: list and watch one kind in one scope through ``RestClient``.

Owns the scope (kind, namespace, label and field selectors, whole objects or metadata only) and
the lazily resolved REST path. Fed by ``RestClient`` and ``RESTMapper``; feeds the reflector.

Metadata only: the API server converts objects to ``meta.k8s.io/v1`` ``PartialObjectMetadata``
when asked through ``Accept`` (``as=PartialObjectMetadataList`` for lists,
``as=PartialObjectMetadata`` for watches; client-go's metadata client, kubernetes/client-go:
metadata/metadata.go). Plain JSON stays acceptable as a fallback, for servers (aggregated APIs)
that cannot convert; such answers are projected to the same shape here, so the store always
holds ``{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": ...}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aimctl.client import GVK, Object, RestClient, RESTMapper, WatchEvent
from aimctl.client._rest import Known
from aimctl.informers._reflector import EventStream

__all__ = [
    "METADATA_API_VERSION",
    "PARTIAL_OBJECT_METADATA",
    "RestListerWatcher",
    "as_partial_object_metadata",
]

METADATA_API_VERSION = "meta.k8s.io/v1"
PARTIAL_OBJECT_METADATA = "PartialObjectMetadata"
_AS = "g=meta.k8s.io;v=v1,application/json"
_ACCEPT_LIST = f"application/json;as={PARTIAL_OBJECT_METADATA}List;{_AS}"
_ACCEPT_WATCH = f"application/json;as={PARTIAL_OBJECT_METADATA};{_AS}"


def as_partial_object_metadata(obj: Object) -> Object:
    """``obj`` as ``PartialObjectMetadata`` (itself when it already is one)."""
    if obj.get("kind") == PARTIAL_OBJECT_METADATA:
        return obj
    return {
        "apiVersion": METADATA_API_VERSION,
        "kind": PARTIAL_OBJECT_METADATA,
        "metadata": obj.get("metadata") or {},
    }


class RestListerWatcher:
    """Lists and watches ``gvk`` in ``namespace`` (all when None) matching the selectors.

    The REST path is resolved through discovery on first use, and again after every failure
    (so a CRD installed after start is picked up by the reflector's next attempt).
    A namespace given for a cluster-scoped kind is ignored, as controller-runtime does.
    Selectors are sent as given (canonical text from the factory): ``labelSelector`` and
    ``fieldSelector``, evaluated by the server on the list and on every watch event (an object
    that stops matching arrives as DELETED, one that starts matching as ADDED).

    Raises (from ``list``/``watch``): ``NoKindMatch``, ``ApiError`` (``BadRequest`` for a field
    the kind does not support), ``TransportError``.
    """

    def __init__(
        self,
        rest: RestClient,
        mapper: RESTMapper,
        gvk: GVK,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
    ) -> None:
        self.rest = rest
        self.mapper = mapper
        self.gvk = gvk
        self._namespace = namespace
        self._selector = label_selector or None
        self._fields = field_selector or None
        self._metadata_only = metadata_only
        self._path: str | None = None
        # Objects handed over undecoded (``WatchStream``'s ``known``; set through
        # ``SharedInformer.take_echoes``).
        self.known: Known | None = None

    @property
    def kind(self) -> str:
        return str(self.gvk)

    @property
    def namespace(self) -> str | None:
        return self._namespace

    @property
    def label_selector(self) -> str | None:
        return self._selector

    @property
    def field_selector(self) -> str | None:
        return self._fields

    @property
    def metadata_only(self) -> bool:
        return self._metadata_only

    async def _collection(self) -> str:
        if self._path is None:
            resource = await self.mapper.resource_for(self.gvk)
            self._path = resource.collection_path(self._namespace if resource.namespaced else None)
        return self._path

    def _params(self, params: dict[str, str]) -> dict[str, str]:
        extra: dict[str, str] = {}
        if self._selector:
            extra["labelSelector"] = self._selector
        if self._fields:
            extra["fieldSelector"] = self._fields
        return {**params, **extra} if extra else params

    async def list(self, params: dict[str, str]) -> Object:
        try:
            page = await self.rest.request(
                "GET",
                await self._collection(),
                params=self._params(params),
                accept=_ACCEPT_LIST if self._metadata_only else None,
            )
        except Exception:
            self._path = None
            raise
        if self._metadata_only and page.get("kind") != f"{PARTIAL_OBJECT_METADATA}List":
            page["apiVersion"] = METADATA_API_VERSION
            page["kind"] = f"{PARTIAL_OBJECT_METADATA}List"
            page["items"] = [as_partial_object_metadata(i) for i in page.get("items") or ()]
        return page

    async def watch(
        self, params: dict[str, str], *, inactivity_timeout: float | None
    ) -> EventStream:
        path = await self._collection()
        if not self._metadata_only:
            return self.rest.watch(
                path, self._params(params), inactivity_timeout=inactivity_timeout, known=self.known
            )
        stream = self.rest.watch(
            path, self._params(params), inactivity_timeout=inactivity_timeout, accept=_ACCEPT_WATCH
        )
        return _MetadataStream(stream)


class _MetadataStream:
    """A watch whose objects are projected to ``PartialObjectMetadata`` if the server sent
    whole ones (the ``application/json`` fallback)."""

    def __init__(self, stream: EventStream) -> None:
        self._stream = stream
        self._events: AsyncIterator[WatchEvent] | None = None

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        if self._events is None:
            self._events = self._stream.__aiter__()
        event = await self._events.__anext__()
        if event.object.get("kind") == PARTIAL_OBJECT_METADATA:
            return event
        return WatchEvent(event.type, as_partial_object_metadata(event.object))

    async def aclose(self) -> None:
        await self._stream.aclose()
