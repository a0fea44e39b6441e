"""Read-your-own-writes: a remembered write is used only while the cache is older."""

from __future__ import annotations

from typing import Any

from aimctl.client import GVK
from aimctl.client._recent import RecentWrites
from aimctl.informers import DeletedFinalStateUnknown

CM = GVK("", "v1", "ConfigMap")


def cm(rv: str, data: str = "x") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "ns", "resourceVersion": rv, "managedFields": [{}]},
        "data": {"k": data},
    }


def test_a_newer_write_wins_until_the_cache_catches_up() -> None:
    recent = RecentWrites()
    recent.remember(cm("12", "mine"))
    assert recent.newest(CM, "ns", "a", cm("10", "old"))["data"]["k"] == "mine"
    assert recent.newest(CM, "ns", "a", cm("12", "cache"))["data"]["k"] == "cache"
    assert len(recent) == 0  # caught up: forgotten


def test_a_newer_cache_wins_and_managed_fields_are_not_kept() -> None:
    recent = RecentWrites()
    written = cm("12", "mine")
    recent.remember(written)
    assert "managedFields" not in written["metadata"]
    assert recent.newest(CM, "ns", "a", cm("15", "someone else"))["data"]["k"] == "someone else"


def test_non_integer_resource_versions_disable_the_overlay() -> None:
    recent = RecentWrites()
    recent.remember(cm("abc"))
    assert len(recent) == 0


def test_capacity_forgets_the_oldest() -> None:
    recent = RecentWrites(capacity=2)
    for i in range(3):
        obj = cm(str(10 + i))
        obj["metadata"]["name"] = f"n{i}"
        recent.remember(obj)
    assert len(recent) == 2
    first = cm("1", "cache")
    first["metadata"]["name"] = "n0"
    assert recent.newest(CM, "ns", "n0", first)["data"]["k"] == "cache"


def test_the_informer_handler_forgets_a_write_once_its_version_arrives() -> None:
    recent = RecentWrites()
    seen = recent.forget_when_seen(CM)
    recent.remember(cm("12", "mine"))
    seen.on_update(cm("10"), cm("11"))  # an older version: still in flight
    assert len(recent) == 1
    seen.on_update(cm("11"), cm("12"))  # ours arrived
    assert len(recent) == 0
    recent.remember(cm("14", "mine"))
    seen.on_add(cm("15"), False)  # someone else's newer write
    assert len(recent) == 0


def test_the_informer_handler_forgets_deleted_objects_and_ignores_other_kinds() -> None:
    recent = RecentWrites()
    recent.remember(cm("12"))
    recent.forget_when_seen(GVK("", "v1", "Secret")).on_update(cm("11"), cm("13"))
    assert len(recent) == 1  # another kind's informer
    recent.forget_when_seen(CM).on_delete(DeletedFinalStateUnknown("ns/a", cm("9")))
    assert len(recent) == 0  # a deletion, even one noticed late, ends the overlay
