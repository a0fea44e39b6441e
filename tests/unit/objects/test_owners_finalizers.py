from typing import Any

import pytest

from aimctl.objects import (
    AlreadyOwnedError,
    check_can_control,
    controller_of,
    controller_reference,
    has_finalizer,
    is_being_deleted,
    is_controlled_by,
    is_owned_by,
    owner_reference,
    with_finalizer,
    with_owner_reference,
    without_finalizer,
)

OWNER = {
    "apiVersion": "aim.silogen.ai/v1alpha1",
    "kind": "AIMKVCache",
    "metadata": {"name": "c", "namespace": "ns", "uid": "u1"},
}


def test_controller_reference_is_a_blocking_controller_ref() -> None:
    assert controller_reference(OWNER) == {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "name": "c",
        "uid": "u1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_controller_reference_needs_a_uid() -> None:
    with pytest.raises(ValueError, match="uid"):
        controller_reference({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}})


def test_controlled_by_and_already_owned() -> None:
    child = {"metadata": {"name": "s", "ownerReferences": [controller_reference(OWNER)]}}
    assert controller_of(child) is not None
    assert is_controlled_by(child, OWNER)
    check_can_control(child, OWNER)
    check_can_control(None, OWNER)
    other = {**OWNER, "metadata": {"name": "d", "uid": "u2"}}
    with pytest.raises(AlreadyOwnedError, match="already controlled by AIMKVCache c"):
        check_can_control(child, other)


def test_finalizers_are_added_once_and_removed() -> None:
    obj: dict[str, object] = {"metadata": {"finalizers": ["a"]}}
    assert with_finalizer(obj, "a") == ["a"]
    assert with_finalizer(obj, "b") == ["a", "b"]
    assert without_finalizer(obj, "a") == []
    assert has_finalizer(obj, "a")
    assert not is_being_deleted(obj)
    assert is_being_deleted({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})


def test_a_plain_owner_reference_is_not_a_controller_and_upserts_by_owner() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "uid": "u1"}}
    ref = owner_reference(owner)
    assert ref == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "d",
        "uid": "u1",
        "controller": False,
        "blockOwnerDeletion": False,
    }
    child: dict[str, Any] = {"kind": "ConfigMap", "metadata": {"name": "c"}}
    child["metadata"]["ownerReferences"] = with_owner_reference(child, ref)
    assert is_owned_by(child, owner) and not is_controlled_by(child, owner)
    blocking = owner_reference(owner, block_owner_deletion=True)
    refs = with_owner_reference(child, blocking)
    assert refs == [blocking]  # the same owner (group, kind, name) is replaced, not repeated
    other = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "uid": "u2"}}
    child["metadata"]["ownerReferences"] = with_owner_reference(child, owner_reference(other))
    assert len(child["metadata"]["ownerReferences"]) == 2
    boss = {"apiVersion": "x.io/v1", "kind": "Boss", "metadata": {"name": "b", "uid": "u3"}}
    child["metadata"]["ownerReferences"] = with_owner_reference(child, controller_reference(boss))
    with pytest.raises(AlreadyOwnedError):
        with_owner_reference(child, controller_reference(other))
    with pytest.raises(ValueError, match="uid"):
        owner_reference({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
