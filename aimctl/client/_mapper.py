"""GVK -> Resource (plural, scope) by API discovery, cached per group-version.

Owns the discovery cache. Fed by ``RestClient`` (``GET /api/v1``, ``GET /apis/<group>/<version>``);
feeds the informers and the client the REST paths they need.
"""

from __future__ import annotations

import asyncio

from aimctl._internal.clock import MONOTONIC, Clock
from aimctl.client._errors import NotFound
from aimctl.client._rest import RestClient
from aimctl.client._types import GVK, Resource

__all__ = ["NoKindMatch", "RESTMapper"]


class NoKindMatch(LookupError):
    """Discovery does not serve this kind (CRD not installed, wrong group or version)."""

    def __init__(self, gvk: GVK, served: list[str] | None = None) -> None:
        self.gvk = gvk
        if served is None:
            detail = f"group-version {gvk.api_version} is not served"
        else:
            detail = f"{gvk.api_version} serves {', '.join(sorted(served)) or 'no kinds'}"
        super().__init__(f"no kind {gvk.kind!r} in {gvk.api_version}: {detail}")


class _GroupVersion:
    __slots__ = ("fetched_at", "kinds")

    def __init__(self, kinds: dict[str, Resource] | None, fetched_at: float) -> None:
        self.kinds = kinds  # None: the group-version was not served (404)
        self.fetched_at = fetched_at


class RESTMapper:
    """Resolves a GVK to its ``Resource`` by discovery.

    Guarantees:
        - One discovery request per group-version while every requested kind is found in it.
        - A kind missing from the cached group-version (a CRD installed after start) triggers
          one refresh of that group-version, at most once per ``min_refresh_interval``
          seconds; concurrent lookups of one group-version share one request.
        - Subresources (``pods/status``) are never returned as kinds.

    Raises (from ``resource_for``):
        NoKindMatch: not served even after a refresh.
        ApiError, TransportError: discovery itself failed (nothing is cached then).

    Args:
        rest: the client used for discovery.
        min_refresh_interval: the least seconds between refreshes of one group-version on
            misses. Default: 1.0.
        clock: monotonic time source. Default: the process clock.
    """

    def __init__(
        self,
        rest: RestClient,
        *,
        min_refresh_interval: float = 1.0,
        clock: Clock = MONOTONIC,
    ) -> None:
        self._rest = rest
        self._min_refresh = min_refresh_interval
        self._clock = clock
        self._cache: dict[str, _GroupVersion] = {}
        self._static: dict[GVK, Resource] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def add(self, resource: Resource) -> None:
        """Register a mapping that needs no discovery (takes precedence)."""
        self._static[resource.gvk] = resource

    def invalidate(self, group_version: str | None = None) -> None:
        """Forget one group-version (or all): the next lookup asks the server again."""
        if group_version is None:
            self._cache.clear()
        else:
            self._cache.pop(group_version, None)

    async def resource_for(self, gvk: GVK) -> Resource:
        """The resource serving ``gvk``."""
        static = self._static.get(gvk)
        if static is not None:
            return static
        gv = gvk.api_version
        entry = self._cache.get(gv)
        if entry is not None and entry.kinds is not None and gvk.kind in entry.kinds:
            return entry.kinds[gvk.kind]
        lock = self._locks.setdefault(gv, asyncio.Lock())
        async with lock:
            entry = self._cache.get(gv)  # another task may have refreshed meanwhile
            stale = entry is None or self._clock.now() - entry.fetched_at >= self._min_refresh
            if stale and (entry is None or entry.kinds is None or gvk.kind not in entry.kinds):
                entry = await self._discover(gvk)
                self._cache[gv] = entry
        assert entry is not None
        if entry.kinds is None:
            raise NoKindMatch(gvk)
        resource = entry.kinds.get(gvk.kind)
        if resource is None:
            raise NoKindMatch(gvk, list(entry.kinds))
        return resource

    async def _discover(self, gvk: GVK) -> _GroupVersion:
        path = f"/apis/{gvk.group}/{gvk.version}" if gvk.group else f"/api/{gvk.version}"
        try:
            doc = await self._rest.request("GET", path)
        except NotFound:
            return _GroupVersion(None, self._clock.now())
        kinds: dict[str, Resource] = {}
        for r in doc.get("resources") or ():
            name = r.get("name", "")
            kind = r.get("kind", "")
            if not name or not kind or "/" in name:
                continue
            kinds[kind] = Resource(
                GVK(gvk.group, gvk.version, kind), name, bool(r.get("namespaced"))
            )
        return _GroupVersion(kinds, self._clock.now())
