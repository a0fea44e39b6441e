"""Read-your-own-writes for cached reads (client-go's ``MutationCache`` idea).

An informer learns of a write only when the watch event arrives, a few milliseconds to seconds
later. A reconcile that runs in between (another event for the same key) would read the object
as it was before the write, recompute, and write again: in a 1000-object converge that was ~20%
extra writes and duplicate Events. The client therefore remembers the objects its writes
returned, and a cached read returns the remembered one while it is newer than the cache's.

Guarantees:
- A remembered object is used only while the cache holds an *older* resourceVersion of the same
  object; once the cache catches up (or is newer) the entry is dropped.
- It is never used when the cache does not have the object at all, so a deletion is never hidden
  (the price: a write right after a create may see "absent" once more, and re-apply).
- An entry is forgotten as soon as the object's informer delivers that version or a newer one
  (``forget_when_seen`` gives the handler the manager attaches to its informers), or the object
  is deleted; so it holds only the writes still in flight, not the last write of every object.
- At most ``capacity`` entries; the oldest are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aimctl.client._types import GVK, Object

__all__ = ["RecentWrites"]


def _rv(obj: Mapping[str, Any]) -> int | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    try:
        return int(rv) if isinstance(rv, str | int) else None
    except ValueError:
        return None  # not an integer: no ordering, so no overlay


class RecentWrites:
    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._objects: OrderedDict[tuple[GVK, str, str], Object] = OrderedDict()

    def remember(self, obj: Object) -> None:
        m = obj.get("metadata") or {}
        if not m.get("name") or _rv(obj) is None:
            return
        m.pop("managedFields", None)  # as the informers' transform does: not worth the memory
        key = (GVK.of(obj), str(m.get("namespace") or ""), str(m["name"]))
        self._objects[key] = obj
        self._objects.move_to_end(key)
        while len(self._objects) > self._capacity:
            self._objects.popitem(last=False)

    def newest(self, gvk: GVK, namespace: str, name: str, cached: Object) -> Object:
        """``cached``, or the remembered write when that is newer."""
        key = (gvk, namespace, name)
        mine = self._objects.get(key)
        if mine is None:
            return cached
        ours, theirs = _rv(mine), _rv(cached)
        if ours is not None and theirs is not None and ours > theirs:
            return mine
        del self._objects[key]  # the cache has caught up
        return cached

    def forget_when_seen(self, gvk: GVK) -> _Seen:
        """An informer event handler for ``gvk`` that drops entries once the cache has them."""
        return _Seen(self, gvk)

    def _seen(self, gvk: GVK, obj: Mapping[str, Any], *, deleted: bool = False) -> None:
        m = obj.get("metadata") or {}
        key = (gvk, str(m.get("namespace") or ""), str(m.get("name") or ""))
        mine = self._objects.get(key)
        if mine is None:
            return
        ours, theirs = _rv(mine), _rv(obj)
        if deleted or ours is None or theirs is None or theirs >= ours:
            del self._objects[key]

    def __len__(self) -> int:
        return len(self._objects)


class _Seen:
    """The informer-side half of :class:`RecentWrites` (an ``aimctl.informers.EventHandler``)."""

    __slots__ = ("_gvk", "_recent")

    def __init__(self, recent: RecentWrites, gvk: GVK) -> None:
        self._recent = recent
        self._gvk = gvk

    def on_add(self, obj: Object, is_initial_list: bool) -> None:
        self._recent._seen(self._gvk, obj)

    def on_update(self, old: Object, new: Object) -> None:
        self._recent._seen(self._gvk, new)

    def on_delete(self, obj: object) -> None:
        # A tombstone (DeletedFinalStateUnknown) carries the last cached state as ``.obj``.
        final = getattr(obj, "obj", obj)
        if isinstance(final, Mapping):
            self._recent._seen(self._gvk, final, deleted=True)
