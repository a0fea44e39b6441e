"""Per-kind cache options on a real kube-apiserver: field selectors (evaluated by the server on
lists and watches) and metadata-only informers (PartialObjectMetadata)."""

from __future__ import annotations

import sys
from typing import Any

import orjson

from aimctl.client import GVK, Object, RestClient, RESTMapper
from aimctl.informers import (
    ByObject,
    DeletedFinalStateUnknown,
    FuncHandler,
    InformerFactory,
    label_indexer,
    thaw,
)
from aimctl.informers.testing import eventually

CONFIGMAP = GVK("", "v1", "ConfigMap")
SECRET = GVK("", "v1", "Secret")


def names(objs: list[Object]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


async def test_a_field_selected_informer_caches_and_hears_about_only_the_named_object(
    rest: RestClient, mapper: RESTMapper, namespace: str
) -> None:
    factory = InformerFactory(rest, mapper)
    informer = factory.informer(CONFIGMAP, namespace, field_selector="metadata.name=x")
    assert factory.informer(CONFIGMAP, namespace, field_selector={"metadata.name": "x"}) is informer
    seen: list[tuple[str, str]] = []

    def deleted(o: Object | DeletedFinalStateUnknown) -> None:
        seen.append(
            ("delete", o.key if isinstance(o, DeletedFinalStateUnknown) else o["metadata"]["name"])
        )

    informer.add_handler(
        FuncHandler(
            add=lambda o, _: seen.append(("add", o["metadata"]["name"])),
            update=lambda _, o: seen.append(("update", o["metadata"]["name"])),
            delete=deleted,
        )
    )
    path = (await mapper.resource_for(CONFIGMAP)).path(namespace)
    for name in ("x", "y"):
        await rest.request("POST", path, body={"metadata": {"name": name}})
    await factory.start()
    await factory.wait_for_sync(30)
    assert names(informer.store.list()) == ["x"]
    for name in ("y", "x"):
        await rest.request(
            "PATCH",
            f"{path}/{name}",
            body={"data": {"k": "v"}},
            content_type="application/merge-patch+json",
        )
    await rest.request("DELETE", f"{path}/y")
    await rest.request("DELETE", f"{path}/x")
    await eventually(lambda: len(seen) == 3, what=f"3 events, got {seen}")
    await factory.stop()
    assert seen == [("add", "x"), ("update", "x"), ("delete", "x")]
    assert len(informer.store) == 0


async def test_by_object_field_selectors_use_fields_the_kind_supports(
    rest: RestClient, mapper: RESTMapper, namespace: str
) -> None:
    # Secrets can be selected by type on the server: only TLS secrets reach the cache.
    factory = InformerFactory(
        rest, mapper, by_object={SECRET: ByObject(field_selector={"type": "kubernetes.io/tls"})}
    )
    path = (await mapper.resource_for(SECRET)).path(namespace)
    await rest.request("POST", path, body={"metadata": {"name": "plain"}, "stringData": {"a": "b"}})
    tls: dict[str, Any] = {
        "metadata": {"name": "cert"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "c", "tls.key": "k"},
    }
    await rest.request("POST", path, body=tls)
    (informer,) = await factory.resolve(SECRET, [namespace])
    assert informer.field_selector == "type=kubernetes.io/tls"
    await factory.start()
    await factory.wait_for_sync(30)
    await rest.request("POST", path, body={**tls, "metadata": {"name": "cert2"}})
    await rest.request("POST", path, body={"metadata": {"name": "plain2"}})
    await eventually(lambda: len(informer.store) == 2)
    await factory.stop()
    assert names(informer.store.list()) == ["cert", "cert2"]


def deep_size(obj: Any) -> int:
    """Bytes held by a decoded JSON value (containers and leaves; shared strings counted)."""
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k) + deep_size(v) for k, v in obj.items())
    elif isinstance(obj, list):
        size += sum(deep_size(v) for v in obj)
    return size


