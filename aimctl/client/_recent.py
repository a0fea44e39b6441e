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

    def __len__(self) -> int:
        return len(self._objects)
