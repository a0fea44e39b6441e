"""Frozen objects: read-only, yet equal to, serialisable as, and copyable into plain JSON."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from aimctl.informers import FrozenDict, FrozenList, freeze, thaw


def sample() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "labels": {"app.kubernetes.io/name": "web"},
            "annotations": {"a": "b"},
            "ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "controller": True}],
            "finalizers": ["x/y"],
        },
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
    }


MUTATIONS: list[Callable[[Any], Any]] = [
    lambda o: o.__setitem__("kind", "X"),
    lambda o: o.__delitem__("kind"),
    lambda o: o.update(a=1),
    lambda o: o.pop("kind"),
    lambda o: o.popitem(),
    lambda o: o.clear(),
    lambda o: o.setdefault("z", 1),
    lambda o: o["metadata"]["labels"].__setitem__("x", "y"),
    lambda o: o["metadata"]["finalizers"].append("z"),
    lambda o: o["metadata"]["finalizers"].extend(["z"]),
    lambda o: o["metadata"]["finalizers"].insert(0, "z"),
    lambda o: o["metadata"]["finalizers"].pop(),
    lambda o: o["metadata"]["finalizers"].remove("x/y"),
    lambda o: o["metadata"]["finalizers"].sort(),
    lambda o: o["metadata"]["finalizers"].reverse(),
    lambda o: o["metadata"]["finalizers"].clear(),
    lambda o: o["metadata"]["finalizers"].__setitem__(0, "z"),
    lambda o: o["metadata"]["finalizers"].__delitem__(0),
    lambda o: o["spec"]["containers"][0]["ports"][0].__setitem__("containerPort", 81),
]


@pytest.mark.parametrize("mutate", MUTATIONS)
def test_every_mutation_of_a_frozen_object_raises(mutate: Callable[[Any], Any]) -> None:
    frozen = freeze(sample())
    with pytest.raises(TypeError, match="read-only"):
        mutate(frozen)
    assert frozen == sample()


def test_in_place_operators_raise_too() -> None:
    frozen = freeze(sample())
    fins = frozen["metadata"]["finalizers"]
    with pytest.raises(TypeError):
        fins += ["z"]
    with pytest.raises(TypeError):
        fins *= 2
    labels = frozen["metadata"]["labels"]
    with pytest.raises(TypeError):
        labels |= {"a": "b"}


def test_frozen_objects_equal_and_serialise_like_plain_json() -> None:
    plain = sample()
    frozen = freeze(plain)
    assert isinstance(frozen, dict)
    assert isinstance(frozen, FrozenDict)
    assert isinstance(frozen["metadata"]["finalizers"], list)
    assert isinstance(frozen["metadata"]["finalizers"], FrozenList)
    assert frozen == plain
    assert frozen["metadata"]["finalizers"] == ["x/y"]
    assert orjson.loads(orjson.dumps(frozen)) == plain
    assert json.loads(json.dumps(frozen)) == plain


def test_freezing_does_not_touch_the_input() -> None:
    plain = sample()
    freeze(plain)
    assert type(plain["metadata"]) is dict
    plain["metadata"]["name"] = "changed"  # still mutable


def test_deepcopy_and_thaw_give_plain_mutable_copies() -> None:
    frozen = freeze(sample())
    for copied in (copy.deepcopy(frozen), thaw(frozen)):
        assert type(copied) is dict
        assert type(copied["metadata"]["labels"]) is dict
        assert type(copied["metadata"]["finalizers"]) is list
        copied["metadata"]["labels"]["new"] = "x"
        assert copied != frozen
    assert frozen == sample()


def test_shallow_copy_and_pickle_give_plain_containers() -> None:
    frozen = freeze(sample())
    shallow = copy.copy(frozen)
    assert type(shallow) is dict
    shallow["kind"] = "X"
    restored = pickle.loads(pickle.dumps(frozen))
    assert type(restored) is dict
    assert restored == sample()


def test_label_strings_are_shared_between_objects() -> None:
    a = freeze(orjson.loads(orjson.dumps(sample())))
    b = freeze(orjson.loads(orjson.dumps(sample())))
    assert (
        a["metadata"]["labels"]["app.kubernetes.io/name"]
        is b["metadata"]["labels"]["app.kubernetes.io/name"]
    )
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a["metadata"]["ownerReferences"][0]["uid"] is b["metadata"]["ownerReferences"][0]["uid"]
