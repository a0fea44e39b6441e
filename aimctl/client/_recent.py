"""Read-your-own-writes for cached reads (client-go's ``MutationCache`` idea).

An informer learns of a write only when the watch event arrives, a few milliseconds to seconds
later. A reconcile that runs in between (another event for the same key) would read the object
as it was before the write, recompute, and write again: in a 1000-object converge that was ~20%
extra writes and duplicate Events. The client therefore remembers the objects its writes
returned, and a cached read returns the remembered one until the informer delivers it.

resourceVersions are opaque (API conventions: compare them only for equality), so "is the
cache older than my write" is decided by the informer's *delivery order*, never by comparing
versions as numbers. A watch delivers every version of an object in order; so while the
version a write returned (R) has not been delivered, whatever the cache holds is older than R.
Two gaps close that argument:

- The watch event can beat the write's answer (R delivered before ``remember``). The client
  therefore brackets every write in :meth:`RecentWrites.writing`, and versions delivered while
  a write of that key is in flight are noted: a write whose version was already delivered is
  not remembered at all.
- A relist (after a broken watch) delivers only each object's latest state and may skip R.
  An entry older than ``max_age`` seconds is therefore ignored and dropped: the read then
  shows the cache, and at worst a converged reconcile writes once more.

Guarantees:
- A remembered object is returned for ``(gvk, namespace, name)`` only while the cache holds
  that object (same uid) at another version, R has not been delivered, and it is younger
  than ``max_age``. It is never used when the cache does not have the object at all, so a
  deletion is never hidden (the price: a read right after a create may see "absent" once
  more, and re-apply).
- What it hands out is frozen, as informer reads are (``aimctl.informers.freeze``): a caller
  mutating the object its write returned, or the object a read returned, changes nothing here.
- An entry is forgotten as soon as the object's informer delivers R or a deletion
  (``forget_when_seen`` gives the handler the manager attaches to its informers), or when the
  read finds the cache at R; so it holds only the writes still in flight.
- At most ``capacity`` entries; the oldest are forgotten first, and expired ones on the next
  remembered write.

Echoes: every write comes back as a watch event carrying the same object version, and the API
server encodes one version the same way in a write's answer and in a watch event (checked
against kube-apiserver 1.36 for built-in kinds, custom resources and their status). So a write
remembered with its answer's bytes (``body``) is kept as the informers store it (managed fields
stripped, frozen: once, here, instead of in the informer), and :meth:`echo` hands it to a watch
whose event bytes are identical: the informer neither decodes nor freezes the echo again (in a
1000-cache converge, six of the seven watch events per cache are such echoes). Identical bytes
are the whole test: anything else is decoded as usual.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import orjson

from aimctl._internal.clock import MONOTONIC, Clock
from aimctl.client._types import GVK, Object

__all__ = ["RecentWrites"]

_Key = tuple[GVK, str, str]

# Versions noted per in-flight write: a write's answer races a handful of events at most.
_MAX_DELIVERED = 64


def _rv(obj: Mapping[str, Any]) -> str | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return rv if isinstance(rv, str) and rv else None


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _key(gvk: GVK, obj: Mapping[str, Any]) -> _Key:
    m = obj.get("metadata") or {}
    return (gvk, str(m.get("namespace") or ""), str(m.get("name") or ""))


def _stripped(obj: Object) -> Object:
    m = obj.get("metadata")
    if isinstance(m, dict) and "managedFields" in m:
        # As the informers' transform does: not worth the memory. Strip a copy, never the
        # caller's object.
        obj = {**obj, "metadata": {k: v for k, v in m.items() if k != "managedFields"}}
    return obj


def _freeze(obj: Object) -> Object:
    # The informers' freeze, imported late: aimctl.informers imports aimctl.client, and the
    # layering keeps the client below the informers (the freeze helpers belong below both).
    from aimctl.informers._frozen import freeze

    return freeze(obj)


def _snapshot(obj: Object, body: bytes | None) -> Object | bytes:
    """What ``remember`` keeps: with the answer's bytes, the object as an informer stores it
    (for :meth:`RecentWrites.echo`); else its JSON, frozen only if it is ever handed out.

    Without an echo to serve, most remembered writes are never read before the informer
    delivers them (and they are dropped); serialising is several times cheaper than freezing
    (py-spy, 1000-cache converge: freezing every write's answer was ~2% of the operator's CPU).
    Bytes are as good a snapshot as a frozen copy: a caller mutating its object afterwards
    changes nothing here. An object orjson cannot encode is frozen at once instead."""
    if body is not None:
        return _freeze(_stripped(obj))
    try:
        return orjson.dumps(_stripped(obj))
    except TypeError:
        return _freeze(_stripped(obj))


def _answer(body: bytes | None) -> bytes | None:
    # The API server ends an answer with a newline, a watch event's object without one.
    if not body or body[:1] != b"{":
        return None
    return body[:-1] if body[-1:] == b"\n" else body


class _Entry:
    __slots__ = ("at", "body", "delivered", "in_flight", "obj", "rv", "uid")

    def __init__(self) -> None:
        # The remembered write: its JSON until first handed out, then frozen (``_snapshot``);
        # None: nothing to overlay.
        self.obj: Object | bytes | None = None
        self.rv: str | None = None  # its resourceVersion (R)
        self.uid = ""
        self.at = 0.0  # when it was remembered (monotonic)
        self.in_flight = 0  # writes of this key awaiting their answer
        self.delivered: set[str] = set()  # versions delivered while in_flight > 0
        self.body: bytes | None = None  # the answer's bytes, while ``obj`` may be echoed


class RecentWrites:
    """The remembered writes of one manager's clients (see the module docstring).

    Args:
        capacity: at most this many entries. Default: 4096.
        max_age: seconds after which a remembered write is no longer trusted over the cache
            (a relist may have skipped its version). Default: 15.
        clock: monotonic time source. Default: the process clock.
    """

    def __init__(
        self, capacity: int = 4096, *, max_age: float = 15.0, clock: Clock = MONOTONIC
    ) -> None:
        self._capacity = capacity
        self._max_age = max_age
        self._clock = clock
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        # The keys whose entry holds a remembered write, oldest first: expiry scans these only,
        # not the writes in flight (with 32 workers, ~30 of those stood before the first young
        # entry on every remembered write; py-spy, 1000-cache converge).
        self._aging: dict[_Key, None] = {}
        # Answer length -> the keys whose entry holds an answer of that length (``echo``).
        self._by_length: dict[int, list[_Key]] = {}

    def writing(self, gvk: GVK, namespace: str, name: str) -> AbstractContextManager[None]:
        """Bracket one write of ``(gvk, namespace, name)``: from before the request is sent
        until its answer was remembered, versions the informer delivers are noted."""
        # A small class, not @contextmanager: every write enters one, and the generator-based
        # manager cost ~1% of the operator's CPU in a 1000-cache converge (py-spy).
        return _Writing(self, (gvk, namespace, name))

    def remember(self, obj: Object, body: bytes | None = None) -> None:
        """Remember what a write returned (not ``obj`` itself: a snapshot). ``body``: the
        answer's bytes, which :meth:`echo` matches against watch events."""
        rv = _rv(obj)
        if not (obj.get("metadata") or {}).get("name") or rv is None:
            return
        key = _key(GVK.of(obj), obj)
        entry = self._entries.get(key)
        if entry is not None:
            self._unindex(key, entry)
        if entry is not None and rv in entry.delivered:
            entry.obj = None  # the informer already has this version (it beat the answer)
            self._aging.pop(key, None)
            return
        if entry is None:
            entry = self._entries[key] = _Entry()
        body = _answer(body)
        entry.obj = _snapshot(obj, body)
        if body is not None:
            entry.body = body
            self._by_length.setdefault(len(body), []).append(key)
        entry.rv = rv
        entry.uid = _uid(obj)
        entry.at = self._clock.now()
        self._entries.move_to_end(key)
        self._aging.pop(key, None)
        self._aging[key] = None
        self._prune()

    def newest(self, gvk: GVK, namespace: str, name: str, cached: Object) -> Object:
        """``cached`` (what the informer holds), or the remembered write while that is newer."""
        key = (gvk, namespace, name)
        entry = self._entries.get(key)
        if entry is None or entry.obj is None:
            return cached
        uid = _uid(cached)
        if (
            _rv(cached) == entry.rv  # the cache has caught up
            or (uid and entry.uid and uid != entry.uid)  # another object of that name
            or self._clock.now() - entry.at > self._max_age
        ):
            self._drop(key, entry)
            return cached
        if isinstance(entry.obj, bytes):
            entry.obj = _freeze(orjson.loads(entry.obj))
        return entry.obj

    def echo(self, gvk: GVK, body: bytes) -> Object | None:
        """The remembered write of ``gvk`` whose answer's bytes are ``body``, as an informer
        stores it (managed fields stripped, frozen), or None."""
        for key in self._by_length.get(len(body), ()):
            if key[0] == gvk:
                entry = self._entries[key]
                if entry.body == body and not isinstance(entry.obj, bytes | None):
                    return entry.obj
        return None

    def echoes(self, gvk: GVK) -> Callable[[bytes], Object | None]:
        """:meth:`echo` for one kind (a ``WatchStream``'s ``known``)."""
        return functools.partial(self.echo, gvk)

    def pending(self, gvk: GVK) -> list[tuple[str, str]]:
        """``(namespace, name)`` of the remembered writes of ``gvk`` (few: those in flight)."""
        return [(ns, n) for (g, ns, n), e in self._entries.items() if g == gvk and e.obj]

    def forget_when_seen(self, gvk: GVK) -> _Seen:
        """An informer event handler for ``gvk`` that drops entries once the cache has them."""
        return _Seen(self, gvk)

    def _seen(self, gvk: GVK, obj: Mapping[str, Any], *, deleted: bool = False) -> None:
        key = _key(gvk, obj)
        entry = self._entries.get(key)
        if entry is None:
            return
        rv = _rv(obj)
        if entry.in_flight and rv is not None and len(entry.delivered) < _MAX_DELIVERED:
            entry.delivered.add(rv)
        if deleted or (entry.obj is not None and rv == entry.rv):
            self._drop(key, entry)

    def _unindex(self, key: _Key, entry: _Entry) -> None:
        if entry.body is None:
            return
        keys = self._by_length.get(len(entry.body))
        if keys is not None:
            keys.remove(key)
            if not keys:
                del self._by_length[len(entry.body)]
        entry.body = None

    def _drop(self, key: _Key, entry: _Entry) -> None:
        self._unindex(key, entry)
        entry.obj = None
        self._aging.pop(key, None)
        if entry.in_flight == 0:
            del self._entries[key]

    def _prune(self) -> None:
        now = self._clock.now()
        while len(self._entries) > self._capacity:
            key, entry = self._entries.popitem(last=False)
            self._aging.pop(key, None)
            self._unindex(key, entry)
        expired = []
        # Only the expired prefix is visited (not a copy of all entries per write, as before).
        for key in self._aging:
            entry = self._entries[key]
            if now - entry.at <= self._max_age:
                break  # remembered entries are in remember order: the rest are younger
            expired.append((key, entry))
        for key, entry in expired:
            self._drop(key, entry)

    def __len__(self) -> int:
        """The number of remembered writes that may still be handed out."""
        return sum(1 for e in self._entries.values() if e.obj is not None)


class _Writing:
    """The context manager of :meth:`RecentWrites.writing`."""

    __slots__ = ("_entry", "_key", "_recent")

    def __init__(self, recent: RecentWrites, key: _Key) -> None:
        self._recent = recent
        self._key = key
        self._entry: _Entry | None = None

    def __enter__(self) -> None:
        entries = self._recent._entries
        entry = entries.get(self._key)
        if entry is None:
            entry = entries[self._key] = _Entry()
        entry.in_flight += 1
        self._entry = entry

    def __exit__(self, *exc_info: object) -> None:
        entry = self._entry
        if entry is None:
            return
        self._entry = None
        entry.in_flight -= 1
        if entry.in_flight == 0:
            entry.delivered.clear()
            if entry.obj is None and self._recent._entries.get(self._key) is entry:
                del self._recent._entries[self._key]


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
