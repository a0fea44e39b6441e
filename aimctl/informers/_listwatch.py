"""The REST ``ListerWatcher``: list and watch one kind in one scope through ``RestClient``.

Owns the scope (kind, namespace, label selector) and the lazily resolved REST path. Fed by
``RestClient`` and ``RESTMapper``; feeds the reflector.
"""

from __future__ import annotations

from aimctl.client import GVK, Object, RestClient, RESTMapper
from aimctl.informers._reflector import EventStream

__all__ = ["RestListerWatcher"]


class RestListerWatcher:
    """Lists and watches ``gvk`` in ``namespace`` (all when None) matching ``label_selector``.

    The REST path is resolved through discovery on first use, and again after every failure
    (so a CRD installed after start is picked up by the reflector's next attempt).
    A namespace given for a cluster-scoped kind is ignored, as controller-runtime does.

    Raises (from ``list``/``watch``): ``NoKindMatch``, ``ApiError``, ``TransportError``.
    """

    def __init__(
        self,
        rest: RestClient,
        mapper: RESTMapper,
        gvk: GVK,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> None:
        self.rest = rest
        self.mapper = mapper
        self.gvk = gvk
        self._namespace = namespace
        self._selector = label_selector or None
        self._path: str | None = None

    @property
    def kind(self) -> str:
        return str(self.gvk)

    @property
    def namespace(self) -> str | None:
        return self._namespace

    @property
    def label_selector(self) -> str | None:
        return self._selector

    async def _collection(self) -> str:
        if self._path is None:
            resource = await self.mapper.resource_for(self.gvk)
            self._path = resource.collection_path(self._namespace if resource.namespaced else None)
        return self._path

    def _params(self, params: dict[str, str]) -> dict[str, str]:
        if self._selector:
            return {**params, "labelSelector": self._selector}
        return params

    async def list(self, params: dict[str, str]) -> Object:
        try:
            return await self.rest.request(
                "GET", await self._collection(), params=self._params(params)
            )
        except Exception:
            self._path = None
            raise

    async def watch(
        self, params: dict[str, str], *, inactivity_timeout: float | None
    ) -> EventStream:
        path = await self._collection()
        return self.rest.watch(path, self._params(params), inactivity_timeout=inactivity_timeout)
