"""The fake API server's write arithmetic: pure functions on JSON values, no state.

Each function approximates one server algorithm closely enough for reconciler unit tests; the
real kube-apiserver stays the reference (tests/integration) for anything that depends on the
details:

- :func:`merge_patch`: JSON merge patch (RFC 7386), exact.
- :func:`strategic_merge_patch`: merge patch, except that lists of objects with a merge key
  (below) merge item by item. No ``$patch`` directives, no per-field strategies from the
  OpenAPI schema: other lists are replaced (``finalizers`` too, which the server would union).
- :func:`json_patch`: JSON patch (RFC 6902): add, remove, replace, move, copy, test.
- :func:`field_set` / :func:`apply_merge`: server-side apply, approximated. A field set holds
  the paths of an applied object's leaves and of its keyed list items; applying merges the
  object into the live one and removes the paths this manager applied last time but no longer
  applies (unless another applier owns them too).

A merge key: a list whose items are all objects carrying distinct scalar values under ``name``
(containers, env, ports, volumes), ``uid`` (ownerReferences) or ``type`` (conditions). Any
other list is atomic. The server takes merge keys from each field's schema instead.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from aimctl.client._errors import Invalid

__all__ = [
    "Path",
    "apply_merge",
    "field_set",
    "get_path",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]

Segment = str | tuple[str, Any]
"""A dict key, or ``(merge key, value)`` naming one item of a keyed list."""
Path = tuple[Segment, ...]

_MERGE_KEYS = ("name", "uid", "type")
_MISSING: Any = object()


def _merge_key(items: Any) -> str | None:
    if not isinstance(items, list) or not items:
        return None
    for key in _MERGE_KEYS:
        values = [i.get(key) if isinstance(i, dict) else None for i in items]
        if all(isinstance(v, str | int) for v in values) and len(set(values)) == len(values):
            return key
    return None


def merge_patch(target: Any, patch: Any, *, keyed_lists: bool = False) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (``null`` deletes a key).
    ``target`` is not modified."""
    if not isinstance(patch, dict):
        if keyed_lists and (key := _merge_key(patch)) and _merge_key(target) == key:
            return _merge_items(
                target, patch, key, lambda a, b: merge_patch(a, b, keyed_lists=True)
            )
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v, keyed_lists=keyed_lists)
    return out


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """A merge patch whose keyed lists merge by key (see the module docstring)."""
    return merge_patch(target, patch, keyed_lists=True)


def _merge_items(base: list[Any], over: list[Any], key: str, merge: Any) -> list[Any]:
    # Items of ``base`` keep their order (updated in place); new items are appended.
    by_key = {item[key]: item for item in over}
    out = [merge(item, by_key.pop(item[key])) if item[key] in by_key else item for item in base]
    return out + [copy.deepcopy(item) for item in by_key.values()]


# -- JSON patch ---------------------------------------------------------------------------------


def _pointer(text: str) -> list[str]:
    if not text.startswith("/"):
        raise Invalid(422, "Invalid", f"JSON pointer {text!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]


def _locate(doc: Any, parts: list[str]) -> tuple[Any, Any]:
    """The container of the value ``parts`` points at, and its key there (an index in a list;
    ``-`` is the end). KeyError when the container does not exist."""
    try:
        for p in parts[:-1]:
            doc = doc[int(p)] if isinstance(doc, list) else doc[p]
        if isinstance(doc, list):
            index = len(doc) if parts[-1] == "-" else int(parts[-1])
            if index >= 0:
                return doc, index
        elif isinstance(doc, dict):
            return doc, parts[-1]
    except (KeyError, IndexError, ValueError, TypeError):
        pass
    raise KeyError(parts[-1])


def json_patch(doc: Any, ops: Iterable[Any]) -> Any:
    """``doc`` with the JSON patch ``ops`` applied; ``doc`` is not modified.

    Raises:
        Invalid: a failed ``test``, a missing path, an unknown op (the server's 422).
    """
    out = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        if kind not in ("add", "remove", "replace", "move", "copy", "test"):
            raise Invalid(422, "Invalid", f"unknown JSON patch op {kind!r}")
        try:
            value = copy.deepcopy(op.get("value"))
            if kind in ("move", "copy"):
                node, key = _locate(out, _pointer(op.get("from", "")))
                value = node.pop(key) if kind == "move" else copy.deepcopy(node[key])
            node, key = _locate(out, _pointer(op.get("path", "")))
            if kind == "test" and node[key] != value:
                raise Invalid(422, "Invalid", f"JSON patch test failed at {op['path']}")
            if kind in ("remove", "replace"):
                node.pop(key)  # raises when there is nothing to remove
            if kind in ("test", "remove"):
                continue
            if not isinstance(node, list):
                node[key] = value
            elif key <= len(node):
                node.insert(key, value)
            else:
                raise IndexError(key)
        except (KeyError, IndexError):
            raise Invalid(422, "Invalid", f"JSON patch path {op.get('path')} not found") from None
    return out


# -- server-side apply --------------------------------------------------------------------------


def field_set(value: Any, prefix: Path = ()) -> set[Path]:
    """The paths of ``value``'s leaves and keyed list items (an empty dict or list is a leaf)."""
    if isinstance(value, dict) and value:
        return {p for k, v in value.items() for p in field_set(v, (*prefix, k))}
    if key := _merge_key(value):
        out: set[Path] = set()
        for item in value:
            item_path = (*prefix, (key, item[key]))
            out.add(item_path)
            out |= field_set(item, item_path)
        return out
    return {prefix}


def get_path(obj: Any, path: Path) -> Any:
    """The value at ``path``, or a sentinel distinct from every JSON value."""
    node = obj
    for seg in path:
        if isinstance(seg, tuple):
            key, val = seg
            node = next((i for i in node if isinstance(i, dict) and i.get(key) == val), _MISSING)
        elif isinstance(node, dict):
            node = node.get(seg, _MISSING)
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _delete_path(obj: Any, path: Path) -> None:
    if not path:
        return
    parent = get_path(obj, path[:-1])
    seg = path[-1]
    if isinstance(seg, tuple) and isinstance(parent, list):
        parent[:] = [i for i in parent if not (isinstance(i, dict) and i.get(seg[0]) == seg[1])]
    elif isinstance(parent, dict):
        parent.pop(seg, None)


def apply_merge(live: Any, applied: Any, stale: Iterable[Path]) -> Any:
    """``applied`` merged into ``live`` (keyed lists item by item), then the ``stale`` paths
    removed. Neither argument is modified."""
    out = _apply(copy.deepcopy(live), applied)
    for path in sorted(stale, key=len):  # an item before its fields
        _delete_path(out, path)
        # Maps emptied by the removal go too (the server omits empty maps).
        while len(path) > 1 and get_path(out, path := path[:-1]) == {}:
            _delete_path(out, path)
    return out


def _apply(live: Any, applied: Any) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict):
        out = dict(live)
        for k, v in applied.items():
            out[k] = _apply(live[k], v) if k in live else copy.deepcopy(v)
        return out
    if (key := _merge_key(applied)) and _merge_key(live) == key:
        return _merge_items(live, applied, key, _apply)
    return copy.deepcopy(applied)
