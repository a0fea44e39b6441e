"""The fake client's contract: what it keeps from the API server and the informer cache.

The real apiserver is the reference; where these rules come from is cited in
aimctl/client/testing. Approximations (server-side apply, strategic merge patch) are tested for
the behaviour reconcilers rely on, not for the server's every detail.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from aimctl.client import (
    GVK,
    AlreadyExists,
    BadRequest,
    Client,
    Conflict,
    EventRecorder,
    Invalid,
    NotFound,
    ServerError,
    TransportError,
)
from aimctl.client.testing import (
    KINDS_WITHOUT_STATUS,
    Action,
    FakeClient,
    FakeEventRecorder,
    Interceptors,
)

CM = GVK("", "v1", "ConfigMap")
DEPLOY = GVK("apps", "v1", "Deployment")
WIDGET = GVK("example.com", "v1", "Widget")
CLASS = GVK("storage.k8s.io", "v1", "StorageClass")


def configmap(name: str = "cm", ns: str = "ns", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": dict(data),
    }


def widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": dict(spec),
    }


def rv(obj: Mapping[str, Any] | None) -> str:
    assert obj is not None
    return str(obj["metadata"]["resourceVersion"])


def gen(obj: Mapping[str, Any] | None) -> int:
    assert obj is not None
    return int(obj["metadata"]["generation"])


# -- the interface ------------------------------------------------------------------------------

COMPOSITES = {"mutate", "create_or_update", "create_or_patch", "add_finalizer", "remove_finalizer"}


def test_the_fake_overrides_every_public_client_method_but_the_composites() -> None:
    public = {n for n in dir(Client) if not n.startswith("_") and callable(getattr(Client, n))}
    overridden = {n for n in vars(FakeClient) if not n.startswith("_")}
    assert public - COMPOSITES <= overridden, "add the new Client methods to the fake"
    assert public >= COMPOSITES, "a composite left Client: drop it from COMPOSITES"
    assert not COMPOSITES & overridden, "composites are Client's own code on the fake primitives"


def test_the_fake_recorder_overrides_every_public_recorder_method() -> None:
    public = {n for n, v in vars(EventRecorder).items() if not n.startswith("_") and callable(v)}
    assert public <= set(vars(FakeEventRecorder))


# -- reads --------------------------------------------------------------------------------------


async def test_cached_reads_are_frozen_and_live_reads_and_writes_are_mutable_copies() -> None:
    fake = FakeClient([configmap(a="1")])
    cached = await fake.get(CM, "cm", "ns")
    assert cached is not None
    with pytest.raises(TypeError):
        cached["data"]["a"] = "2"
    with pytest.raises(TypeError):
        (await fake.list(CM))[0]["metadata"]["labels"] = {}
    live = await fake.get_live(CM, "cm", "ns")
    assert live == cached
    assert live is not None
    live["data"]["a"] = "2"
    written = await fake.patch(CM, "cm", "ns", {"data": {"b": "1"}})
    written["data"]["c"] = "3"
    assert (await fake.get(CM, "cm", "ns")) == {**cached, "data": {"a": "1", "b": "1"}} | {
        "metadata": (await fake.get_live(CM, "cm", "ns") or {})["metadata"]
    }


async def test_missing_objects_read_as_none() -> None:
    fake = FakeClient()
    assert await fake.get(CM, "nope", "ns") is None
    assert await fake.get_live(CM, "nope", "ns") is None
    assert await fake.list(CM) == []


async def test_lists_are_sorted_and_filtered_by_namespace_labels_and_fields() -> None:
    a = configmap("b", "ns1") | {
        "metadata": {"name": "b", "namespace": "ns1", "labels": {"x": "1"}}
    }
    fake = FakeClient([configmap("a", "ns2"), a, configmap("a", "ns1")])
    names = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in await fake.list(CM)]
    assert names == [("ns1", "a"), ("ns1", "b"), ("ns2", "a")]
    assert [o["metadata"]["name"] for o in await fake.list(CM, "ns2")] == ["a"]
    assert [o["metadata"]["name"] for o in await fake.list(CM, None, "x=1")] == ["b"]
    live = await fake.list_live(CM, field_selector="metadata.name=a,metadata.namespace!=ns1")
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in live] == [("ns2", "a")]


async def test_by_index_uses_the_namespace_index_and_added_ones() -> None:
    fake = FakeClient([widget("a", size=1), widget("b", size=2)])
    fake.add_index(WIDGET, "size", lambda o: (str(o["spec"]["size"]),))
    assert [o["metadata"]["name"] for o in await fake.by_index(WIDGET, "size", "2")] == ["b"]
    assert len(await fake.by_index(WIDGET, "namespace", "ns")) == 2
    with pytest.raises(KeyError):
        await fake.by_index(CM, "size", "2")  # indexes are per kind, as the manager's


# -- metadata the server owns -------------------------------------------------------------------


async def test_create_sets_uid_timestamp_generation_and_resource_version() -> None:
    fake = FakeClient()
    made = await fake.create(
        widget() | {"metadata": {"name": "w", "namespace": "ns", "uid": "mine", "generation": 7}}
    )
    m = made["metadata"]
    assert m["uid"] != "mine"
    assert m["generation"] == 1
    assert m["creationTimestamp"].endswith("Z")
    assert isinstance(m["resourceVersion"], str)
    assert made == await fake.get(WIDGET, "w", "ns")


async def test_every_change_gets_a_new_resource_version_and_a_no_op_write_keeps_it() -> None:
    fake = FakeClient([configmap(a="1")])
    first = rv(await fake.get(CM, "cm", "ns"))
    second = rv(await fake.patch(CM, "cm", "ns", {"data": {"a": "2"}}))
    assert second != first
    assert rv(await fake.patch(CM, "cm", "ns", {"data": {"a": "2"}})) == second
    assert rv(await fake.apply(configmap(a="2"))) == second


async def test_writes_cannot_change_what_the_server_sets() -> None:
    fake = FakeClient([widget(size=1)])
    before = (await fake.get_live(WIDGET, "w", "ns") or {})["metadata"]
    obj = widget(size=1)
    obj["metadata"].update(uid="forged", generation=99, creationTimestamp="2000-01-01T00:00:00Z")
    after = (await fake.update(obj))["metadata"]
    assert {k: after[k] for k in ("uid", "generation", "creationTimestamp")} == {
        k: before[k] for k in ("uid", "generation", "creationTimestamp")
    }


async def test_generation_moves_on_spec_changes_only() -> None:
    fake = FakeClient([widget(size=1)])
    assert gen(await fake.patch(WIDGET, "w", "ns", {"spec": {"size": 2}})) == 2
    assert gen(await fake.patch(WIDGET, "w", "ns", {"metadata": {"labels": {"a": "b"}}})) == 2
    status = {"status": {"ready": True}}
    assert gen(await fake.patch(WIDGET, "w", "ns", status, subresource="status")) == 2


# -- the status subresource ---------------------------------------------------------------------


async def test_create_drops_the_status_of_a_kind_with_a_status_subresource() -> None:
    fake = FakeClient()
    made = await fake.create(widget() | {"status": {"ready": True}})
    assert "status" not in made


async def test_writes_to_the_object_keep_the_stored_status() -> None:
    fake = FakeClient([widget(size=1) | {"status": {"ready": True}}])
    obj = widget(size=2) | {"status": {"ready": False}}
    assert (await fake.update(obj))["status"] == {"ready": True}
    patched = await fake.patch(WIDGET, "w", "ns", {"status": {"ready": False}})
    assert patched["status"] == {"ready": True}
    applied = await fake.apply(widget(size=3) | {"status": {"ready": False}})
    assert applied["status"] == {"ready": True}
    assert applied["spec"] == {"size": 3}


async def test_status_writes_change_only_the_status() -> None:
    fake = FakeClient([widget(size=1)])
    obj = widget(size=5) | {"status": {"ready": True}}
    obj["metadata"]["labels"] = {"sneaky": "yes"}
    written = await fake.update(obj, subresource="status")
    assert written["status"] == {"ready": True}
    assert written["spec"] == {"size": 1}
    assert "labels" not in written["metadata"]
    applied = await fake.apply_status(widget(size=9) | {"status": {"phase": "Up"}})
    assert applied["spec"] == {"size": 1}
    assert applied["status"] == {"ready": True, "phase": "Up"}


async def test_a_kind_without_a_status_subresource_keeps_status_as_a_field() -> None:
    fake = FakeClient([widget(size=1)], without_status_subresource=KINDS_WITHOUT_STATUS | {WIDGET})
    with pytest.raises(NotFound):
        await fake.patch(WIDGET, "w", "ns", {"status": {"ready": True}}, subresource="status")
    with pytest.raises(NotFound):
        await fake.patch(CM, "cm", "ns", {"status": {}}, subresource="status")
    written = await fake.patch(WIDGET, "w", "ns", {"status": {"ready": True}})
    assert written["status"] == {"ready": True}
    assert gen(written) == 2  # without a subresource, status is part of what generation tracks


# -- errors -------------------------------------------------------------------------------------


async def test_create_of_an_existing_name_raises_already_exists() -> None:
    fake = FakeClient([configmap()])
    with pytest.raises(AlreadyExists):
        await fake.create(configmap())


async def test_writes_to_missing_objects_raise_not_found() -> None:
    fake = FakeClient()
    with pytest.raises(NotFound):
        await fake.update(configmap())
    with pytest.raises(NotFound):
        await fake.patch(CM, "cm", "ns", {"data": {}})
    with pytest.raises(NotFound):
        await fake.apply_status(widget() | {"status": {}})
    assert await fake.delete(CM, "cm", "ns") is False


async def test_malformed_writes_are_rejected_like_the_client_and_server_do() -> None:
    fake = FakeClient()
    with pytest.raises(ValueError, match="needs a namespace"):
        await fake.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(BadRequest):
        await fake.create(
            configmap() | {"metadata": {"name": "cm", "namespace": "ns", "resourceVersion": "1"}}
        )
    with pytest.raises(Invalid):
        await fake.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "n"}})
    made = await fake.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"generateName": "cm-", "namespace": "n"},
        }
    )
    assert made["metadata"]["name"].startswith("cm-")
    sc = await fake.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "s", "namespace": "x"},
        }
    )
    assert "namespace" not in sc["metadata"]  # cluster-scoped
    assert await fake.get(CLASS, "s") is not None


async def test_a_stale_resource_version_raises_conflict() -> None:
    fake = FakeClient([configmap(a="1")])
    stale = await fake.get_live(CM, "cm", "ns")
    assert stale is not None
    await fake.patch(CM, "cm", "ns", {"data": {"a": "2"}})
    with pytest.raises(Conflict):
        await fake.update(stale)
    with pytest.raises(Conflict):
        await fake.patch(CM, "cm", "ns", {"metadata": {"resourceVersion": rv(stale)}, "data": {}})
    test_op = {"op": "test", "path": "/metadata/resourceVersion", "value": rv(stale)}
    with pytest.raises(Invalid):
        await fake.patch(CM, "cm", "ns", [test_op], patch_type="json")
    with pytest.raises(Conflict):
        await fake.apply(
            configmap(a="3")
            | {"metadata": {"name": "cm", "namespace": "ns", "resourceVersion": rv(stale)}}
        )
    assert (await fake.get(CM, "cm", "ns") or {})["data"] == {"a": "2"}
    unguarded = copy.deepcopy(stale)
    del unguarded["metadata"]["resourceVersion"]
    assert (await fake.update(unguarded))["data"] == {"a": "1"}


# -- deletion -----------------------------------------------------------------------------------


async def test_delete_without_finalizers_removes_the_object() -> None:
    fake = FakeClient([configmap()])
    assert await fake.delete(CM, "cm", "ns") is True
    assert await fake.get(CM, "cm", "ns") is None


async def test_delete_with_finalizers_marks_it_until_the_last_one_is_removed() -> None:
    held = widget(size=1)
    held["metadata"]["finalizers"] = ["a/one", "b/two"]
    fake = FakeClient([held])
    assert await fake.delete(WIDGET, "w", "ns") is True
    marked = await fake.get(WIDGET, "w", "ns")
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    assert gen(marked) == 2  # deletion starting bumps the generation
    assert await fake.delete(WIDGET, "w", "ns") is True
    assert rv(await fake.get(WIDGET, "w", "ns")) == rv(marked)  # already deleting: unchanged

    with pytest.raises(Invalid):
        await fake.add_finalizer(marked, "c/three")
    after_one = await fake.remove_finalizer(marked, "a/one")
    assert await fake.get(WIDGET, "w", "ns") is not None
    last = await fake.remove_finalizer(after_one, "b/two")
    assert last["metadata"]["finalizers"] == []
    assert await fake.get(WIDGET, "w", "ns") is None


async def test_delete_preconditions_raise_conflict() -> None:
    fake = FakeClient([configmap()])
    with pytest.raises(Conflict):
        await fake.delete(CM, "cm", "ns", uid="someone-else")
    with pytest.raises(Conflict):
        await fake.delete(CM, "cm", "ns", resource_version="0")
    cm = await fake.get(CM, "cm", "ns")
    assert cm is not None
    assert await fake.delete(CM, "cm", "ns", uid=cm["metadata"]["uid"], resource_version=rv(cm))


# -- patches and server-side apply --------------------------------------------------------------


async def test_merge_json_and_strategic_patches() -> None:
    containers = [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
    fake = FakeClient([widget(containers=containers, keep=1, drop=1)])
    merged = await fake.patch(WIDGET, "w", "ns", {"spec": {"drop": None, "new": 1}})
    assert merged["spec"] == {"containers": containers, "keep": 1, "new": 1}
    strategic = await fake.patch(
        WIDGET,
        "w",
        "ns",
        {"spec": {"containers": [{"name": "b", "image": "b:2"}]}},
        patch_type="strategic",
    )
    assert strategic["spec"]["containers"] == [containers[0], {"name": "b", "image": "b:2"}]
    ops = [
        {"op": "remove", "path": "/spec/containers/0"},
        {"op": "add", "path": "/spec/list", "value": [1]},
        {"op": "add", "path": "/spec/list/-", "value": 2},
        {"op": "replace", "path": "/spec/keep", "value": 2},
        {"op": "copy", "from": "/spec/keep", "path": "/spec/copied"},
        {"op": "move", "from": "/spec/new", "path": "/spec/moved"},
    ]
    patched = await fake.patch(WIDGET, "w", "ns", ops, patch_type="json")
    assert patched["spec"] == {
        "containers": [{"name": "b", "image": "b:2"}],
        "keep": 2,
        "list": [1, 2],
        "copied": 2,
        "moved": 1,
    }
    for bad in (
        {"op": "remove", "path": "/spec/nope"},
        {"op": "add", "path": "/spec/list/5", "value": 0},
        {"op": "replace", "path": "/missing/x", "value": 0},
        {"op": "test", "path": "/spec/keep", "value": 3},
        {"op": "frobnicate", "path": "/spec"},
    ):
        with pytest.raises(Invalid):
            await fake.patch(WIDGET, "w", "ns", [bad], patch_type="json")
    assert (await fake.get(WIDGET, "w", "ns") or {})["spec"] == patched["spec"]


async def test_apply_creates_then_merges_and_keeps_other_writers_fields() -> None:
    fake = FakeClient()
    await fake.apply(widget(size=1, containers=[{"name": "a", "image": "a:1"}]))
    other = fake.with_field_manager("other")
    await other.apply(widget(color="red", containers=[{"name": "b", "image": "b:1"}]))
    obj = await fake.apply(widget(size=2, containers=[{"name": "a", "image": "a:2"}]))
    assert obj["spec"] == {
        "size": 2,
        "color": "red",
        "containers": [{"name": "a", "image": "a:2"}, {"name": "b", "image": "b:1"}],
    }


async def test_apply_removes_fields_the_manager_no_longer_applies() -> None:
    fake = FakeClient()
    first = widget(size=1, extra=True, containers=[{"name": "a"}, {"name": "b"}])
    first["metadata"]["labels"] = {"l": "v"}
    await fake.apply(first)
    obj = await fake.apply(widget(size=1, containers=[{"name": "a"}]))
    assert obj["spec"] == {"size": 1, "containers": [{"name": "a"}]}
    assert "labels" not in obj["metadata"]


async def test_apply_conflicts_with_another_applier_unless_forced() -> None:
    fake = FakeClient()
    await fake.with_field_manager("other").apply(widget(size=1))
    with pytest.raises(Conflict, match=r'conflict with "other": \.spec\.size'):
        await fake.apply(widget(size=2))
    assert (await fake.apply(widget(size=1)))["spec"] == {"size": 1}  # same value: shared
    assert (await fake.apply(widget(size=2), force=True))["spec"] == {"size": 2}
    # Forced: the field moved, so the other manager dropping it does not remove it.
    assert (await fake.with_field_manager("other").apply(widget()))["spec"] == {"size": 2}


# -- composites (Client's own code on the fake primitives) --------------------------------------


async def test_create_or_update_and_create_or_patch_report_what_they_did() -> None:
    fake = FakeClient()

    def set_a(obj: dict[str, Any]) -> None:
        obj.setdefault("data", {})["a"] = "1"

    _, created = await fake.create_or_update(configmap(), set_a)
    _, unchanged = await fake.create_or_update(configmap(), set_a)
    assert (created, unchanged) == ("created", "unchanged")
    _, updated = await fake.create_or_update(configmap(), lambda o: o["data"].update(a="2"))
    assert updated == "updated"

    await fake.create(widget(size=1))

    def ready(obj: dict[str, Any]) -> None:
        obj["status"] = {"ready": True}

    obj, status_only = await fake.create_or_patch(widget(), ready)
    assert status_only == "updatedStatusOnly"
    assert obj["status"] == {"ready": True}


async def test_mutate_retries_a_conflict_with_a_fresh_read() -> None:
    conflicts = [Conflict(409, "Conflict", "modified")]

    async def update(client: FakeClient, obj: Mapping[str, Any], **kw: Any) -> Any:
        if conflicts:
            raise conflicts.pop()
        return await client.update(obj, **kw)

    fake = FakeClient([configmap(a="1")], interceptors=Interceptors(update=update))

    def bump(obj: dict[str, Any]) -> bool:
        obj["data"]["a"] = "2"
        return True

    written = await fake.mutate(CM, "cm", "ns", bump)
    assert written is not None and written["data"] == {"a": "2"}


# -- interceptors and the action log ------------------------------------------------------------


async def test_an_interceptor_that_raises_sends_nothing() -> None:
    async def down(client: FakeClient, *args: Any, **kwargs: Any) -> Any:
        raise ServerError(503, "ServiceUnavailable", "etcd is down")

    fake = FakeClient([configmap()], interceptors=Interceptors(patch=down, get=down))
    with pytest.raises(ServerError):
        await fake.patch(CM, "cm", "ns", {"data": {"a": "1"}})
    with pytest.raises(ServerError):
        await fake.get(CM, "cm", "ns")
    assert fake.actions == []
    assert (await fake.get_live(CM, "cm", "ns") or {})["data"] == {}


async def test_an_interceptor_sees_the_call_and_may_delegate() -> None:
    seen: list[tuple[Any, ...]] = []

    async def spy(client: FakeClient, gvk: GVK, name: str, namespace: str = "", **kw: Any) -> Any:
        seen.append((gvk, name, namespace, kw))
        if name == "flaky":
            raise TransportError("connection reset")
        return await client.delete(gvk, name, namespace, **kw)

    fake = FakeClient([configmap()], interceptors=Interceptors(delete=spy))
    assert await fake.delete(CM, "cm", "ns", uid=None) is True
    with pytest.raises(TransportError):
        await fake.delete(CM, "flaky", "ns")
    assert seen[0][:3] == (CM, "cm", "ns")
    assert fake.actions == [Action("delete", CM, "ns", "cm")]


async def test_the_action_log_holds_every_write_received_rejected_ones_included() -> None:
    fake = FakeClient([configmap()])
    other = fake.with_field_manager("other")
    await fake.get(CM, "cm", "ns")
    await fake.list(CM)
    await other.apply(configmap(a="1"))
    with pytest.raises(AlreadyExists):
        await fake.create(configmap())
    await fake.delete(CM, "cm", "ns")
    assert [a.verb for a in fake.actions] == ["apply", "create", "delete"]
    assert fake.actions is other.actions


async def test_seed_stores_objects_as_given_without_logging() -> None:
    fake = FakeClient()
    fake.seed(widget(size=1) | {"status": {"ready": True}})
    first = await fake.get(WIDGET, "w", "ns")
    fake.seed(widget(size=2) | {"status": {"ready": False}})
    second = await fake.get(WIDGET, "w", "ns")
    assert first is not None and second is not None
    assert second["status"] == {"ready": False}
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert rv(second) != rv(first)
    assert fake.actions == []
    deleting = widget("x")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="finalizers"):
        fake.seed(deleting)


# -- the event recorder -------------------------------------------------------------------------


def test_the_fake_recorder_keeps_events_in_order() -> None:
    recorder = FakeEventRecorder("widget-controller")
    recorder.event(widget(), "Normal", "Created", "made it")
    recorder.event(widget(), "Warning", "Broken", "x" * 2000, action="Delete")
    assert recorder.reasons == ["Created", "Broken"]
    broken = recorder.events[1]
    assert (broken.kind, broken.namespace, broken.name, broken.type) == (
        "Widget",
        "ns",
        "w",
        "Warning",
    )
    assert (len(broken.note), broken.action) == (1024, "Delete")
