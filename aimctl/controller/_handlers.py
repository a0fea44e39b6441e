"""Event handlers: turn informer events into workqueue keys.

A handler maps an object to zero or more :class:`Request` s (``for_object``,
``for_controller_owner``, or any ``mapper`` function) and adds them to the controller's queue.
It never calls the API server and never blocks: it runs inside the informer's dispatch.

Priorities (controller-runtime's priority queue semantics): adds from the informer's initial list
and resyncs (an update whose resourceVersion did not change) go in at the controller's low
priority, so after a restart real changes are reconciled before the replay of everything.

Errors: a predicate or mapper that raises must not lose the event. controller-runtime does not
recover there: a panic runs up client-go's ``processorListener.run`` into ``HandleCrash``,
which re-panics (``ReallyCrash`` is true by default) and ends the process; the restarted process
re-lists and so re-delivers every object: the event is late, never lost, and every controller
of the process pays for one bad object (client-go tools/cache/shared_informer.go,
controller-runtime pkg/internal/source/event_handler.go: no ``recover``). We keep "never lost"
and drop "everyone pays":

- a predicate that raises counts as passing (fails open): an extra reconcile of a level-based
  reconciler is harmless, a missed one is not;
- a mapper that raises is logged (error, with the object's kind, namespace, name and the
  traceback), counted in ``aimctl_controller_handler_errors_total{controller}``, and the object
  is mapped again later, with per-object backoff (0.1 s doubling to 5 min), until it maps; then
  its keys are enqueued. Causes that go away (a mapper reading a cache that is still filling)
  heal by themselves; a bug that always raises stays loud, at the backoff's pace. Up to
  ``MAX_RETAINED_VERSIONS`` versions of one object are kept for that: an update's old and new
  objects may map to different keys and both must be woken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from aimctl.controller._predicates import Predicate
from aimctl.controller._reconcile import Request
from aimctl.objects import meta, namespace_of, owner_matches
from aimctl.workqueue import ItemExponentialRateLimiter

if TYPE_CHECKING:
    from aimctl.metrics import Counter

__all__ = [
    "MAX_RETAINED_VERSIONS",
    "EnqueueHandler",
    "Mapper",
    "for_controller_owner",
    "for_object",
    "for_owners",
]

Obj = Mapping[str, Any]
Mapper = Callable[[Obj], Iterable[Request]]

MAX_RETAINED_VERSIONS = 16
"""Versions of one object kept for a retry while its mapper keeps failing (oldest dropped)."""

_RETRY_BASE = 0.1
_RETRY_MAX = 300.0

log = structlog.get_logger("aimctl.controller")


class _Queue(Protocol):
    def add(self, item: Request, priority: int = 0) -> None: ...

    @property
    def shutting_down(self) -> bool: ...


def for_object(obj: Obj) -> Iterable[Request]:
    """The object itself (``For``)."""
    m = meta(obj)
    return (Request(m.get("namespace") or "", m.get("name", "")),)


def for_owners(group: str, kind: str, *, only_controller: bool = True) -> Mapper:
    """The object's owners of ``group``/``kind``: only its controller owner by default
    (``Owns``), every matching owner reference with ``only_controller=False``
    (controller-runtime's ``EnqueueRequestForOwner`` without ``OnlyControllerOwner``).

    The requests carry the child's namespace (owner references name no namespace). That is the
    owner's key only if the owner kind is namespaced: for a cluster-scoped owner kind the key is
    ``("", name)``. ``ControllerBuilder.owns`` asks discovery for the owner's scope and fixes the
    namespace; use this directly only when the owner kind is namespaced.
    """

    def mapper(obj: Obj) -> Iterable[Request]:
        ns = namespace_of(obj)
        out: list[Request] = []
        for ref in meta(obj).get("ownerReferences") or ():
            if owner_matches(ref, group, kind) and (ref.get("controller") or not only_controller):
                out.append(Request(ns, ref["name"]))
                if only_controller:
                    break  # at most one controller reference
        return out

    return mapper


def for_controller_owner(group: str, kind: str) -> Mapper:
    """The object's controller owner, if it is of ``group``/``kind`` (``Owns``).

    Owner references are namespace-local, so the request uses the child's namespace: right for a
    namespaced owner kind only (see :func:`for_owners`).
    """
    return for_owners(group, kind, only_controller=True)


def _unwrap(obj: object) -> Obj:
    # A tombstone (deletion missed during a relist) carries the last known state as ``.obj``.
    inner = getattr(obj, "obj", None)
    return inner if isinstance(inner, Mapping) else obj  # type: ignore[return-value]


def _identity(obj: Obj) -> tuple[str, str, str]:
    m = meta(obj)
    return (str(obj.get("kind", "")), str(m.get("namespace") or ""), str(m.get("name", "")))


class _Failed:
    """One object whose mapping failed: the versions to map again, and the pending timer."""

    __slots__ = ("handle", "versions")

    def __init__(self) -> None:
        # resourceVersion (or id) -> (object, priority); insertion order = age.
        self.versions: dict[str, tuple[Obj, int]] = {}
        self.handle: asyncio.TimerHandle | None = None


class EnqueueHandler:
    """Informer handler: predicates, then mapper, then ``queue.add`` with a priority.

    Guarantees: never raises into the informer; an event whose mapper raised is logged,
    counted in ``errors`` and mapped again with backoff (see the module docstring) until it
    maps or the queue shuts down.

    Args:
        queue: where keys go.
        mapper: object -> keys.
        predicates: all must pass for an event to enqueue anything (informer events only).
        low_priority: priority of initial-list and resync adds.
        controller: name for the logs. Default: "".
        errors: the counter bumped per predicate or mapper exception. Default: none.
    """

    def __init__(
        self,
        queue: _Queue,
        mapper: Mapper,
        predicates: Sequence[Predicate] = (),
        *,
        low_priority: int,
        controller: str = "",
        errors: Counter | None = None,
    ) -> None:
        self._queue = queue
        self._mapper = mapper
        self._predicates = tuple(predicates)
        self._low = low_priority
        self._controller = controller
        self._errors = errors
        self._failed: dict[tuple[str, str, str], _Failed] = {}
        self._backoff = ItemExponentialRateLimiter(base_delay=_RETRY_BASE, max_delay=_RETRY_MAX)

    def on_add(self, obj: Obj, is_initial_list: bool) -> None:
        if self._predicates and not self._passes(lambda p: p.create(obj), obj):
            return
        self._enqueue((obj,), self._low if is_initial_list else 0)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self._predicates and not self._passes(lambda p: p.update(old, new), new):
            return
        resync = meta(old).get("resourceVersion") == meta(new).get("resourceVersion")
        # Both sides: an owner or mapping change must wake the old target as well as the new.
        self._enqueue((new,) if resync else (new, old), self._low if resync else 0)

    def on_delete(self, obj: object) -> None:
        o = _unwrap(obj)
        if self._predicates and not self._passes(lambda p: p.delete(o), o):
            return
        self._enqueue((o,), 0)

    def on_generic(self, obj: Obj) -> None:
        """An event from outside the cluster (a channel source): no predicates, priority 0."""
        self._enqueue((obj,), 0)

    # -- internals ---------------------------------------------------------------------------

    def _passes(self, test: Callable[[Predicate], bool], obj: Obj) -> bool:
        for p in self._predicates:
            try:
                if not test(p):
                    return False
            except Exception as err:
                self._count()
                kind, ns, name = _identity(obj)
                log.error(
                    "Event predicate raised; the event passes it",
                    controller=self._controller,
                    kind=kind,
                    namespace=ns,
                    name=name,
                    predicate=repr(p),
                    exc_info=err,
                )
        return True

    def _enqueue(self, objs: Iterable[Obj], priority: int) -> None:
        reqs: dict[Request, None] = {}
        for o in objs:
            try:
                for req in self._mapper(o):
                    reqs[req] = None
            except Exception as err:
                self._retry_later(o, priority, err)
        add = self._queue.add
        for req in reqs:
            add(req, priority=priority)

    def _count(self) -> None:
        if self._errors is not None:
            self._errors.value += 1

    def _retry_later(self, obj: Obj, priority: int, err: Exception) -> None:
        self._count()
        key = _identity(obj)
        failed = self._failed.get(key)
        if failed is None:
            failed = self._failed[key] = _Failed()
        version = str(meta(obj).get("resourceVersion") or id(obj))
        prev = failed.versions.pop(version, None)
        failed.versions[version] = (obj, max(priority, prev[1]) if prev else priority)
        while len(failed.versions) > MAX_RETAINED_VERSIONS:
            del failed.versions[next(iter(failed.versions))]
        delay: float | None = None
        if failed.handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside an event loop: nothing could run a retry
                loop = None
            if loop is not None:
                delay = self._backoff.when(key)
                failed.handle = loop.call_later(delay, self._retry, key)
        log.error(
            "Event mapper raised; the object is mapped again later",
            controller=self._controller,
            kind=key[0],
            namespace=key[1],
            name=key[2],
            attempts=self._backoff.num_requeues(key),
            retry_in=delay,
            exc_info=err,
        )

    def _retry(self, key: tuple[str, str, str]) -> None:
        failed = self._failed.pop(key, None)
        if failed is None:
            return
        if self._queue.shutting_down:
            self._backoff.forget(key)
            return
        for obj, priority in failed.versions.values():
            self._enqueue((obj,), priority)  # a failure re-registers the key with more backoff
        if key not in self._failed:
            self._backoff.forget(key)
