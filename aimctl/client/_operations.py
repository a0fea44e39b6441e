"""controller-runtime's ``controllerutil`` as client methods: create-or-update, create-or-patch,
finalizers; plus ``OperationResult`` and the merge patch between two states.

Owns the read-mutate-write recipes built from the client's primitives (``get``, ``create``,
``update``, ``patch``, ``get_live``); ``Client`` inherits them. Upstream:
sigs.k8s.io/controller-runtime pkg/controller/controllerutil/controllerutil.go (CreateOrUpdate,
CreateOrPatch, OperationResult) and pkg/client/patch.go (MergeFrom).
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Protocol, cast

from aimctl.client._errors import Conflict, NotFound
from aimctl.client._types import GVK, Object
from aimctl.objects import has_finalizer, with_finalizer, without_finalizer

__all__ = ["OperationResult", "merge_patch"]


class OperationResult(StrEnum):
    """What ``Client.create_or_update`` / ``create_or_patch`` did (controller-runtime's values)."""

    UNCHANGED = "unchanged"
    """The object existed and ``mutate`` changed nothing: no write."""
    CREATED = "created"
    UPDATED = "updated"
    """The object (not its status) was written."""
    UPDATED_STATUS = "updatedStatus"
    """The object and its status subresource were written (``create_or_patch`` only)."""
    UPDATED_STATUS_ONLY = "updatedStatusOnly"
    """Only the status subresource was written (``create_or_patch`` only)."""


def merge_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning ``before`` into ``after``: changed and new keys,
    ``None`` for removed ones, maps diffed recursively, lists replaced whole. ``{}`` when equal.
    """
    patch: dict[str, Any] = {k: None for k in before if k not in after}
    for k, v in after.items():
        if k not in before:
            patch[k] = v
        elif before[k] != v:
            old = before[k]
            both_maps = isinstance(v, Mapping) and isinstance(old, Mapping)
            patch[k] = merge_patch(old, v) if both_maps else v
    return patch


class _Crud(Protocol):
    """The client primitives the recipes below are built from (``Client`` has them)."""

    _attempts: int

    async def get(self, gvk: GVK, name: str, namespace: str = "") -> Object | None: ...
    async def get_live(self, gvk: GVK, name: str, namespace: str = "") -> Object | None: ...
    async def create(self, obj: Mapping[str, Any]) -> Object: ...
    async def update(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> Object: ...
    async def patch(
        self,
        gvk: GVK,
        name: str,
        namespace: str,
        patch: Any,
        *,
        patch_type: Any = "merge",
        subresource: str | None = None,
    ) -> Object: ...


class _Operations:
    """``Client``'s controllerutil methods (a mixin over :class:`_Crud`)."""

    async def create_or_update(
        self: _Crud, obj: Mapping[str, Any], mutate: Callable[[dict[str, Any]], None]
    ) -> tuple[Object, OperationResult]:
        """controller-runtime's ``controllerutil.CreateOrUpdate``: read ``obj``'s key from the
        cache; when absent, ``mutate`` a copy of ``obj`` and create it; else ``mutate`` a copy
        of the cached object and PUT it (guarded by its resourceVersion) if that changed it.

        ``mutate`` must not change the name or namespace (``ValueError``).

        Raises:
            AlreadyExists: the cache had not seen the object yet; Conflict: it changed since
            the cache saw it. Both mean "requeue": the next attempt reads a newer cache.
        """
        gvk, (namespace, name) = GVK.of(obj), _name_key(obj)
        current = await self.get(gvk, name, namespace)
        if current is None:
            return await self.create(_mutated(obj, mutate)), OperationResult.CREATED
        after = _mutated(current, mutate)
        if after == current:
            return current, OperationResult.UNCHANGED
        return await self.update(after), OperationResult.UPDATED

    async def create_or_patch(
        self: _Crud, obj: Mapping[str, Any], mutate: Callable[[dict[str, Any]], None]
    ) -> tuple[Object, OperationResult]:
        """controller-runtime's ``controllerutil.CreateOrPatch``: as :meth:`create_or_update`,
        but an existing object gets a merge patch of what ``mutate`` changed outside
        ``status``, and the status subresource one of what it changed in ``status``
        (``UPDATED``, ``UPDATED_STATUS`` or ``UPDATED_STATUS_ONLY``). The patches are not
        guarded, so they apply over concurrent changes to other fields."""
        gvk, (namespace, name) = GVK.of(obj), _name_key(obj)
        current = await self.get(gvk, name, namespace)
        if current is None:
            return await self.create(_mutated(obj, mutate)), OperationResult.CREATED
        after = _mutated(current, mutate)
        before = {k: v for k, v in current.items() if k != "status"}
        after_status = after.pop("status", None)
        result, out = OperationResult.UNCHANGED, current
        if before != after:
            out = await self.patch(gvk, name, namespace, merge_patch(before, after))
            result = OperationResult.UPDATED
        if current.get("status") != after_status:
            status_patch = merge_patch(
                {"status": current.get("status")}, {"status": after_status or {}}
            )
            out = await self.patch(gvk, name, namespace, status_patch, subresource="status")
            result = (
                OperationResult.UPDATED_STATUS
                if result is OperationResult.UPDATED
                else OperationResult.UPDATED_STATUS_ONLY
            )
        return out, result

    async def add_finalizer(self: _Crud, obj: Mapping[str, Any], finalizer: str) -> Object:
        """Add ``finalizer`` to the object ``obj`` names, once: a merge patch of the finalizer
        list guarded by the resourceVersion, re-read and redone on conflict; no write when the
        object already has it. Returns the object as written (or as read, if no write).

        Raises:
            NotFound: the object does not exist.
        """
        return await _Operations._set_finalizer(self, obj, finalizer, present=True)

    async def remove_finalizer(self: _Crud, obj: Mapping[str, Any], finalizer: str) -> Object:
        """Remove ``finalizer``, as :meth:`add_finalizer` adds it. Removing the last finalizer
        of a deleting object lets the server delete it at once; if it is gone already, the
        result is ``obj`` without the finalizer (a copy), its last state."""
        return await _Operations._set_finalizer(self, obj, finalizer, present=False)

    async def _set_finalizer(
        self: _Crud, obj: Mapping[str, Any], finalizer: str, present: bool
    ) -> Object:
        gvk, (namespace, name) = GVK.of(obj), _name_key(obj)
        current: Mapping[str, Any] | None = obj
        if not (obj.get("metadata") or {}).get("resourceVersion"):
            current = await self.get_live(gvk, name, namespace)
        attempt = 0
        while True:
            if current is None:
                if present:
                    raise NotFound(404, "NotFound", f"{gvk.kind} {namespace}/{name} not found")
                return _mutated(obj, lambda o: _set_list(o, without_finalizer(o, finalizer)))
            if has_finalizer(current, finalizer) == present:
                return cast(Object, current)
            edit = with_finalizer if present else without_finalizer
            rv = current["metadata"]["resourceVersion"]
            patch = {"metadata": {"finalizers": edit(current, finalizer), "resourceVersion": rv}}
            attempt += 1
            try:
                return await self.patch(gvk, name, namespace, patch)
            except NotFound:
                current = None  # gone: perhaps removing the last finalizer let it go
            except Conflict:
                # Changed since read, or this very patch landed and only its answer was lost
                # (then the re-read shows the finalizer as wanted).
                if attempt >= self._attempts:
                    raise
                current = await self.get_live(gvk, name, namespace)


def _name_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = obj.get("metadata") or {}
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def _mutated(obj: Mapping[str, Any], mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    out: dict[str, Any] = copy.deepcopy(dict(obj))  # frozen cache objects copy to plain dicts
    mutate(out)
    if _name_key(out) != _name_key(obj):
        raise ValueError("mutate must not change the object's name or namespace")
    return out


def _set_list(obj: dict[str, Any], finalizers: builtins.list[str]) -> None:
    obj.setdefault("metadata", {})["finalizers"] = finalizers
