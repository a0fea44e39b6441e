"""Index functions: map an object to the values it is found under in a secondary index.

Owns nothing; pure functions of an object. The store calls them on every insert and update,
so they must be cheap and must not raise: one that raises (or yields a non-string) is a bug,
and the store refuses the write with ``IndexFuncError`` rather than lose the index entry
(client-go panics; see ``_store``). Index values are plain strings, looked up exactly.

Shipped: ``namespace`` (always installed by the store), controller owner UID, any owner UID,
one label's value, and a dotted field path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aimctl.client import Object

__all__ = [
    "CONTROLLER_UID_INDEX",
    "NAMESPACE_INDEX",
    "OWNER_UID_INDEX",
    "IndexFunc",
    "field_indexer",
    "index_by_controller_uid",
    "index_by_namespace",
    "index_by_owner_uid",
    "label_indexer",
]

IndexFunc = Callable[[Object], Iterable[str]]
"""Returns the index values of an object (none, one or many)."""

NAMESPACE_INDEX = "namespace"
CONTROLLER_UID_INDEX = "controller-uid"
OWNER_UID_INDEX = "owner-uid"


def index_by_namespace(obj: Object) -> Iterable[str]:
    """The object's namespace; cluster-scoped objects are not indexed."""
    ns = obj.get("metadata", {}).get("namespace")
    return (ns,) if ns else ()


def index_by_controller_uid(obj: Object) -> Iterable[str]:
    """The UID of the owner reference with ``controller: true`` (at most one exists).

    ``store.by_index(CONTROLLER_UID_INDEX, owner_uid)`` then finds an owner's children, as
    controller-runtime's ``Owns()`` does through ``EnqueueRequestForOwner(OnlyControllerOwner)``.
    """
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller") is True and ref.get("uid"):
            return (ref["uid"],)
    return ()


def index_by_owner_uid(obj: Object) -> Iterable[str]:
    """The UIDs of all owner references."""
    return tuple(
        ref["uid"] for ref in obj.get("metadata", {}).get("ownerReferences") or () if ref.get("uid")
    )


def label_indexer(key: str) -> IndexFunc:
    """Index by the value of label ``key`` (objects without it are not indexed)."""

    def by_label(obj: Object) -> Iterable[str]:
        value = (obj.get("metadata", {}).get("labels") or {}).get(key)
        return (value,) if isinstance(value, str) else ()

    by_label.__name__ = f"label_indexer({key!r})"
    return by_label


def field_indexer(path: str) -> IndexFunc:
    """Index by a dotted field path, e.g. ``"spec.nodeName"``; lists index every item.

    Only string, integer and boolean leaves are indexed (as their JSON text for non-strings).
    """
    parts = path.split(".")

    def by_field(obj: Object) -> Iterable[str]:
        values: list[object] = [obj]
        for part in parts:
            nxt: list[object] = []
            for v in values:
                if isinstance(v, dict) and part in v:
                    child = v[part]
                    nxt.extend(child if isinstance(child, list) else (child,))
            values = nxt
        out: list[str] = []
        for v in values:
            if isinstance(v, str):
                out.append(v)
            elif isinstance(v, bool):
                out.append("true" if v else "false")
            elif isinstance(v, int):
                out.append(str(v))
        return out

    by_field.__name__ = f"field_indexer({path!r})"
    return by_field
