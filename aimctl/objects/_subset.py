"""Is the desired state already there? ``is_subset(desired, observed)``.

A controller applies (server-side) only the fields it owns. The API server then adds defaults
(``terminationMessagePath``, ``volumeMode``, ...) and other managers add fields of their own, so
"in sync" means every field the controller would write already has the value it would write:
the desired object is a *subset* of the observed one. Checking that before writing is what makes
a converged reconcile cost zero API writes.

Rules:
- dicts: every desired key is present in observed with a subset value;
- lists of dicts that all carry ``name`` (containers, env, ports, volumes, ownerReferences) are
  matched by name: each desired entry must have a same-named observed entry that it is a subset
  of (entries others added are ignored, as server-side apply keeps them);
- other lists must have the same length and be subsets position by position;
- a missing observed key equals a desired zero value (``None``, ``""``, ``0``, ``False``,
  ``[]``, ``{}``): the server omits them (Go's ``omitempty``);
- leaves compare with ``leaf_equal`` (default ``==``), so callers can compare Kubernetes
  quantities semantically (the server stores ``1024Mi`` as ``1Gi``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["diff_paths", "is_subset"]

LeafEqual = Callable[[Any, Any], bool]
_ZERO: tuple[Any, ...] = (None, "", 0, False, [], {})


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def is_subset(desired: Any, observed: Any, *, leaf_equal: LeafEqual = _eq) -> bool:
    return not diff_paths(desired, observed, leaf_equal=leaf_equal, limit=1)


def diff_paths(
    desired: Any, observed: Any, *, leaf_equal: LeafEqual = _eq, limit: int = 20
) -> list[str]:
    """The paths where ``desired`` is not a subset of ``observed`` (at most ``limit``), for
    logs that say *why* a write happens."""
    out: list[str] = []
    _walk(desired, observed, "", leaf_equal, out, limit)
    return out


def _named(items: Sequence[Any]) -> bool:
    return bool(items) and all(isinstance(i, Mapping) and "name" in i for i in items)


def _walk(d: Any, o: Any, path: str, eq: LeafEqual, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    if isinstance(d, Mapping):
        if not isinstance(o, Mapping):
            out.append(path or ".")
            return
        for k, v in d.items():
            if k not in o:
                # The server omits zero values (Go's omitempty): absent equals None, "", 0,
                # False, [] and {}. (Fields where a zero value is meaningful are pointers in
                # Go and are stored, so they never reach this branch.)
                if v not in _ZERO:
                    out.append(f"{path}.{k}")
                continue
            _walk(v, o[k], f"{path}.{k}", eq, out, limit)
        return
    if isinstance(d, list | tuple):
        if not isinstance(o, list | tuple):
            out.append(path)
            return
        if _named(d) and (not o or _named(o)):
            by_name = {i["name"]: i for i in o}
            for item in d:
                match = by_name.get(item["name"])
                if match is None:
                    out.append(f"{path}[{item['name']}]")
                else:
                    _walk(item, match, f"{path}[{item['name']}]", eq, out, limit)
            return
        if len(d) != len(o):
            out.append(path)
            return
        for i, (a, b) in enumerate(zip(d, o, strict=True)):
            _walk(a, b, f"{path}[{i}]", eq, out, limit)
        return
    if not eq(d, o):
        out.append(path)
