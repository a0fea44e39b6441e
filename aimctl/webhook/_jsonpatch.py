"""RFC 6902 JSON patches computed from two JSON documents.

A mutating webhook answers with the difference between the object it received and the object
its defaulter left (controller-runtime's ``PatchResponseFromRaw``, which uses
gomodules.xyz/jsonpatch ``CreatePatch``; kubernetes-sigs/controller-runtime:
pkg/webhook/admission/response.go). Contract: applying ``create_patch(a, b)`` to ``a`` gives
``b`` exactly; equal documents give ``[]``. Objects are diffed key by key (sorted, so the
patch is deterministic); lists of equal length element by element, other lists are replaced
whole (positions shift under inserts, and the apiserver applies the patch to the very object it
sent, so a replace is always right).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_patch", "escape"]

JsonPatch = list[dict[str, Any]]


def escape(token: str) -> str:
    """One JSON-pointer reference token (RFC 6901: ``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def create_patch(original: Any, current: Any) -> JsonPatch:
    """The operations turning ``original`` into ``current`` (both decoded JSON)."""
    ops: JsonPatch = []
    _diff(original, current, "", ops)
    return ops


def _diff(a: Any, b: Any, path: str, ops: JsonPatch) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() - b.keys()):
            ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
        for key in sorted(b.keys()):
            child = f"{path}/{escape(key)}"
            if key not in a:
                ops.append({"op": "add", "path": child, "value": b[key]})
            else:
                _diff(a[key], b[key], child, ops)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}/{i}", ops)
        return
    # Python's == says True == 1 (and so [1] == [True]): containers are walked above, and a
    # scalar is unchanged only with the same type too.
    if type(a) is type(b) and a == b:
        return
    ops.append({"op": "replace", "path": path, "value": b})
