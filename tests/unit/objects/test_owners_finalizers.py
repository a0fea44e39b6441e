import pytest

from aimctl.objects import (
    AlreadyOwnedError,
    check_can_control,
    controller_of,
    controller_reference,
    has_finalizer,
    is_being_deleted,
    is_controlled_by,
    with_finalizer,
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
