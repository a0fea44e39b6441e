"""Owner references: who owns an object, and making an object a controlled child.

A *controller* owner reference (``controller: true``) is what ``Owns()`` watches follow and what
garbage collection uses to delete children with their owner. An object has at most one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aimctl.objects._meta import api_group, meta

__all__ = [
    "AlreadyOwnedError",
    "check_can_control",
    "controller_of",
    "controller_reference",
    "is_controlled_by",
    "owner_matches",
]


class AlreadyOwnedError(Exception):
    """The object already has a different controller owner."""


def controller_reference(
    owner: Mapping[str, Any], *, block_owner_deletion: bool = True
) -> dict[str, Any]:
    """An ``ownerReferences`` entry making ``owner`` the controller of a child.

    ``blockOwnerDeletion`` keeps the owner around during foreground deletion until the child is
    gone (it needs ``update`` on the owner's ``finalizers`` subresource in RBAC).
    """
    m = meta(owner)
    for field in ("name", "uid"):
        if not m.get(field):
            raise ValueError(f"owner has no metadata.{field}; read it from the server first")
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": True,
        "blockOwnerDeletion": block_owner_deletion,
    }


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controller owner reference of ``obj``, if any."""
    for ref in meta(obj).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == meta(owner).get("uid")


def check_can_control(obj: Mapping[str, Any] | None, owner: Mapping[str, Any]) -> None:
    """Raise :class:`AlreadyOwnedError` when an existing ``obj`` has another controller."""
    if obj is None:
        return
    ref = controller_of(obj)
    if ref is not None and ref.get("uid") != meta(owner).get("uid"):
        raise AlreadyOwnedError(
            f"{obj.get('kind', 'object')} {meta(obj).get('name')} is already controlled by "
            f"{ref.get('kind')} {ref.get('name')}"
        )


def owner_matches(ref: Mapping[str, Any], group: str, kind: str) -> bool:
    return ref.get("kind") == kind and api_group(str(ref.get("apiVersion", ""))) == group
