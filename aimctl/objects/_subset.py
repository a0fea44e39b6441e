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
- a missing observed key equals a desired ``None``, ``[]`` or ``{}`` only: the server omits
  empty collections and nulls (Go's ``omitempty`` on slices, maps and nil pointers). ``""``,
  ``0`` and ``False`` are NOT equal to absent: where they mean something the field is a pointer
  in Go and the server stores them (``automountServiceAccountToken: false``), so an absent one
  is drift that must be written. A builder that sends a zero value for an ``omitempty`` scalar
  (an env var's ``value: ""``) must leave it out instead: which fields those are is
  Kubernetes-type knowledge, so it belongs in the builder, not in a global rule here;
- leaves compare with ``leaf_equal`` (default ``==``), so callers can compare Kubernetes
  quantities semantically (the server stores ``1024Mi`` as ``1Gi``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["diff_paths", "is_subset"]

LeafEqual = Callable[[Any, Any], bool]


def _absent_equivalent(v: Any) -> bool:
    # ``v in (None, [], {})`` would also match False and 0 (0 == False, but not 0 == []); test
    # the types explicitly so a desired ``False`` is never mistaken for an omitted field.
    return v is None or (isinstance(v, list | tuple | Mapping) and not v)


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def is_subset(desired: Any, observed: Any, *, leaf_equal: LeafEqual = _eq) -> bool:
    return _same(desired, observed, leaf_equal)


def diff_paths(
    desired: Any, observed: Any, *, leaf_equal: LeafEqual = _eq, limit: int = 20
) -> list[str]:
    """The paths where ``desired`` is not a subset of ``observed`` (at most ``limit``), for
    logs that say *why* a write happens."""
    if _same(desired, observed, leaf_equal):
        # The usual answer (a converged child): found without building a path string per
        # field, which was most of the walk's cost (py-spy, 1000-cache converge).
        return []
    out: list[str] = []
    _walk(desired, observed, "", leaf_equal, out, limit)
    return out


def _named(items: Sequence[Any]) -> bool:
    if not items:
        return False
    for i in items:  # noqa: SIM110 - a loop, not all(<generator>): cheaper on this hot path
        if not (_mapping(i) and "name" in i):
            return False
    return True


# Types that are never a Mapping: tested first, so most leaves skip the (slower) ABC check.
_LEAF = (str, int, float, type(None))
# Exact leaf types, compared at once rather than through another call.
_LEAF_TYPES = frozenset({str, int, float, bool, type(None)})


def _mapping(x: Any) -> bool:
    # dict first: for a dict subclass (the cache's frozen objects) the Mapping check alone goes
    # through ABCMeta.__instancecheck__, ~10x slower.
    return isinstance(x, (dict, Mapping))


def _same(d: Any, o: Any, eq: LeafEqual) -> bool:
    """Whether ``_walk`` would find no difference at all (the same rules, no paths).

    Run on every child of every reconcile (a converged one compares the whole desired
    StatefulSet), so it avoids a call per leaf and the ABC checks of ``_walk``: dicts, lists
    and tuples are recognised by their types first (a list is no Mapping)."""
    if isinstance(d, dict):
        return _same_mapping(d, o, eq)
    if isinstance(d, list | tuple):
        if not isinstance(o, list | tuple):
            return False
        if _named(d) and (not o or _named(o)):
            by_name = {i["name"]: i for i in o}
            for item in d:
                match = by_name.get(item["name"])
                if match is None or not _same(item, match, eq):
                    return False
            return True
        if len(d) != len(o):
            return False
        for a, b in zip(d, o, strict=True):  # noqa: SIM110 - as in _named
            if not _same(a, b, eq):
                return False
        return True
    if not isinstance(d, _LEAF) and isinstance(d, Mapping):
        return _same_mapping(d, o, eq)
    return bool(eq(d, o))


def _same_mapping(d: Mapping[str, Any], o: Any, eq: LeafEqual) -> bool:
    if not isinstance(o, (dict, Mapping)):
        return False
    for k, v in d.items():
        if k not in o:
            if not _absent_equivalent(v):
                return False
        elif type(v) in _LEAF_TYPES:
            if not eq(v, o[k]):
                return False
        elif not _same(v, o[k], eq):
            return False
    return True


def _walk(d: Any, o: Any, path: str, eq: LeafEqual, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    if isinstance(d, Mapping):
        if not isinstance(o, Mapping):
            out.append(path or ".")
            return
        for k, v in d.items():
            if k not in o:
                # Only nulls and empty collections are omitted by every server type; a
                # missing "", 0 or False is a field to write (see the module docstring).
                if not _absent_equivalent(v):
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
