"""Finalizers on object dicts. These return new lists; writing them back is the caller's job:
``Client.add_finalizer`` / ``Client.remove_finalizer`` do it with a merge patch guarded by
``metadata.resourceVersion``, so concurrent edits are not lost and a resent patch cannot add a
finalizer twice (a JSON patch ``add /metadata/finalizers/-`` can).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aimctl.objects._meta import meta

__all__ = ["has_finalizer", "is_being_deleted", "with_finalizer", "without_finalizer"]


def has_finalizer(obj: Mapping[str, Any], name: str) -> bool:
    return name in (meta(obj).get("finalizers") or ())


def with_finalizer(obj: Mapping[str, Any], name: str) -> list[str]:
    current = list(meta(obj).get("finalizers") or ())
    return current if name in current else [*current, name]


def without_finalizer(obj: Mapping[str, Any], name: str) -> list[str]:
    return [f for f in meta(obj).get("finalizers") or () if f != name]


def is_being_deleted(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))
