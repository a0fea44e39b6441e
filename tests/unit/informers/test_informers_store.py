"""Store and indexers: keys, reads, selectors, and exact index maintenance."""

from __future__ import annotations

import random
from typing import Any

import pytest

from aimctl.client import Object
from aimctl.informers import (
    CONTROLLER_UID_INDEX,
    NAMESPACE_INDEX,
    OWNER_UID_INDEX,
    IndexFuncError,
    Store,
    field_indexer,
    index_by_controller_uid,
    index_by_owner_uid,
    label_indexer,
    object_key,
    split_key,
)


def obj(
    name: str,
    ns: str | None = "default",
    labels: dict[str, str] | None = None,
    owners: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> Object:
    md: dict[str, Any] = {"name": name}
    if ns:
        md["namespace"] = ns
    if labels is not None:
        md["labels"] = labels
    if owners is not None:
        md["ownerReferences"] = owners
    return {"metadata": md, "spec": spec}


def filled() -> Store:
    s = Store()
    w = s.writer()
    for o in [
        obj("a", "ns1", {"app": "web", "tier": "fe"}),
        obj("b", "ns1", {"app": "db"}),
        obj("c", "ns2", {"app": "web"}),
        obj("node-1", None, {"zone": "z1"}),
    ]:
        w.upsert(object_key(o), o)
    return s


def test_keys_are_namespace_slash_name_or_name_for_cluster_scoped() -> None:
    assert object_key(obj("a", "ns")) == "ns/a"
    assert object_key(obj("n", None)) == "n"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("n") == (None, "n")


def test_get_and_get_by_name_find_namespaced_and_cluster_scoped_objects() -> None:
    s = filled()
    a = s.get("ns1/a")
    assert a is not None
    assert a["metadata"]["name"] == "a"
    assert s.get_by_name("ns1", "a") is a
    assert s.get_by_name(None, "node-1") is s.get("node-1")
    assert s.get("ns2/a") is None
    assert len(s) == 4
    assert "ns2/c" in s


def test_list_filters_by_namespace_and_label_selector() -> None:
    s = filled()

    def names(objs: list[Object]) -> list[str]:
        return sorted(o["metadata"]["name"] for o in objs)

    assert names(s.list()) == ["a", "b", "c", "node-1"]
    assert names(s.list("ns1")) == ["a", "b"]
    assert names(s.list("nope")) == []
    assert names(s.list(label_selector="app=web")) == ["a", "c"]
    assert names(s.list("ns1", "app in (web,db),!tier")) == ["b"]
    assert names(s.list(label_selector={"zone": "z1"})) == ["node-1"]
    assert names(s.list(label_selector="app notin (web)")) == ["b", "node-1"]


def test_namespace_index_is_always_present_and_by_index_can_filter_by_namespace() -> None:
    s = filled()
    s.add_indexer("app", label_indexer("app"))
    assert sorted(s.index_keys(NAMESPACE_INDEX, "ns1")) == ["ns1/a", "ns1/b"]
    assert sorted(o["metadata"]["name"] for o in s.by_index("app", "web")) == ["a", "c"]
    assert [o["metadata"]["name"] for o in s.by_index("app", "web", namespace="ns2")] == ["c"]
    with pytest.raises(KeyError, match="no index 'missing'"):
        s.by_index("missing", "x")


def test_indexer_added_later_indexes_existing_objects() -> None:
    s = filled()
    s.add_indexer("tier", label_indexer("tier"))
    assert s.index_keys("tier", "fe") == ["ns1/a"]
    with pytest.raises(ValueError, match="already exists"):
        s.add_indexer("tier", label_indexer("tier"))


def test_updates_and_deletes_move_keys_between_index_buckets_and_drop_empty_ones() -> None:
    s = Store()
    w = s.writer()
    s.add_indexer("app", label_indexer("app"))
    w.upsert("ns/a", obj("a", "ns", {"app": "x"}))
    w.upsert("ns/a", obj("a", "ns", {"app": "y"}))
    assert s.index_keys("app", "x") == []
    assert s.index_keys("app", "y") == ["ns/a"]
    assert s.index_values("app") == ["y"]
    old = w.delete("ns/a")
    assert old is not None
    assert s.index_values("app") == []
    assert s.index_values(NAMESPACE_INDEX) == []
    assert w.delete("ns/a") is None


def test_a_store_has_exactly_one_writer() -> None:
    s = Store()
    s.writer()
    with pytest.raises(RuntimeError, match="one writer"):
        s.writer()


def test_an_index_function_that_raises_refuses_the_write_and_changes_nothing() -> None:
    # Before issue 14 the object was stored and silently left out of the index.
    s = Store()
    w = s.writer()
    bad = {"b"}

    def by_team(o: Object) -> list[str]:
        if o["metadata"]["name"] in bad:
            raise ValueError("boom")
        return [o["spec"]["team"]]

    s.add_indexer("team", by_team)
    w.upsert("ns/a", obj("a", "ns", team="red"))
    with pytest.raises(IndexFuncError) as err:
        w.upsert("ns/b", obj("b", "ns", team="red"))
    assert (err.value.index, err.value.key) == ("team", "ns/b")
    assert isinstance(err.value.__cause__, ValueError)
    assert "ns/b" not in s
    assert s.index_keys("team", "red") == ["ns/a"]
    assert s.index_keys(NAMESPACE_INDEX, "ns") == ["ns/a"]  # no index half-written
    # An update that fails keeps the previous version, still indexed as before.
    bad.add("a")
    with pytest.raises(IndexFuncError):
        w.upsert("ns/a", obj("a", "ns", team="blue"))
    stored = s.get("ns/a")
    assert stored is not None
    assert stored["spec"]["team"] == "red"
    assert s.index_keys("team", "red") == ["ns/a"]
    assert s.index_keys("team", "blue") == []


def test_an_index_function_yielding_non_strings_is_refused_like_one_that_raises() -> None:
    s = Store()
    s.add_indexer("replicas", lambda o: [o["spec"]["replicas"]])
    with pytest.raises(IndexFuncError, match="not a str"):
        s.writer().upsert("ns/a", obj("a", "ns", replicas=3))
    assert len(s) == 0


def test_an_indexer_that_fails_on_a_stored_object_is_not_added() -> None:
    s = filled()

    def needs_zone(o: Object) -> list[str]:
        return [o["metadata"]["labels"]["zone"]]

    with pytest.raises(IndexFuncError):
        s.add_indexer("zone", needs_zone)
    assert "zone" not in s.indexers
    with pytest.raises(KeyError):
        s.index_keys("zone", "z1")


def test_a_delete_removes_index_entries_even_if_the_function_now_fails() -> None:
    s = Store()
    w = s.writer()
    broken = False

    def flaky(o: Object) -> list[str]:
        if broken:
            raise RuntimeError("not pure")
        return [o["spec"]["team"]]

    s.add_indexer("team", flaky)
    w.upsert("ns/a", obj("a", "ns", team="red"))
    w.upsert("ns/b", obj("b", "ns", team="red"))
    broken = True
    w.delete("ns/a")
    assert s.index_keys("team", "red") == ["ns/b"]
    w.delete("ns/b")
    assert s.index_values("team") == []


def test_indexes_stay_exact_under_random_operations() -> None:
    rng = random.Random(1)
    s = Store()
    w = s.writer()
    s.add_indexer(CONTROLLER_UID_INDEX, index_by_controller_uid)
    s.add_indexer("app", label_indexer("app"))
    model: dict[str, Object] = {}
    for _ in range(2000):
        name = f"o{rng.randrange(30)}"
        ns = rng.choice(["a", "b", None])
        key = f"{ns}/{name}" if ns else name
        if rng.random() < 0.3:
            w.delete(key)
            model.pop(key, None)
        else:
            owner = rng.choice([None, "u1", "u2"])
            o = obj(
                name,
                ns,
                {"app": rng.choice(["x", "y"])} if rng.random() < 0.8 else None,
                [{"uid": owner, "controller": True}] if owner else None,
            )
            w.upsert(key, o)
            model[key] = o
    assert {object_key(o): o for o in s.list()} == model
    for name, fn in s.indexers.items():
        expected: dict[str, set[str]] = {}
        for key, o in model.items():
            for v in fn(o):
                expected.setdefault(v, set()).add(key)
        actual = {v: set(s.index_keys(name, v)) for v in s.index_values(name)}
        assert actual == expected, name


def test_owner_indexers_use_controller_reference_or_all_owners() -> None:
    o = obj(
        "pod",
        owners=[
            {"uid": "rs-1", "controller": True},
            {"uid": "other"},
            {"uid": "x", "controller": False},
        ],
    )
    assert list(index_by_controller_uid(o)) == ["rs-1"]
    assert list(index_by_owner_uid(o)) == ["rs-1", "other", "x"]
    assert list(index_by_controller_uid(obj("bare"))) == []
    assert OWNER_UID_INDEX != CONTROLLER_UID_INDEX


def test_field_indexer_follows_dotted_paths_through_lists() -> None:
    o = {
        "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"image": "a"}, {"image": "b"}], "n": 3},
    }
    assert list(field_indexer("spec.nodeName")(o)) == ["n1"]
    assert list(field_indexer("spec.containers.image")(o)) == ["a", "b"]
    assert list(field_indexer("spec.n")(o)) == ["3"]
    assert list(field_indexer("spec.missing")(o)) == []
