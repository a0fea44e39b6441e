"""Event handlers: turn informer events into workqueue keys.

A handler maps an object to zero or more :class:`Request` s (``for_object``,
``for_controller_owner``, or any ``mapper`` function) and adds them to the controller's queue.
It never calls the API server and never blocks: it runs inside the informer's dispatch.

Priorities (controller-runtime's priority queue semantics): adds from the informer's initial list
and resyncs (an update whose resourceVersion did not change) go in at the controller's low
priority, so after a restart real changes are reconciled before the replay of everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from aimctl.controller._predicates import Predicate
from aimctl.controller._reconcile import Request
from aimctl.objects import meta, namespace_of, owner_matches

__all__ = ["EnqueueHandler", "Mapper", "for_controller_owner", "for_object"]

Obj = Mapping[str, Any]
Mapper = Callable[[Obj], Iterable[Request]]


class _Queue(Protocol):
    def add(self, item: Request, *, priority: int = 0) -> None: ...


def for_object(obj: Obj) -> Iterable[Request]:
    """The object itself (``For``)."""
    m = meta(obj)
    return (Request(m.get("namespace") or "", m.get("name", "")),)


def for_controller_owner(group: str, kind: str) -> Mapper:
    """The object's controller owner, if it is of ``group``/``kind`` (``Owns``).

    Owner references are namespace-local, so the request uses the child's namespace.
    """

    def mapper(obj: Obj) -> Iterable[Request]:
        for ref in meta(obj).get("ownerReferences") or ():
            if ref.get("controller") and owner_matches(ref, group, kind):
                return (Request(namespace_of(obj), ref["name"]),)
        return ()

    return mapper


def _unwrap(obj: object) -> Obj:
    # A tombstone (deletion missed during a relist) carries the last known state as ``.obj``.
    inner = getattr(obj, "obj", None)
    return inner if isinstance(inner, Mapping) else obj  # type: ignore[return-value]


class EnqueueHandler:
    """Informer handler: predicates, then mapper, then ``queue.add`` with a priority."""

    def __init__(
        self,
        queue: _Queue,
        mapper: Mapper,
        predicates: Sequence[Predicate] = (),
        *,
        low_priority: int,
    ) -> None:
        self._queue = queue
        self._mapper = mapper
        self._predicates = tuple(predicates)
        self._low = low_priority

    def on_add(self, obj: Obj, is_initial_list: bool) -> None:
        if all(p.create(obj) for p in self._predicates):
            prio = self._low if is_initial_list else 0
            for req in self._mapper(obj):
                self._queue.add(req, priority=prio)

    def on_update(self, old: Obj, new: Obj) -> None:
        if not all(p.update(old, new) for p in self._predicates):
            return
        resync = meta(old).get("resourceVersion") == meta(new).get("resourceVersion")
        prio = self._low if resync else 0
        # Both sides: an owner or mapping change must wake the old target as well as the new.
        reqs = set(self._mapper(new))
        if not resync:
            reqs.update(self._mapper(old))
        for req in reqs:
            self._queue.add(req, priority=prio)

    def on_delete(self, obj: object) -> None:
        o = _unwrap(obj)
        if all(p.delete(o) for p in self._predicates):
            for req in self._mapper(o):
                self._queue.add(req, priority=0)
