"""The indexed, in-memory store of one informer: the cached objects and their secondary indexes.

Owns the cached objects and the index maps. Written by exactly one ``StoreWriter`` (owned by
the informer: two writers on one store would clobber each other on a relist), read by everyone
through ``Store``. Objects are stored as given; the informer stores frozen (read-only) objects,
so readers get the cached object itself, never a copy.

Invariants (asserted in tests/unit/informers/test_store.py):
- For every index ``name``, ``_indices[name][value]`` holds exactly the keys of the stored
  objects whose index function yields ``value``.
- Empty index buckets are removed, so ``_indices`` never grows with deleted values.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable

import structlog

from aimctl.client import Object
from aimctl.informers._indexers import NAMESPACE_INDEX, IndexFunc, index_by_namespace
from aimctl.informers._selectors import SelectorLike, to_selector

__all__ = ["Store", "StoreWriter", "object_key", "split_key"]

log = structlog.get_logger(__name__)


def object_key(obj: Object) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's MetaNamespaceKey).

    Raises:
        KeyError: the object has no ``metadata.name``.
    """
    md = obj["metadata"]
    ns = md.get("namespace")
    name: str = md["name"]
    return f"{ns}/{name}" if ns else name


def split_key(key: str) -> tuple[str | None, str]:
    """``"ns/name"`` -> ``("ns", "name")``; ``"name"`` -> ``(None, "name")``."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, key)


class Store:
    """Read access to one informer's cache.

    Guarantees:
        - Reads are synchronous and never block; a read between two awaits sees one
          consistent state (the writer changes the store only synchronously).
        - Objects returned are the cached objects themselves; the informer stores frozen
          objects, so mutating one raises ``TypeError`` (use ``copy.deepcopy``).
        - Lists are new Python lists (mutating the list does not affect the store), in no
          particular order.

    Caller obligations:
        Treat returned objects as read-only. Index functions must be cheap and pure.
    """

    def __init__(self) -> None:
        self._items: dict[str, Object] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: index_by_namespace}
        # index name -> value -> keys of the objects indexed under that value
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        self._writer: StoreWriter | None = None

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: str) -> Object | None:
        """The object stored under ``namespace/name`` (``name`` when cluster-scoped)."""
        return self._items.get(key)

    def get_by_name(self, namespace: str | None, name: str) -> Object | None:
        """The object named ``name`` in ``namespace`` (None for cluster-scoped kinds)."""
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(
        self,
        namespace: str | None = None,
        label_selector: SelectorLike | None = None,
    ) -> builtins.list[Object]:
        """Objects in ``namespace`` (all when None) whose labels match ``label_selector``.

        ``label_selector`` is a selector string (``"app=web,tier in (a,b),!old"``), an
        equality map or a ``LabelSelector``.

        Raises:
            ValueError: the selector string is malformed.
        """
        selector = to_selector(label_selector)
        if namespace is None:
            objs: Iterable[Object] = self._items.values()
        else:
            keys = self._indices[NAMESPACE_INDEX].get(namespace, ())
            objs = [self._items[k] for k in keys]
        if selector is None:
            return list(objs)
        return [o for o in objs if selector.matches(o.get("metadata", {}).get("labels"))]

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def by_index(
        self, index: str, value: str, namespace: str | None = None
    ) -> builtins.list[Object]:
        """Objects indexed under ``value`` in ``index``, optionally only in ``namespace``.

        Raises:
            KeyError: no index named ``index``.
        """
        keys = self.index_keys(index, value)
        objs = [self._items[k] for k in keys]
        if namespace is not None:
            objs = [o for o in objs if o.get("metadata", {}).get("namespace") == namespace]
        return objs

    def index_keys(self, index: str, value: str) -> builtins.list[str]:
        """Keys of the objects indexed under ``value`` in ``index``.

        Raises:
            KeyError: no index named ``index``.
        """
        try:
            buckets = self._indices[index]
        except KeyError:
            raise KeyError(f"no index {index!r}; known: {sorted(self._indices)}") from None
        return list(buckets.get(value, ()))

    def index_values(self, index: str) -> builtins.list[str]:
        """The values that currently have objects in ``index``."""
        return list(self._indices[index])

    @property
    def indexers(self) -> dict[str, IndexFunc]:
        return dict(self._indexers)

    # -- configuration ----------------------------------------------------------------------

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Add a secondary index; existing objects are indexed at once.

        Raises:
            ValueError: an index with this name exists.
        """
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists")
        self._indexers[name] = fn
        buckets: dict[str, set[str]] = {}
        self._indices[name] = buckets
        for key, obj in self._items.items():
            for value in _values(name, fn, obj):
                buckets.setdefault(value, set()).add(key)

    def writer(self) -> StoreWriter:
        """The one writer of this store. Taken by the informer.

        Raises:
            RuntimeError: the writer was taken already.
        """
        if self._writer is not None:
            raise RuntimeError("a Store has exactly one writer, and it was taken")
        self._writer = StoreWriter(self)
        return self._writer


def _values(index: str, fn: IndexFunc, obj: Object) -> Iterable[str]:
    try:
        return set(fn(obj))
    except Exception:
        log.exception("index function failed; object not indexed", index=index)
        return ()


class StoreWriter:
    """The single writer of a ``Store``: insert, replace and delete, keeping indexes exact."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def upsert(self, key: str, obj: Object) -> Object | None:
        """Store ``obj`` under ``key``; returns the object it replaced, if any."""
        s = self._store
        old = s._items.get(key)
        s._items[key] = obj
        for name, fn in s._indexers.items():
            new_values = _values(name, fn, obj)
            old_values = _values(name, fn, old) if old is not None else ()
            if old_values == new_values:
                continue
            buckets = s._indices[name]
            for v in old_values:
                if v not in new_values:
                    _discard(buckets, v, key)
            for v in new_values:
                buckets.setdefault(v, set()).add(key)
        return old

    def delete(self, key: str) -> Object | None:
        """Remove ``key``; returns the removed object, or None if it was absent."""
        s = self._store
        old = s._items.pop(key, None)
        if old is None:
            return None
        for name, fn in s._indexers.items():
            buckets = s._indices[name]
            for v in _values(name, fn, old):
                _discard(buckets, v, key)
        return old


def _discard(buckets: dict[str, set[str]], value: str, key: str) -> None:
    keys = buckets.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del buckets[value]
