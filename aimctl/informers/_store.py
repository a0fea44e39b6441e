"""The indexed, in-memory store of one informer: the cached objects and their secondary indexes.

Owns the cached objects and the index maps. Written by exactly one ``StoreWriter`` (owned by
the informer: two writers on one store would clobber each other on a relist), read by everyone
through ``Store``. Objects are stored as given; the informer stores frozen (read-only) objects,
so readers get the cached object itself, never a copy.

Invariants (asserted in tests/unit/informers/test_informers_store.py):
- For every index ``name``, ``_indices[name][value]`` holds exactly the keys of the stored
  objects whose index function yields ``value``.
- Empty index buckets are removed, so ``_indices`` never grows with deleted values.
- A write whose index functions cannot all be computed changes nothing: an object is never
  stored without its index entries (``IndexFuncError``).

An index function that raises is a bug in the caller's code. client-go panics there
(kubernetes/client-go: tools/cache/thread_safe_store.go, ``updateSingleIndex``: "unable to
calculate an index entry"); here the write is refused with ``IndexFuncError`` and the store left
as it was, so the failure is loud and nothing is silently missing from an index. The informer
counts it and relists (see ``SharedInformer``).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable

import structlog

from aimctl.client import Object
from aimctl.informers._indexers import NAMESPACE_INDEX, IndexFunc, index_by_namespace
from aimctl.informers._selectors import SelectorLike, to_selector

__all__ = ["IndexFuncError", "Store", "StoreWriter", "object_key", "split_key"]

log = structlog.get_logger(__name__)


class IndexFuncError(Exception):
    """An index function raised (or returned something that is not strings) for an object.

    The store refused the write: the object, its previous version and every index are as they
    were before. The function's own exception is the ``__cause__``.

    Attributes:
        index: the name of the index whose function failed.
        key: the key of the object being written (or indexed by ``add_indexer``).
    """

    def __init__(self, index: str, key: str, error: BaseException) -> None:
        self.index = index
        self.key = key
        super().__init__(
            f"index function {index!r} failed for {key!r}: {type(error).__name__}: {error}"
        )


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
        Treat returned objects as read-only. Index functions must be cheap, pure, and must
        not raise: one that raises makes the write fail with ``IndexFuncError``.
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
            IndexFuncError: ``fn`` failed on a stored object; the index is not added.
        """
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists")
        buckets: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in _values(name, fn, obj, key):
                buckets.setdefault(value, set()).add(key)
        self._indexers[name] = fn
        self._indices[name] = buckets

    def writer(self) -> StoreWriter:
        """The one writer of this store. Taken by the informer.

        Raises:
            RuntimeError: the writer was taken already.
        """
        if self._writer is not None:
            raise RuntimeError("a Store has exactly one writer, and it was taken")
        self._writer = StoreWriter(self)
        return self._writer


def _values(index: str, fn: IndexFunc, obj: Object, key: str) -> set[str]:
    """The index values of ``obj``.

    Raises:
        IndexFuncError: ``fn`` raised, or returned something other than strings.
    """
    try:
        raw: set[object] = set(fn(obj))
    except Exception as e:
        raise IndexFuncError(index, key, e) from e
    values = {v for v in raw if isinstance(v, str)}
    if len(values) != len(raw):
        bad = next(v for v in raw if not isinstance(v, str))
        error = TypeError(f"index value {bad!r} is a {type(bad).__name__}, not a str")
        raise IndexFuncError(index, key, error)
    return values


def _current_values(
    index: str, fn: IndexFunc, obj: Object, key: str, buckets: dict[str, set[str]]
) -> set[str]:
    """The values ``key`` is indexed under now. Recomputed from the stored object; should the
    function fail on an object it indexed before (it is not pure), the buckets are searched,
    so removing an object never leaves a stale entry behind."""
    try:
        return _values(index, fn, obj, key)
    except IndexFuncError:
        log.warning("index function not pure: failed on an object it indexed", index=index, key=key)
        return {v for v, keys in buckets.items() if key in keys}


class StoreWriter:
    """The single writer of a ``Store``: insert, replace and delete, keeping indexes exact."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def upsert(self, key: str, obj: Object) -> Object | None:
        """Store ``obj`` under ``key``; returns the object it replaced, if any.

        Raises:
            IndexFuncError: an index function failed on ``obj``; nothing was changed (the
                previous version, if any, stays stored and indexed).
        """
        s = self._store
        # Every new value first: a failure must leave the store untouched.
        new = {name: _values(name, fn, obj, key) for name, fn in s._indexers.items()}
        old = s._items.get(key)
        s._items[key] = obj
        for name, fn in s._indexers.items():
            buckets = s._indices[name]
            new_values = new[name]
            old_values = _current_values(name, fn, old, key, buckets) if old is not None else set()
            if old_values == new_values:
                continue
            for v in old_values - new_values:
                _discard(buckets, v, key)
            for v in new_values:
                buckets.setdefault(v, set()).add(key)
        return old

    def delete(self, key: str) -> Object | None:
        """Remove ``key``; returns the removed object, or None if it was absent. Never raises:
        entries are found by searching when an index function fails on the stored object."""
        s = self._store
        old = s._items.pop(key, None)
        if old is None:
            return None
        for name, fn in s._indexers.items():
            buckets = s._indices[name]
            for v in _current_values(name, fn, old, key, buckets):
                _discard(buckets, v, key)
        return old


def _discard(buckets: dict[str, set[str]], value: str, key: str) -> None:
    keys = buckets.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del buckets[value]
