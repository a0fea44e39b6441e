"""RestClient and RESTMapper against a real kube-apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from aimctl.client import (
    GVK,
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NoKindMatch,
    NotFound,
    Resource,
    RestClient,
    RESTMapper,
    WatchEvent,
)
from aimctl.envtest import ControlPlane


def crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


async def test_crud_round_trip_with_typed_errors(rest: RestClient, namespace: str) -> None:
    mapper = RESTMapper(rest)
    cms = await mapper.resource_for(GVK("", "v1", "ConfigMap"))
    path = cms.path(namespace)
    created = await rest.request("POST", path, body={"metadata": {"name": "a"}, "data": {"k": "v"}})
    assert created["metadata"]["namespace"] == namespace
    with pytest.raises(AlreadyExists) as exists:
        await rest.request("POST", path, body={"metadata": {"name": "a"}})
    assert exists.value.details is not None
    assert exists.value.details["name"] == "a"
    stale = dict(created, data={"k": "2"})
    await rest.request("PUT", cms.path(namespace, "a"), body=stale)
    with pytest.raises(Conflict) as conflict:
        await rest.request("PUT", cms.path(namespace, "a"), body=stale)  # stale resourceVersion
    assert not isinstance(conflict.value, AlreadyExists)
    with pytest.raises(Invalid) as invalid:
        await rest.request("POST", path, body={"metadata": {"name": "Not_Valid"}})
    assert invalid.value.details is not None
    assert invalid.value.details.get("causes")
    applied = await rest.request(
        "PATCH",
        cms.path(namespace, "b"),
        body={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "b"},
            "data": {"x": "1"},
        },
        params={"fieldManager": "aimctl-test", "force": True},
        content_type="application/apply-patch+yaml",
    )
    assert applied["data"] == {"x": "1"}
    await rest.request("DELETE", cms.path(namespace, "a"))
    with pytest.raises(NotFound) as missing:
        await rest.request("GET", cms.path(namespace, "a"))
    assert missing.value.reason == "NotFound"
    assert 'configmaps "a" not found' in missing.value.message


async def test_requests_are_counted_with_controller_runtime_names(
    rest: RestClient, registry: CollectorRegistry, namespace: str
) -> None:
    await rest.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    with pytest.raises(NotFound):
        await rest.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/missing")
    labels = {"method": "GET", "host": rest.host}
    assert registry.get_sample_value("rest_client_requests_total", {**labels, "code": "200"}) == 1
    assert registry.get_sample_value("rest_client_requests_total", {**labels, "code": "404"}) == 1
    assert rest.stats.writes == 0


async def test_watch_streams_events_from_a_resource_version(
    rest: RestClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    listed = await rest.request("GET", path)
    rv = listed["metadata"]["resourceVersion"]
    events: list[WatchEvent] = []

    async def watch() -> None:
        async with rest.watch(
            path, {"resourceVersion": rv, "allowWatchBookmarks": True, "timeoutSeconds": 30}
        ) as stream:
            async for e in stream:
                if e.type != "BOOKMARK":
                    events.append(e)
                if len(events) == 3:
                    return

    task = asyncio.create_task(watch())
    await rest.request("POST", path, body={"metadata": {"name": "w"}})
    await rest.request(
        "PATCH",
        f"{path}/w",
        body={"data": {"a": "b"}},
        content_type="application/merge-patch+json",
    )
    await rest.request("DELETE", f"{path}/w")
    await asyncio.wait_for(task, 30)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1].object["data"] == {"a": "b"}


async def test_a_watch_from_a_compacted_version_raises_gone(
    control_plane_factory: Any,
) -> None:
    cp: ControlPlane = control_plane_factory(apiserver_args={"watch-cache": "false"})
    async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest:
        path = "/api/v1/namespaces/default/configmaps"
        old = await rest.request("POST", path, body={"metadata": {"name": "c"}})
        for n in range(3):
            await rest.request(
                "PATCH",
                f"{path}/c",
                body={"data": {"n": str(n)}},
                content_type="application/merge-patch+json",
            )
        cp.compact_etcd()
        stream = rest.watch(path, {"resourceVersion": old["metadata"]["resourceVersion"]})
        with pytest.raises(Gone):
            await anext(stream)
        await stream.aclose()


async def test_discovery_finds_a_crd_installed_after_the_group_was_cached(
    rest: RestClient,
) -> None:
    mapper = RESTMapper(rest, min_refresh_interval=0.0)
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

    async def resolve(gvk: GVK) -> Resource:
        # A new CRD takes a moment to appear in discovery; each miss refreshes the group.
        for _ in range(100):
            try:
                return await mapper.resource_for(gvk)
            except NoKindMatch:
                await asyncio.sleep(0.1)
        return await mapper.resource_for(gvk)

    await rest.request("POST", crds, body=crd("mapper.test.aimctl.dev", "Gadget", "gadgets"))
    gadget = await resolve(GVK("mapper.test.aimctl.dev", "v1", "Gadget"))
    assert not gadget.namespaced
    with pytest.raises(NoKindMatch):
        await mapper.resource_for(GVK("mapper.test.aimctl.dev", "v1", "Gizmo"))
    await rest.request("POST", crds, body=crd("mapper.test.aimctl.dev", "Gizmo", "gizmos"))
    gizmo = await resolve(GVK("mapper.test.aimctl.dev", "v1", "Gizmo"))
    assert gizmo.path(name="g") == "/apis/mapper.test.aimctl.dev/v1/gizmos/g"
    with pytest.raises(NoKindMatch, match="not served"):
        await mapper.resource_for(GVK("nothing.test.aimctl.dev", "v1", "Nope"))
    for plural in ("gadgets", "gizmos"):
        await rest.request("DELETE", f"{crds}/{plural}.mapper.test.aimctl.dev")


async def test_a_user_without_rbac_gets_forbidden_with_the_servers_message(
    control_plane: ControlPlane,
) -> None:
    user = control_plane.add_user("client-nobody")
    async with await RestClient.from_kubeconfig(str(user.kubeconfig)) as rest:
        with pytest.raises(Forbidden) as denied:
            await rest.request("GET", "/api/v1/secrets")
    assert 'User "client-nobody" cannot list resource "secrets"' in denied.value.message


async def test_applied_text_is_stored_exactly_whatever_its_code_points(
    rest: RestClient, namespace: str
) -> None:
    """Server-side apply bodies are parsed as YAML: text with C0/C1 controls (U+0085 NEL is a YAML
    line break that would be folded into a space), U+FFFE/U+FFFF, line/paragraph separators,
    a BOM or an emoji must be stored exactly as applied, else a reconciler sees drift forever."""
    text = "".join(chr(c) for c in [*range(0x01, 0x20), *range(0x7F, 0xA0)])
    text += "\ufffe\uffff\u2028\u2029\ufeff\U0001f600 e\u0301"
    path = f"/api/v1/namespaces/{namespace}/configmaps/every-char"
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "every-char", "namespace": namespace},
        "data": {"k": text},
    }
    stored = await rest.request(
        "PATCH",
        path,
        params={"fieldManager": "test", "force": "true"},
        body=body,
        content_type="application/apply-patch+yaml",
    )
    assert stored["data"]["k"] == text
