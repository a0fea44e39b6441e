"""Client: reads from the informer cache, writes to the API server.

Reads (:meth:`Client.get`, :meth:`Client.list`, :meth:`Client.by_index`) are served from the
shared informers, so a reconciler that reads ten objects makes no request at all. The first read
of a kind nobody registered starts its informer and waits for it to sync (as controller-runtime
does; register kinds up front with the builder to avoid that pause). Objects read from the cache
are frozen: copy before modifying (``copy.deepcopy`` or build a new dict). A cache restricted
to some namespaces raises :class:`UnknownNamespace` for a read of another one, rather than
answering "not found". :meth:`get_live` / :meth:`list_live` read the server (controller-runtime's
APIReader).

Writes go to the server:

- :meth:`apply` / :meth:`apply_status`: server-side apply with this client's field manager.
  ``force=True`` takes fields other managers own (opt-in, as controller-runtime's
  ``client.ForceOwnership``); without it such a field raises ``Conflict`` naming it.
- :meth:`create`, :meth:`delete`, :meth:`patch` (merge / JSON / strategic), :meth:`update`.
- :meth:`mutate`: read-modify-write against the live object, retried on 409 Conflict: the only
  safe way to retry a conflict is to re-read and re-apply the change.
- :meth:`create_or_update`, :meth:`create_or_patch` (controllerutil's), :meth:`add_finalizer`,
  :meth:`remove_finalizer`.

Retries (``_retry``): a request is sent again only when that cannot apply it twice: reads,
server-side apply, merge patches, writes guarded by a resourceVersion, deletes with a
precondition; and any request throttled (429, honouring ``Retry-After``) or never sent.
"""

from __future__ import annotations

import builtins
import copy
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from aimctl.client._errors import Conflict, NotFound, ServerError, TransportError, UnknownNamespace
from aimctl.client._mapper import RESTMapper
from aimctl.client._operations import _Operations
from aimctl.client._recent import RecentWrites
from aimctl.client._rest import RestClient
from aimctl.client._retry import with_retries
from aimctl.client._types import GVK, Object

__all__ = ["CacheReader", "Client", "PatchType"]

PatchType = Literal["merge", "json", "strategic"]
_PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
_LIST_PAGE = 500


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


