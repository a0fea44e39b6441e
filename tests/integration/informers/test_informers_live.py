"""Informers on a real kube-apiserver: ordering, convergence, selectors, RBAC errors, metrics."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aimctl.client import GVK, Object, Resource, RestClient, RESTMapper
from aimctl.envtest import ControlPlane
from aimctl.informers import (
    CONTROLLER_UID_INDEX,
    DeletedFinalStateUnknown,
    InformerFactory,
    InformerSyncError,
    index_by_controller_uid,
)
from aimctl.informers.testing import assert_store_matches_server, eventually

CONFIGMAP = GVK("", "v1", "ConfigMap")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []  # (type, name, resourceVersion)
        self.initial: list[bool] = []

    def on_add(self, obj: Object, is_initial_list: bool) -> None:
        self.initial.append(is_initial_list)
        md = obj["metadata"]
        self.events.append(("add", md["name"], md["resourceVersion"]))

    def on_update(self, old: Object, new: Object) -> None:
        md = new["metadata"]
        self.events.append(("update", md["name"], md["resourceVersion"]))

    def on_delete(self, obj: Object | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.events.append(("tombstone", obj.key, ""))
        else:
            md = obj["metadata"]
            self.events.append(("delete", md["name"], md["resourceVersion"]))


async def test_changes_to_core_objects_and_custom_resources_reach_handlers_in_order(
    rest: RestClient, mapper: RESTMapper, namespace: str, widget_crd: GVK
) -> None:
    factory = InformerFactory(rest, mapper)
    cms = factory.informer(CONFIGMAP, namespace)
    widgets = factory.informer(widget_crd, namespace)
    cm_rec, w_rec = Recorder(), Recorder()
    cms.add_handler(cm_rec)
    widgets.add_handler(w_rec)
    await factory.start()
    await factory.wait_for_sync(30)
    assert cms.reflector is not None
    assert cms.reflector.streaming_list is True  # kube-apiserver 1.36 serves WatchList
    cm_path = (await mapper.resource_for(CONFIGMAP)).path(namespace)
    w_res: Resource = await mapper.resource_for(widget_crd)
    w_path = w_res.path(namespace)

    expected_cm: list[tuple[str, str, str]] = []
    expected_w: list[tuple[str, str, str]] = []

    def rv(o: Object) -> str:
        return str(o["metadata"]["resourceVersion"])

    for i in range(5):
        o = await rest.request(
            "POST", cm_path, body={"metadata": {"name": f"cm{i}"}, "data": {"i": str(i)}}
        )
        expected_cm.append(("add", f"cm{i}", rv(o)))
        w = await rest.request(
            "POST",
            w_path,
            body={
                "apiVersion": widget_crd.api_version,
                "kind": "Widget",
                "metadata": {"name": f"w{i}"},
                "spec": {"size": i},
            },
        )
        expected_w.append(("add", f"w{i}", rv(w)))
    for i in range(0, 5, 2):
        o = await rest.request(
            "PATCH",
            f"{cm_path}/cm{i}",
            body={"data": {"i": "patched"}},
            content_type="application/merge-patch+json",
        )
        expected_cm.append(("update", f"cm{i}", rv(o)))
        w = await rest.request(
            "PATCH",
            f"{w_path}/w{i}",
            body={
                "apiVersion": widget_crd.api_version,
                "kind": "Widget",
                "metadata": {"name": f"w{i}"},
                "spec": {"size": 100 + i},
            },
            params={"fieldManager": "test", "force": True},
            content_type="application/apply-patch+yaml",
        )
        expected_w.append(("update", f"w{i}", rv(w)))
    for i in (1, 3):
        await rest.request("DELETE", f"{cm_path}/cm{i}")
        await rest.request("DELETE", f"{w_path}/w{i}")
    await eventually(lambda: len(cm_rec.events) == 10 and len(w_rec.events) == 10)
    await factory.stop()

    assert cm_rec.events[:8] == expected_cm
    assert [e[:2] for e in cm_rec.events[8:]] == [("delete", "cm1"), ("delete", "cm3")]
    assert w_rec.events[:8] == expected_w
    assert [e[:2] for e in w_rec.events[8:]] == [("delete", "w1"), ("delete", "w3")]
    assert not any(cm_rec.initial)
    assert not any(w_rec.initial)
    await assert_store_matches_server(cms, rest, cm_path, within=0)
    await assert_store_matches_server(widgets, rest, w_path, within=0)
    w0 = widgets.store.get_by_name(namespace, "w0")
    assert w0 is not None
    assert w0["spec"] == {"size": 100}
    assert "managedFields" not in w0["metadata"]
    with pytest.raises(TypeError):
        w0["spec"]["size"] = 1


async def test_a_label_selected_informer_sees_objects_enter_and_leave_its_selector(
    rest: RestClient, mapper: RESTMapper, namespace: str
) -> None:
    factory = InformerFactory(rest, mapper)
    informer = factory.informer(CONFIGMAP, namespace, "app=web")
    assert factory.informer(CONFIGMAP, namespace, {"app": "web"}) is informer
    rec = Recorder()
    informer.add_handler(rec)
    path = (await mapper.resource_for(CONFIGMAP)).path(namespace)
    await rest.request("POST", path, body={"metadata": {"name": "in", "labels": {"app": "web"}}})
    await rest.request("POST", path, body={"metadata": {"name": "out", "labels": {"app": "db"}}})
    await factory.start()
    await factory.wait_for_sync(30)
    assert [e[:2] for e in rec.events] == [("add", "in")]
    assert rec.initial == [True]
    await rest.request(
        "PATCH",
        f"{path}/in",
        body={"metadata": {"labels": {"app": "other"}}},
        content_type="application/merge-patch+json",
    )
    await rest.request(
        "PATCH",
        f"{path}/out",
        body={"metadata": {"labels": {"app": "web"}}},
        content_type="application/merge-patch+json",
    )
    await eventually(lambda: len(rec.events) == 3)
    await factory.stop()
    assert [e[:2] for e in rec.events[1:]] == [("delete", "in"), ("add", "out")]
    assert [o["metadata"]["name"] for o in informer.store.list()] == ["out"]


async def test_owner_index_finds_children_by_controller_uid(
    rest: RestClient, mapper: RESTMapper, namespace: str
) -> None:
    factory = InformerFactory(rest, mapper)
    informer = factory.informer(CONFIGMAP, namespace)
    informer.store.add_indexer(CONTROLLER_UID_INDEX, index_by_controller_uid)
    path = (await mapper.resource_for(CONFIGMAP)).path(namespace)
    owner = await rest.request("POST", path, body={"metadata": {"name": "owner"}})
    ref: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    for i in range(3):
        await rest.request(
            "POST", path, body={"metadata": {"name": f"child{i}", "ownerReferences": [ref]}}
        )
    await factory.start()
    await factory.wait_for_sync(30)
    await factory.stop()
    children = informer.store.by_index(CONTROLLER_UID_INDEX, owner["metadata"]["uid"])
    assert sorted(c["metadata"]["name"] for c in children) == ["child0", "child1", "child2"]


async def test_wait_for_sync_fails_loudly_with_the_kind_and_rbac_message(
    control_plane: ControlPlane, namespace: str
) -> None:
    user = control_plane.add_user("informer-nobody")
    async with await RestClient.from_kubeconfig(str(user.kubeconfig)) as rest:
        mapper = RESTMapper(rest)
        factory = InformerFactory(rest, mapper)
        factory.informer(CONFIGMAP, namespace)
        await factory.start()
        with pytest.raises(InformerSyncError) as err:
            await factory.wait_for_sync(30)
        await factory.stop()
    text = str(err.value)
    assert "v1/ConfigMap" in text
    assert f"namespace={namespace}" in text
    assert "Forbidden" in text
    assert 'User "informer-nobody" cannot' in text  # the server's own message
    assert not err.value.timed_out


async def test_informer_metrics_are_exported_per_kind(
    rest: RestClient, mapper: RESTMapper, namespace: str
) -> None:
    registry = CollectorRegistry()
    factory = InformerFactory(rest, mapper, registry=registry)
    factory.informer(CONFIGMAP, namespace)
    path = (await mapper.resource_for(CONFIGMAP)).path(namespace)
    await rest.request("POST", path, body={"metadata": {"name": "m"}})
    await factory.start()
    await factory.wait_for_sync(30)
    await factory.stop()
    text = generate_latest(registry).decode()
    labels = f'kind="v1/ConfigMap",scope="namespace={namespace}"'
    assert f"aimctl_informer_objects{{{labels}}} 1.0" in text
    assert f"aimctl_informer_synced{{{labels}}} 1.0" in text
    assert f"aimctl_informer_lists_total{{{labels}}} 1.0" in text
    assert f"aimctl_informer_watches_total{{{labels}}} 1.0" in text
    assert "aimctl_informer_last_resource_version_age_seconds{" in text
