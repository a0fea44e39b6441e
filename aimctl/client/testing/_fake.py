"""FakeClient: the :class:`~aimctl.client.Client` interface over an in-memory fake server.

A ``Client`` subclass, so it goes wherever a reconciler expects a client. It overrides the
primitives (reads, create, apply, apply_status, patch, update, delete), which go through the
:class:`Interceptors`; the composites (``mutate``, ``create_or_update``, ``create_or_patch``,
``add_finalizer``, ``remove_finalizer``) are ``Client``'s own code running on those primitives,
so tests exercise the real helpers. ``tests/unit/client/test_client_fake.py`` checks that every
other public method is overridden and nothing reaches a network.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from aimctl.client._client import Client, PatchType
from aimctl.client._types import GVK, Object
from aimctl.client.testing._interceptors import Hook, Interceptors
from aimctl.client.testing._server import (
    CLUSTER_SCOPED_KINDS,
    KINDS_WITHOUT_STATUS,
    Action,
    FakeServer,
)
from aimctl.informers import IndexFunc, thaw

__all__ = ["FakeClient"]

T = TypeVar("T")


class FakeClient(Client):
    """An in-memory client for reconciler unit tests.

    ``objects`` are stored as given (status included; uid, creationTimestamp, generation and a
    resourceVersion filled in). Options (defaults in brackets): ``field_manager``
    [``"fake-controller"``]; ``interceptors`` [none]; ``cluster_scoped``
    [:data:`CLUSTER_SCOPED_KINDS`]; ``without_status_subresource`` [:data:`KINDS_WITHOUT_STATUS`].
    Indexes for :meth:`by_index`: ``namespace``, and what :meth:`add_index` adds.

    Guarantees: see the package docstring. Not thread-safe; one event loop.
    """

    def __init__(
        self,
        objects: Iterable[Mapping[str, Any]] = (),
        *,
        field_manager: str = "fake-controller",
        interceptors: Interceptors | None = None,
        cluster_scoped: Iterable[GVK] = CLUSTER_SCOPED_KINDS,
        without_status_subresource: Iterable[GVK] = KINDS_WITHOUT_STATUS,
    ) -> None:
        # Client.__init__ is not called: there is no RestClient, mapper or cache behind a fake.
        self._server = FakeServer(cluster_scoped, without_status_subresource)
        self.field_manager = field_manager
        self._attempts = 5  # Client's conflict retries in mutate and the finalizer helpers
        self._hooks = interceptors or Interceptors()
        self.seed(*objects)

    @property
    def actions(self) -> builtins.list[Action]:
        """Every write the fake server received, in order, from this client and its
        ``with_field_manager`` twins (clear it between phases of a test)."""
        return self._server.actions

    def seed(self, *objects: Mapping[str, Any]) -> None:
        """Test setup: store (or replace) objects as given, status included, bypassing the
        write rules and the action log, as another controller or the user would have left
        them. Each gets a new resourceVersion."""
        for obj in objects:
            self._server.seed(obj)

    def add_index(self, gvk: GVK, name: str, fn: IndexFunc) -> None:
        """Index ``gvk`` objects under ``name`` by what ``fn`` returns, as
        ``Manager.add_index`` does for the real cache (then read with :meth:`by_index`)."""
        self._server.indexes.setdefault(gvk, {})[name] = fn

    def with_field_manager(self, field_manager: str) -> FakeClient:
        """The same fake (objects, log, interceptors) writing under another field manager."""
        return self._twin(field_manager, self._hooks)

    def _twin(self, field_manager: str, hooks: Interceptors) -> FakeClient:
        twin = FakeClient.__new__(FakeClient)
        twin._server, twin.field_manager, twin._hooks = self._server, field_manager, hooks
        twin._attempts = self._attempts
        return twin

    async def _call(self, name: str, impl: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``impl(*args, **kwargs)``, or the hook ``name`` on the same arguments."""
        hook: Hook | None = getattr(self._hooks, name)
        if hook is None:
            return impl(*args, **kwargs)
        result: T = await hook(self._twin(self.field_manager, Interceptors()), *args, **kwargs)
        return result

    # -- reads: cached (frozen objects) and live (mutable copies) -------------------------------

    async def get(self, gvk: GVK, name: str, namespace: str = "") -> Object | None:
        return await self._call("get", self._server.get, gvk, name, namespace)

    async def list(
        self, gvk: GVK, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[Object]:
        return await self._call("list", self._server.list, gvk, namespace, label_selector)

    async def by_index(self, gvk: GVK, index: str, value: str) -> builtins.list[Object]:
        return await self._call("by_index", self._server.by_index, gvk, index, value)

    async def get_live(self, gvk: GVK, name: str, namespace: str = "") -> Object | None:
        return await self._call("get_live", self._fake_get_live, gvk, name, namespace)

    def _fake_get_live(self, gvk: GVK, name: str, namespace: str) -> Object | None:
        obj = self._server.get(gvk, name, namespace)
        return None if obj is None else thaw(obj)

    async def list_live(
        self,
        gvk: GVK,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> builtins.list[Object]:
        """Like :meth:`list`, from the server (here: the same objects, as mutable copies)."""
        args = (gvk, namespace, label_selector, field_selector)
        return await self._call("list_live", self._fake_list_live, *args)

    def _fake_list_live(self, *args: Any) -> builtins.list[Object]:
        return [thaw(o) for o in self._server.list(*args)]

    # -- writes: each returns a mutable copy of the stored result -------------------------------

    async def create(self, obj: Mapping[str, Any]) -> Object:
        return await self._call("create", self._server.create, obj)

    async def apply(self, obj: Mapping[str, Any], *, force: bool = False) -> Object:
        """Server-side apply, approximated (see ``_merge``): merges ``obj`` into the stored
        object, removes fields this manager applied before and no longer does, and raises
        ``Conflict`` (without ``force``) for a field another applier set to another value."""
        return await self._call("apply", self._fake_apply, obj, force=force)

    def _fake_apply(self, obj: Mapping[str, Any], *, force: bool) -> Object:
        return self._server.apply(obj, self.field_manager, force, status=False)

    async def apply_status(self, obj: Mapping[str, Any], *, force: bool = False) -> Object:
        return await self._call("apply_status", self._fake_apply_status, obj, force=force)

    def _fake_apply_status(self, obj: Mapping[str, Any], *, force: bool) -> Object:
        return self._server.apply(obj, self.field_manager, force, status=True)

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
        args = (gvk, name, namespace, patch)
        kwargs = {"patch_type": patch_type, "subresource": subresource}
        return await self._call("patch", self._server.patch, *args, **kwargs)

    async def update(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> Object:
        return await self._call("update", self._server.update, obj, subresource=subresource)

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
        """Delete (with finalizers: mark deleting); ``uid`` and ``resource_version`` are
        preconditions (``Conflict``). ``propagation_policy`` is accepted and ignored: the fake
        has no garbage collector."""
        kwargs = {"propagation_policy": propagation_policy, "uid": uid}
        kwargs["resource_version"] = resource_version
        return await self._call("delete", self._server.delete, gvk, name, namespace, **kwargs)