async def test_a_metadata_only_informer_caches_partial_object_metadata_and_sees_every_change(
    rest: RestClient, mapper: RESTMapper, namespace: str
) -> None:
    factory = InformerFactory(rest, mapper)
    meta = factory.informer(CONFIGMAP, namespace, metadata_only=True)
    whole = factory.informer(CONFIGMAP, namespace)
    assert meta is not whole
    meta.store.add_indexer("app", label_indexer("app"))
    events: list[tuple[str, str, str]] = []

    def record(kind: str, o: Object | DeletedFinalStateUnknown) -> None:
        assert not isinstance(o, DeletedFinalStateUnknown)
        events.append((kind, o["metadata"]["name"], o["kind"]))

    meta.add_handler(
        FuncHandler(
            add=lambda o, _: record("add", o),
            update=lambda _, o: record("update", o),
            delete=lambda o: record("delete", o),
        )
    )
    path = (await mapper.resource_for(CONFIGMAP)).path(namespace)
    big = {"blob": "x" * 20_000}
    for i in range(5):
        body = {"metadata": {"name": f"cm{i}", "labels": {"app": "web"}}, "data": big}
        await rest.request("POST", path, body=body)
    await factory.start()
    await factory.wait_for_sync(30)
    assert meta.reflector is not None
    assert meta.reflector.streaming_list is True  # WatchList honours Accept too

    cm0 = meta.store.get_by_name(namespace, "cm0")
    assert cm0 is not None
    assert set(cm0) == {"apiVersion", "kind", "metadata"}
    assert (cm0["apiVersion"], cm0["kind"]) == ("meta.k8s.io/v1", "PartialObjectMetadata")
    assert cm0["metadata"]["labels"] == {"app": "web"}
    assert cm0["metadata"]["uid"] and cm0["metadata"]["resourceVersion"]
    assert "managedFields" not in cm0["metadata"]  # the factory's transform still applies
    assert names(meta.store.by_index("app", "web")) == [f"cm{i}" for i in range(5)]

    full = whole.store.get_by_name(namespace, "cm0")
    assert full is not None
    assert thaw(full)["metadata"] == thaw(cm0)["metadata"]
    meta_bytes = sum(deep_size(thaw(o)) for o in meta.store.list())
    full_bytes = sum(deep_size(thaw(o)) for o in whole.store.list())
    print(
        f"5 ConfigMaps of 20 kB: metadata-only {meta_bytes} B, whole {full_bytes} B "
        f"(JSON {len(orjson.dumps(thaw(cm0)))} vs {len(orjson.dumps(thaw(full)))} B per object)"
    )
    assert meta_bytes * 10 < full_bytes

    await rest.request(
        "PATCH",
        f"{path}/cm1",
        body={"metadata": {"labels": {"app": "db"}}},
        content_type="application/merge-patch+json",
    )
    await rest.request("POST", path, body={"metadata": {"name": "late"}, "data": big})
    await rest.request("DELETE", f"{path}/cm2")
    await eventually(lambda: len(events) == 8, what=f"8 events, got {events}")
    await factory.stop()
    assert events[5:] == [
        ("update", "cm1", "PartialObjectMetadata"),
        ("add", "late", "PartialObjectMetadata"),
        ("delete", "cm2", "PartialObjectMetadata"),
    ]
    assert names(meta.store.by_index("app", "web")) == ["cm0", "cm3", "cm4"]
    assert names(meta.store.by_index("app", "db")) == ["cm1"]


async def test_the_manager_honours_a_kinds_own_namespaces(
    control_plane: Any, rest: RestClient, mapper: RESTMapper, namespace: str
) -> None:
    """``ByObject.namespaces`` overrides the manager's namespaces for that kind only; reads of
    another namespace fail loudly instead of looking empty."""
    from aimctl.client import UnknownNamespace, load_kubeconfig
    from aimctl.manager import Manager

    other = control_plane.create_namespace(prefix="byobj-")
    path = (await mapper.resource_for(CONFIGMAP)).path
    for ns in (namespace, other):
        await rest.request("POST", path(ns), body={"metadata": {"name": f"in-{ns}"}})
    mgr = Manager(
        await load_kubeconfig(str(control_plane.kubeconfig)),
        namespaces=[namespace],
        metrics_bind_address="0",
        health_probe_bind_address="0",
    )
    mgr.informers.set_by_object(CONFIGMAP, ByObject(namespaces=[other]))
    client = mgr.client("test")
    await mgr.informers.start()  # what Manager.run does first; reads then start what they need
    try:
        assert names(await client.list(CONFIGMAP, other)) == [f"in-{other}"]
        assert names(await client.list(SECRET, namespace)) == []  # the manager's default
        try:
            await client.list(CONFIGMAP, namespace)
        except UnknownNamespace:
            pass
        else:
            raise AssertionError("a read outside the kind's namespaces looked empty")
    finally:
        await mgr.informers.stop()
        await mgr.rest.aclose()
        control_plane.delete_namespace(other)