class Client(_Operations):
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

    async def _informers(
        self, gvk: GVK, namespace: str | None, what: str
    ) -> builtins.list[_Informer]:
        every = await self._cache.informers_for(gvk)
        informers = [
            i for i in every if namespace is None or i.namespace is None or i.namespace == namespace
        ]
        if namespace is not None and every and not informers:
            # controller-runtime's multi-namespace cache: "unable to get: ns/name because of
            # unknown namespace for the cache" (pkg/cache/multi_namespace_cache.go).
            raise UnknownNamespace(what, namespace, [str(i.namespace) for i in every])
        for inf in informers:
            if not inf.has_synced:
                await inf.wait_for_sync(self._sync_timeout)
        return informers

    async def get(self, gvk: GVK, name: str, namespace: str = "") -> Object | None:
        """The cached object, or None when it does not exist (as far as the cache knows).

        If this client's own write of the object returned a version the cache has not
        delivered yet, that version is returned (read-your-own-writes; see ``_recent``).

        Raises:
            UnknownNamespace: the cache does not watch ``namespace``.
        """
        what = f"{gvk.kind} {namespace}/{name}" if namespace else f"{gvk.kind} {name}"
        for inf in await self._informers(gvk, namespace or None, what):
            obj = inf.store.get_by_name(namespace, name)
            if obj is not None:
                return self._recent.newest(gvk, namespace, name, obj)
        return None

    async def list(
        self, gvk: GVK, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[Object]:
        """Cached objects of ``gvk``, optionally in one namespace and matching a selector.

        Shows what :meth:`get` shows: this client's writes the cache has not delivered yet,
        included or left out by the selector as their written labels say.

        Raises:
            UnknownNamespace: the cache does not watch ``namespace``.
        """
        what = f"{gvk.kind} list in {namespace}"
        informers = await self._informers(gvk, namespace, what)
        selector = _selector(label_selector)
        out: builtins.list[Object] = []
        listed: set[tuple[str, str]] = set()
        for inf in informers:
            for obj in inf.store.list(namespace=namespace, label_selector=label_selector):
                key = _name_key(obj)
                listed.add(key)
                mine = self._recent.newest(gvk, *key, obj)
                if mine is obj or selector is None or selector(mine):
                    out.append(mine)
        if selector is None:
            return out
        # Objects whose cached labels do not match, but whose newer written ones do.
        for ns, name in self._recent.pending(gvk):
            if (ns, name) in listed or (namespace is not None and ns != namespace):
                continue
            for inf in informers:
                cached = inf.store.get_by_name(ns, name)
                if cached is not None:
                    mine = self._recent.newest(gvk, ns, name, cached)
                    if mine is not cached and selector(mine):
                        out.append(mine)
                    break
        return out

    async def by_index(self, gvk: GVK, index: str, value: str) -> builtins.list[Object]:
        """Cached objects whose index function returned ``value`` for index ``index``.

        Membership follows the cached versions (index functions run in the informer); each
        object is the one :meth:`get` would return."""
        out: builtins.list[Object] = []
        for inf in await self._informers(gvk, None, f"{gvk.kind} index {index}"):
            for obj in inf.store.by_index(index, value):
                out.append(self._recent.newest(gvk, *_name_key(obj), obj))
        return out

    # -- live reads --------------------------------------------------------------------------

    async def get_live(self, gvk: GVK, name: str, namespace: str = "") -> Object | None:
        """Read from the API server, bypassing the cache. None when not found."""
        path = (await self.mapper.resource_for(gvk)).path(namespace or None, name)
        try:
            return await self._send(lambda: self.rest.request("GET", path), idempotent=True)
        except NotFound:
            return None

    async def list_live(
        self,
        gvk: GVK,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> builtins.list[Object]:
        """List from the API server, bypassing the cache (any namespace, any selector), in
        pages of 500. Items carry ``apiVersion`` and ``kind`` (list items do not).

        Raises:
            Gone: the list took so long that its continue token expired; list again.
        """
        path = (await self.mapper.resource_for(gvk)).collection_path(namespace)
        items: builtins.list[Object] = []
        token: str | None = None
        while True:
            params = {
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "limit": _LIST_PAGE,
                "continue": token,
            }
            page = await self._send(
                functools.partial(self.rest.request, "GET", path, params=params), idempotent=True
            )
            for item in page.get("items") or ():
                items.append({"apiVersion": gvk.api_version, "kind": gvk.kind, **item})
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                return items

    # -- writes ------------------------------------------------------------------------------

    async def create(self, obj: Mapping[str, Any]) -> Object:
        """Create ``obj``. Resent only when throttled or never sent (a lost answer may mean it
        was created).

        Raises:
            AlreadyExists: an object of that name exists.
        """
        gvk = GVK.of(obj)
        res = await self.mapper.resource_for(gvk)
        path = res.path(_ns(obj) if res.namespaced else None)
        params = {"fieldManager": self.field_manager}
        return await self._write(
            gvk,
            obj,
            lambda: self.rest.request_with_body("POST", path, params=params, body=obj),
            idempotent=False,
        )

    async def apply(self, obj: Mapping[str, Any], *, force: bool = False) -> Object:
        """Server-side apply ``obj`` (a partial object: only the fields this manager owns).

        Args:
            force: take fields another field manager owns. Default: False, so such a field
                raises ``Conflict`` naming the field and its manager (controller-runtime's
                ``client.ForceOwnership`` is opt-in too).
        """
        return await self._apply(obj, None, force)

    async def apply_status(self, obj: Mapping[str, Any], *, force: bool = False) -> Object:
        """Server-side apply to the status subresource. ``obj`` carries apiVersion, kind,
        metadata.name/namespace and ``status``. ``force``: as :meth:`apply`."""
        return await self._apply(obj, "status", force)

    async def _apply(self, obj: Mapping[str, Any], subresource: str | None, force: bool) -> Object:
        gvk = GVK.of(obj)
        res = await self.mapper.resource_for(gvk)
        path = res.path(_ns(obj) if res.namespaced else None, obj["metadata"]["name"], subresource)
        params = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        return await self._write(
            gvk,
            obj,
            lambda: self.rest.request_with_body(
                "PATCH", path, params=params, body=obj, content_type=APPLY_CONTENT_TYPE
            ),
            idempotent=True,
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
        """Patch an object.

        A patch is *guarded* when it carries ``metadata.resourceVersion`` (merge, strategic)
        or a JSON patch ``test`` of ``/metadata/resourceVersion``: a concurrent change raises
        ``Conflict`` (re-read and decide again). Guarded patches and merge patches (applying
        one twice is applying it once) are resent after a lost answer; unguarded JSON and
        strategic patches are not (``add /metadata/finalizers/-`` twice adds it twice). A
        guarded patch resent after its first attempt landed raises ``Conflict``.
        """
        res = await self.mapper.resource_for(gvk)
        path = res.path(namespace or None, name, subresource)
        params = {"fieldManager": self.field_manager}
        return await self._write(
            gvk,
            {"metadata": {"name": name, "namespace": namespace}},
            lambda: self.rest.request_with_body(
                "PATCH",
                path,
                params=params,
                body=patch,
                content_type=_PATCH_CONTENT_TYPES[patch_type],
            ),
            idempotent=patch_type == "merge" or _guarded(patch),
        )

    async def update(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> Object:
        """PUT the whole object; guarded by its ``metadata.resourceVersion`` when it has one
        (and then resent after a lost answer; a resend after the first attempt landed raises
        ``Conflict``)."""
        gvk = GVK.of(obj)
        res = await self.mapper.resource_for(gvk)
        path = res.path(_ns(obj) if res.namespaced else None, obj["metadata"]["name"], subresource)
        params = {"fieldManager": self.field_manager}
        return await self._write(
            gvk,
            obj,
            lambda: self.rest.request_with_body("PUT", path, params=params, body=obj),
            idempotent=bool((obj.get("metadata") or {}).get("resourceVersion")),
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
        for attempt in range(1, self._attempts + 1):
            live = await self.get_live(gvk, name, namespace)
            if live is None:
                return None
            obj = copy.deepcopy(live)
            if not fn(obj):
                return live
            try:
                return await self.update(obj, subresource=subresource)
            except Conflict:
                if attempt == self._attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def delete(
        self,
        gvk: GVK,
        name: str,
        namespace: str = "",
        *,
        propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> bool:
        """Delete; True when this call deleted it (or marked it for deletion), False when it
        was already gone.

        ``uid`` / ``resource_version`` are preconditions: the server deletes only that object
        (not a re-created one of the same name), only at that version. Only a delete with a
        precondition is resent after a lost answer (resending an unconditional one could delete
        a re-created object); a resend that finds it gone returns True, since the lost attempt
        may have deleted it.

        Raises:
            Conflict: a precondition does not hold.
        """
        path = (await self.mapper.resource_for(gvk)).path(namespace or None, name)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        preconditions = {"uid": uid, "resourceVersion": resource_version}
        if uid or resource_version:
            body["preconditions"] = {k: v for k, v in preconditions.items() if v}
        may_have_landed = False

        async def once() -> bool:
            nonlocal may_have_landed
            try:
                await self.rest.request("DELETE", path, body=body)
            except NotFound:
                return may_have_landed
            except TransportError as e:
                may_have_landed = may_have_landed or e.request_sent
                raise
            except ServerError:
                may_have_landed = True
                raise
            return True

        return await with_retries(
            once, idempotent=bool(uid or resource_version), attempts=self._attempts
        )

    # -- plumbing ----------------------------------------------------------------------------

    async def _send(self, call: Callable[[], Awaitable[Object]], *, idempotent: bool) -> Object:
        return await with_retries(call, idempotent=idempotent, attempts=self._attempts)

    async def _write(
        self,
        gvk: GVK,
        obj: Mapping[str, Any],
        call: Callable[[], Awaitable[tuple[Object, bytes]]],
        *,
        idempotent: bool,
    ) -> Object:
        namespace, name = _name_key(obj)
        if not name:  # generateName: nothing to bracket
            return self._remember(
                *await with_retries(call, idempotent=idempotent, attempts=self._attempts)
            )
        with self._recent.writing(gvk, namespace, name):
            return self._remember(
                *await with_retries(call, idempotent=idempotent, attempts=self._attempts)
            )

    def _remember(self, written: Object, body: bytes) -> Object:
        if isinstance(written.get("metadata"), dict) and written.get("kind"):
            self._recent.remember(written, body)
        return written


def _ns(obj: Mapping[str, Any]) -> str | None:
    ns = (obj.get("metadata") or {}).get("namespace")
    if not ns:
        raise ValueError(
            f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')} needs a namespace"
        )
    return str(ns)


def _name_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = obj.get("metadata") or {}
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def _guarded(patch: Any) -> bool:
    """Whether a patch body carries a resourceVersion precondition."""
    if isinstance(patch, Mapping):
        return bool((patch.get("metadata") or {}).get("resourceVersion"))
    if isinstance(patch, list):
        return any(
            isinstance(op, Mapping)
            and op.get("op") == "test"
            and op.get("path") == "/metadata/resourceVersion"
            for op in patch
        )
    return False


def _selector(label_selector: str | None) -> Callable[[Mapping[str, Any]], bool] | None:
    if not label_selector:
        return None
    # The informers' selector grammar, imported late (aimctl.informers imports aimctl.client).
    from aimctl.informers._selectors import to_selector

    parsed = to_selector(label_selector)
    if parsed is None:
        return None
    return lambda obj: parsed.matches((obj.get("metadata") or {}).get("labels"))
