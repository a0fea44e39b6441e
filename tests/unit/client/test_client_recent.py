"""Read-your-own-writes: a remembered write is used until the informer delivers its version.

resourceVersions are opaque strings here on purpose: the overlay must never compare them as
numbers (API conventions), only decide from what the informer delivered.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aimctl._internal.clock import ManualClock
from aimctl.client import GVK
from aimctl.client._recent import RecentWrites
from aimctl.informers import DeletedFinalStateUnknown, freeze, strip_managed_fields

CM = GVK("", "v1", "ConfigMap")


def cm(rv: str, data: str = "x", *, uid: str = "u1", name: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": rv,
            "managedFields": [{}],
        },
        "data": {"k": data},
    }


def test_a_write_is_read_back_until_the_cache_holds_its_version() -> None:
    recent = RecentWrites()
    recent.remember(cm("opaque-2", "mine"))
    assert recent.newest(CM, "ns", "a", cm("opaque-1", "old"))["data"]["k"] == "mine"
    assert recent.newest(CM, "ns", "a", cm("opaque-2", "cache"))["data"]["k"] == "cache"
    assert len(recent) == 0  # caught up: forgotten


def test_versions_are_compared_only_for_equality() -> None:
    # As numbers "9" > "10" is false and "10" > "9" is true; as opaque strings neither means
    # anything. Until "10" is delivered the cache is older, whatever it holds.
    recent = RecentWrites()
    recent.remember(cm("10", "mine"))
    assert recent.newest(CM, "ns", "a", cm("9", "cache"))["data"]["k"] == "mine"
    recent2 = RecentWrites()
    recent2.remember(cm("abc", "mine"))  # the old code refused non-integer versions
    assert recent2.newest(CM, "ns", "a", cm("abb", "cache"))["data"]["k"] == "mine"


def test_what_is_handed_out_is_frozen_and_independent_of_the_callers_object() -> None:
    recent = RecentWrites()
    written = cm("2", "mine")
    recent.remember(written)
    written["data"]["k"] = "changed by the caller after the write"
    assert "managedFields" in written["metadata"]  # the caller's object is not stripped
    got = recent.newest(CM, "ns", "a", cm("1", "cache"))
    assert got["data"]["k"] == "mine"
    assert "managedFields" not in got["metadata"]
    with pytest.raises(TypeError):
        got["data"]["k"] = "corrupting the next read"
    assert recent.newest(CM, "ns", "a", cm("1", "cache"))["data"]["k"] == "mine"


def test_a_watch_event_that_beats_the_writes_answer_is_not_overridden() -> None:
    recent = RecentWrites()
    seen = recent.forget_when_seen(CM)
    with recent.writing(CM, "ns", "a"):
        seen.on_update(cm("1"), cm("2", "ours, delivered early"))
        seen.on_update(cm("2"), cm("3", "someone else's, right after"))
        recent.remember(cm("2", "ours, answered late"))
    assert len(recent) == 0
    assert recent.newest(CM, "ns", "a", cm("3", "cache"))["data"]["k"] == "cache"


def test_the_informer_handler_forgets_a_write_once_its_version_arrives() -> None:
    recent = RecentWrites()
    seen = recent.forget_when_seen(CM)
    recent.remember(cm("12", "mine"))
    seen.on_update(cm("10"), cm("11"))  # an older version: still in flight
    assert len(recent) == 1
    seen.on_update(cm("11"), cm("12"))  # ours arrived
    assert len(recent) == 0


def test_the_informer_handler_forgets_deleted_objects_and_ignores_other_kinds() -> None:
    recent = RecentWrites()
    recent.remember(cm("12"))
    recent.forget_when_seen(GVK("", "v1", "Secret")).on_update(cm("11"), cm("12"))
    assert len(recent) == 1  # another kind's informer
    recent.forget_when_seen(CM).on_delete(DeletedFinalStateUnknown("ns/a", cm("9")))
    assert len(recent) == 0  # a deletion, even one noticed late, ends the overlay


def test_another_object_of_the_same_name_is_never_hidden() -> None:
    recent = RecentWrites()
    recent.remember(cm("5", "mine", uid="old"))
    assert recent.newest(CM, "ns", "a", cm("7", "new", uid="new"))["data"]["k"] == "new"
    assert len(recent) == 0


def test_an_undelivered_write_is_trusted_only_for_max_age() -> None:
    # A relist after a broken watch may skip our version entirely.
    clock = ManualClock()
    recent = RecentWrites(max_age=15.0, clock=clock)
    recent.remember(cm("2", "mine"))
    clock.advance(14.0)
    assert recent.newest(CM, "ns", "a", cm("3", "cache"))["data"]["k"] == "mine"
    clock.advance(2.0)
    assert recent.newest(CM, "ns", "a", cm("3", "cache"))["data"]["k"] == "cache"
    assert len(recent) == 0
    recent.remember(cm("4", "mine", name="b"))
    clock.advance(16.0)
    recent.remember(cm("5", "mine", name="c"))  # expired entries go with the next write
    assert len(recent) == 1


def test_capacity_forgets_the_oldest() -> None:
    recent = RecentWrites(capacity=2)
    for i in range(3):
        recent.remember(cm(str(10 + i), name=f"n{i}"))
    assert len(recent) == 2
    assert recent.newest(CM, "ns", "n0", cm("1", "cache", name="n0"))["data"]["k"] == "cache"
    assert sorted(recent.pending(CM)) == [("ns", "n1"), ("ns", "n2")]


# -- echoes: a watch event whose bytes are a write's answer --------------------------------------


def answer(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"  # the API server ends an answer with a newline


def test_an_echo_is_the_remembered_write_as_an_informer_stores_it() -> None:
    recent = RecentWrites()
    written = cm("2", "mine")
    body = answer(written)
    recent.remember(written, body)
    written["data"]["k"] = "changed by the caller after the write"

    echoed = recent.echo(CM, body[:-1])

    assert echoed is not None
    assert echoed == freeze(strip_managed_fields(orjson.loads(body)))
    with pytest.raises(TypeError):
        echoed["data"]["k"] = "x"
    assert recent.echoes(CM)(body[:-1]) is echoed


def test_only_identical_bytes_of_the_same_kind_are_echoed() -> None:
    recent = RecentWrites()
    body = answer(cm("2", "mine"))
    recent.remember(cm("2", "mine"), body)
    same_length = body[:-2] + b"!"  # one byte differs
    assert recent.echo(CM, same_length) is None
    assert recent.echo(GVK("", "v1", "Secret"), body[:-1]) is None
    assert recent.echo(CM, body) is None  # with the newline: not a watch event's bytes


def test_an_echo_is_forgotten_once_delivered_replaced_or_pruned() -> None:
    recent = RecentWrites(capacity=2)
    first = answer(cm("2", "one"))
    recent.remember(cm("2", "one"), first)
    recent.forget_when_seen(CM).on_update(cm("1"), cm("2", "one"))  # delivered
    assert recent.echo(CM, first[:-1]) is None

    recent.remember(cm("3", "two"), answer(cm("3", "two")))
    recent.remember(cm("4", "three"), answer(cm("4", "three")))  # same key: replaces
    assert recent.echo(CM, answer(cm("3", "two"))[:-1]) is None
    assert recent.echo(CM, answer(cm("4", "three"))[:-1]) is not None

    for name in ("b", "c"):  # capacity 2: "a" is pruned
        recent.remember(cm("5", name=name), answer(cm("5", name=name)))
    assert recent.echo(CM, answer(cm("4", "three"))[:-1]) is None
    assert recent._by_length == {
        len(answer(cm("5", name="b"))) - 1: [(CM, "ns", "b"), (CM, "ns", "c")]
    }
