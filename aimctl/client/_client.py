"""Client: reads from the informer cache, writes to the API server.

Reads (:meth:`Client.get`, :meth:`Client.list`, :meth:`Client.by_index`) are served from the
shared informers, so a reconciler that reads ten objects makes no request at all. The first read
of a kind nobody registered starts its informer and waits for it to sync (as controller-runtime
does; register kinds up front with the builder to avoid that pause). Objects read from the cache
are read-only views: copy before modifying (``copy.deepcopy`` or build a new dict).

Writes go to the server:

- :meth:`apply` / :meth:`apply_status`: server-side apply with this client's field manager,
  ``force=True`` (a controller owns its fields). Idempotent: safe to retry.
- :meth:`create`, :meth:`delete`, :meth:`patch` (merge / JSON / strategic), :meth:`update`.
- :meth:`mutate`: read-modify-write against the live object, retried on 409 Conflict — the only
  safe way to retry a conflict is to re-read and re-apply the change.

Transient failures (429, 5xx, dropped connections) are retried with tenacity for idempotent
operations (reads, apply, delete, patches without a resourceVersion precondition); 429 is
retried for every operation because the server did not process the request.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from aimctl.client._errors import (
    Conflict,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
)
from aimctl.client._mapper import RESTMapper
from aimctl.client._recent import RecentWrites
from aimctl.client._rest import RestClient
from aimctl.client._types import GVK, Object

__all__ = ["CacheReader", "Client", "PatchType"]

T = TypeVar("T")

PatchType = Literal["merge", "json", "strategic"]
_PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


class _Store(Protocol):
    def get_by_name(self, namespace: str, name: str) -> Object | None: ...
    def list(
        self, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[Object]: ...
    def by_index(self, index: str, value: str) -> builtins.list[Object]: ...


class _Informer(Protocol):
    @property
    def namespace(self) -> str | None: ...
    @property
    def store(self) -> _Store: ...
    @property
    def has_synced(self) -> bool: ...
    async def wait_for_sync(self, timeout: float | None = None) -> None: ...  # noqa: ASYNC109


class CacheReader(Protocol):
    """Where cached reads come from (the manager): the informers serving ``gvk``."""

    async def informers_for(self, gvk: GVK) -> Sequence[_Informer]: ...


def _transient(exc: BaseException) -> bool:
    # TransportError wraps dropped connections and payload errors (the RestClient's contract).
    return isinstance(exc, TooManyRequests | ServerError | TransportError)


def _throttled(exc: BaseException) -> bool:
    return isinstance(exc, TooManyRequests)


class Client:
    """A client for any kind, by group/version/kind; no per-kind code."""

    def __init__(
        self,
        rest: RestClient,
        mapper: RESTMapper,
        cache: CacheReader,
        *,
        field_manager: str,
        sync_timeout: float = 120.0,
        retry_attempts: int = 5,
        recent: RecentWrites | None = None,
    ) -> None:
        self.rest = rest
        # Shared by the clients of one manager, so one controller's write is seen by another.
        self._recent = recent if recent is not None else RecentWrites()
        self.mapper = mapper
        self._cache = cache
        self.field_manager = field_manager
        self._sync_timeout = sync_timeout
        self._attempts = retry_attempts

    def with_field_manager(self, field_manager: str) -> Client:
        """The same client writing under another field manager."""
        return Client(
            self.rest,
            self.mapper,
            self._cache,
            field_manager=field_manager,
            sync_timeout=self._sync_timeout,
            retry_attempts=self._attempts,
            recent=self._recent,
        )

    # -- cached reads ------------------------------------------------------------------------

    async def _informers(self, gvk: GVK, namespace: str | None) -> builtins.list[_Informer]:
        informers = [
            i
            for i in await self._cache.informers_for(gvk)
            if namespace is None or i.namespace is None or i.namespace == namespace
        ]
        for inf in informers:
            if not inf.has_synced:
                await inf.wait_for_sync(self._sync_timeout)
        return informers

    async def get(self, gvk: GVK, name: str, namespace: str = "") -> Object | None:
        """The cached object, or None when it does not exist (as far as the cache knows).

        If this client's own write of the object returned a newer version than the cache holds
        yet, that version is returned (read-your-own-writes; see ``_recent``)."""
        for inf in await self._informers(gvk, namespace or None):
            obj = inf.store.get_by_name(namespace, name)
            if obj is not None:
                return self._recent.newest(gvk, namespace, name, obj)
        return None

    async def list(
        self, gvk: GVK, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[Object]:
        """Cached objects of ``gvk``, optionally in one namespace and matching a selector."""
        out: builtins.list[Object] = []
        for inf in await self._informers(gvk, namespace):
            out.extend(inf.store.list(namespace=namespace, label_selector=label_selector))
        return out

    async def by_index(self, gvk: GVK, index: str, value: str) -> builtins.list[Object]:
        """Cached objects whose index function returned ``value`` for index ``index``."""
        out: builtins.list[Object] = []
        for inf in await self._informers(gvk, None):
            out.extend(inf.store.by_index(index, value))
        return out

    # -- live reads --------------------------------------------------------------------------

    async def get_live(self, gvk: GVK, name: str, namespace: str = "") -> Object | None:
        """Read from the API server, bypassing the cache. None when not found."""
        path = (await self.mapper.resource_for(gvk)).path(namespace or None, name)
        try:
            return await self._retry(lambda: self.rest.request("GET", path), _transient)
        except NotFound:
            return None

    # -- writes ------------------------------------------------------------------------------

    async def create(self, obj: Mapping[str, Any]) -> Object:
        res = await self.mapper.resource_for(GVK.of(obj))
        path = res.path(_ns(obj) if res.namespaced else None)
        return self._remember(
            await self._retry(
                lambda: self.rest.request(
                    "POST", path, params={"fieldManager": self.field_manager}, body=obj
                ),
                _throttled,
            )
        )

    async def apply(self, obj: Mapping[str, Any], *, force: bool = True) -> Object:
        """Server-side apply ``obj`` (a partial object: only the fields this manager owns)."""
        return await self._apply(obj, None, force)

    async def apply_status(self, obj: Mapping[str, Any], *, force: bool = True) -> Object:
        """Server-side apply to the status subresource. ``obj`` carries apiVersion, kind,
        metadata.name/namespace and ``status``."""
        return await self._apply(obj, "status", force)

    async def _apply(self, obj: Mapping[str, Any], subresource: str | None, force: bool) -> Object:
        res = await self.mapper.resource_for(GVK.of(obj))
        path = res.path(_ns(obj) if res.namespaced else None, obj["metadata"]["name"], subresource)
        params = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        return self._remember(
            await self._retry(
                lambda: self.rest.request(
                    "PATCH", path, params=params, body=obj, content_type=APPLY_CONTENT_TYPE
                ),
                _transient,
            )
        )

    async def patch(
        self,
        gvk: GVK,
        name: str,
        namespace: str,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> Object:
        """Patch an object. A merge patch carrying ``metadata.resourceVersion`` is a guarded
        write: a 409 is raised, not retried (re-read and decide again)."""
        res = await self.mapper.resource_for(gvk)
        path = res.path(namespace or None, name, subresource)
        guarded = isinstance(patch, Mapping) and "resourceVersion" in (patch.get("metadata") or {})
        return self._remember(
            await self._retry(
                lambda: self.rest.request(
                    "PATCH",
                    path,
                    params={"fieldManager": self.field_manager},
                    body=patch,
                    content_type=_PATCH_CONTENT_TYPES[patch_type],
                ),
                _throttled if guarded else _transient,
            )
        )

    async def update(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> Object:
        """PUT the whole object; guarded by its ``metadata.resourceVersion``."""
        res = await self.mapper.resource_for(GVK.of(obj))
        path = res.path(_ns(obj) if res.namespaced else None, obj["metadata"]["name"], subresource)
        return self._remember(
            await self._retry(
                lambda: self.rest.request(
                    "PUT", path, params={"fieldManager": self.field_manager}, body=obj
                ),
                _throttled,
            )
        )

    async def mutate(
        self,
        gvk: GVK,
        name: str,
        namespace: str,
        fn: Callable[[Object], bool],
        *,
        subresource: str | None = None,
    ) -> Object | None:
        """Read-modify-write, retried on conflict. ``fn`` edits a fresh copy of the live object
        in place and returns whether it changed anything (False: no write). None when the object
        does not exist."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, Conflict) or _transient(e)),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.01, max=1.0, jitter=0.01),
            reraise=True,
        ):
            with attempt:
                live = await self.get_live(gvk, name, namespace)
                if live is None:
                    return None
                obj = copy.deepcopy(live)
                if not fn(obj):
                    return live
                return await self.update(obj, subresource=subresource)
        raise AssertionError("unreachable")  # pragma: no cover

    async def delete(
        self,
        gvk: GVK,
        name: str,
        namespace: str = "",
        *,
        propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
        uid: str | None = None,
    ) -> bool:
        """Delete; False when it was already gone. ``uid`` guards against deleting a
        re-created object of the same name."""
        path = (await self.mapper.resource_for(gvk)).path(namespace or None, name)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self._retry(lambda: self.rest.request("DELETE", path, body=body), _transient)
        except NotFound:
            return False
        return True

    def _remember(self, written: Object) -> Object:
        if isinstance(written.get("metadata"), dict) and written.get("kind"):
            self._recent.remember(written)
        return written

    async def _retry(
        self, call: Callable[[], Awaitable[T]], when: Callable[[BaseException], bool]
    ) -> T:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(when),
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05),
            reraise=True,
        ):
            with attempt:
                return await call()
        raise AssertionError("unreachable")  # pragma: no cover


def _ns(obj: Mapping[str, Any]) -> str | None:
    ns = (obj.get("metadata") or {}).get("namespace")
    if not ns:
        raise ValueError(
            f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')} needs a namespace"
        )
    return str(ns)
