"""The event-handler contract: what an informer calls, with what, and in which order.

Owns the handler protocol, the tombstone type and a callback adapter. Handlers are fed by
the informer; they feed work queues (they map an event to keys and enqueue them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aimctl.client import Object

__all__ = ["DeletedFinalStateUnknown", "EventHandler", "FuncHandler"]


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A deletion noticed by a relist, not by a watch event (client-go's tombstone).

    The object vanished while the informer was not watching; ``obj`` is the last state the
    cache had, which may be older than the object's final state.
    """

    key: str
    obj: Object


class EventHandler(Protocol):
    """Receives one informer's changes.

    Guarantees (from the informer):
        - Calls arrive in the order the informer applied the changes, after the store
          already shows them; one handler is never called concurrently with itself.
        - ``on_add(obj, is_initial_list)``: ``is_initial_list`` is True for objects of the
          informer's first list and for the replay a handler gets when added to a running
          informer; False for objects created later (including ones found by a relist).
        - ``on_update(old, new)``: ``old is new`` for a resync replay (no API call made).
        - ``on_delete(obj)``: ``obj`` is the final object, or a ``DeletedFinalStateUnknown``
          when a relist found it gone.
        - Objects are read-only (frozen).
        - An exception raised by a callback is logged with its traceback at error level and
          counted (``aimctl_informer_handler_errors_total{kind,scope}``), never propagated:
          the informer, the other handlers and later events carry on, but that event is not
          delivered to this handler again (a resync, if set, replays the cache to it later).

    Caller obligations (the handler's):
        Return quickly and never await or call the API server: map the event to keys and
        enqueue them.
    """

    def on_add(self, obj: Object, is_initial_list: bool) -> None: ...

    def on_update(self, old: Object, new: Object) -> None: ...

    def on_delete(self, obj: Object | DeletedFinalStateUnknown) -> None: ...


@dataclass(frozen=True, slots=True)
class FuncHandler:
    """An ``EventHandler`` from optional callbacks; missing ones ignore their events."""

    add: Callable[[Object, bool], None] | None = None
    update: Callable[[Object, Object], None] | None = None
    delete: Callable[[Object | DeletedFinalStateUnknown], None] | None = None

    def on_add(self, obj: Object, is_initial_list: bool) -> None:
        if self.add is not None:
            self.add(obj, is_initial_list)

    def on_update(self, old: Object, new: Object) -> None:
        if self.update is not None:
            self.update(old, new)

    def on_delete(self, obj: Object | DeletedFinalStateUnknown) -> None:
        if self.delete is not None:
            self.delete(obj)
