"""Owner references: who owns an object, and making an object a controlled child.

A *controller* owner reference (``controller: true``) is what ``Owns()`` watches follow and what
garbage collection uses to delete children with their owner. An object has at most one. Any
number of plain owner references (``owner_reference(owner)``) also make garbage collection wait
for all owners to go (controller-runtime's ``controllerutil.SetOwnerReference``).
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
    "is_owned_by",
    "owner_matches",
    "owner_reference",
    "with_owner_reference",
]


class AlreadyOwnedError(Exception):
    """The object already has a different controller owner."""


def owner_reference(
    owner: Mapping[str, Any], *, controller: bool = False, block_owner_deletion: bool = False
) -> dict[str, Any]:
    """An ``ownerReferences`` entry naming ``owner`` (which must have been read from the
    server: it needs ``metadata.uid``).

    Args:
        controller: make it the controller reference (see :func:`controller_reference`).
            Default: False, a plain owner (controllerutil.SetOwnerReference's shape).
        block_owner_deletion: keep the owner around during foreground deletion until the child
            is gone (needs ``update`` on the owner's ``finalizers`` subresource in RBAC).
            Default: False.

    Raises:
        ValueError: ``owner`` has no apiVersion, kind, name or uid.
    """
    m = meta(owner)
    for field in ("name", "uid"):
        if not m.get(field):
            raise ValueError(f"owner has no metadata.{field}; read it from the server first")
    if not owner.get("apiVersion") or not owner.get("kind"):
        raise ValueError("owner has no apiVersion/kind")
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def controller_reference(
    owner: Mapping[str, Any], *, block_owner_deletion: bool = True
) -> dict[str, Any]:
    """An ``ownerReferences`` entry making ``owner`` the controller of a child.

    ``blockOwnerDeletion`` keeps the owner around during foreground deletion until the child is
    gone (it needs ``update`` on the owner's ``finalizers`` subresource in RBAC).
    """
    return owner_reference(owner, controller=True, block_owner_deletion=block_owner_deletion)


def with_owner_reference(obj: Mapping[str, Any], ref: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``obj``'s owner references with ``ref`` added, or replacing the entry for the same
    owner (same API group, kind and name, as controllerutil's upsert). A new list; write it
    back as ``metadata.ownerReferences``.

    Raises:
        AlreadyOwnedError: ``ref`` is a controller reference and ``obj`` has another controller.
    """
    group = api_group(str(ref.get("apiVersion", "")))
    out: list[dict[str, Any]] = []
    replaced = False
    for existing in meta(obj).get("ownerReferences") or ():
        same = (
            existing.get("kind") == ref.get("kind")
            and existing.get("name") == ref.get("name")
            and api_group(str(existing.get("apiVersion", ""))) == group
        )
        if ref.get("controller") and existing.get("controller") and not same:
            raise AlreadyOwnedError(
                f"{obj.get('kind', 'object')} {meta(obj).get('name')} is already controlled by "
                f"{existing.get('kind')} {existing.get('name')}"
            )
        if same:
            out.append(dict(ref))
            replaced = True
        else:
            out.append(dict(existing))
    if not replaced:
        out.append(dict(ref))
    return out


def is_owned_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """Whether any of ``obj``'s owner references (controller or not) names ``owner``'s uid."""
    uid = meta(owner).get("uid")
    return bool(uid) and any(
        ref.get("uid") == uid for ref in meta(obj).get("ownerReferences") or ()
    )


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
