"""RESTMapper: discovery per group-version, refresh on a miss, NoKindMatch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aimctl._internal.clock import ManualClock
from aimctl.client import GVK, NoKindMatch, NotFound, Object, Resource, RESTMapper

CORE = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {"name": "configmaps", "namespaced": True, "kind": "ConfigMap", "verbs": ["list"]},
        {"name": "pods", "namespaced": True, "kind": "Pod"},
        {"name": "pods/status", "namespaced": True, "kind": "Pod"},
        {"name": "pods/eviction", "namespaced": True, "kind": "Eviction", "group": "policy"},
        {"name": "nodes", "namespaced": False, "kind": "Node"},
    ],
}


class FakeRest:
    def __init__(self) -> None:
        self.docs: dict[str, Object] = {"/api/v1": CORE}
        self.requests: list[str] = []
        self.gate: asyncio.Event | None = None

    async def request(self, method: str, path: str, **_: Any) -> Object:
        self.requests.append(path)
        if self.gate is not None:
            await self.gate.wait()
        if path not in self.docs:
            raise NotFound(404, "NotFound", "the server could not find the requested resource")
        return self.docs[path]


def mapper(rest: FakeRest, clock: ManualClock | None = None) -> RESTMapper:
    return RESTMapper(rest, clock=clock or ManualClock())  # type: ignore[arg-type]


async def test_kinds_resolve_to_plural_and_scope_with_one_request_per_group_version() -> None:
    rest = FakeRest()
    m = mapper(rest)
    cm = await m.resource_for(GVK("", "v1", "ConfigMap"))
    assert cm == Resource(GVK("", "v1", "ConfigMap"), "configmaps", True)
    node = await m.resource_for(GVK("", "v1", "Node"))
    assert not node.namespaced
    pod = await m.resource_for(GVK("", "v1", "Pod"))
    assert pod.plural == "pods"  # never the pods/status subresource
    assert rest.requests == ["/api/v1"]


async def test_a_crd_installed_after_start_is_found_by_refreshing_on_a_miss() -> None:
    rest = FakeRest()
    clock = ManualClock()
    m = mapper(rest, clock)
    rest.docs["/apis/aim.amd.com/v1alpha1"] = {"resources": []}
    with pytest.raises(NoKindMatch, match=r"no kind 'AIMKVCache' in aim\.amd\.com/v1alpha1"):
        await m.resource_for(GVK("aim.amd.com", "v1alpha1", "AIMKVCache"))
    rest.docs["/apis/aim.amd.com/v1alpha1"] = {
        "resources": [{"name": "aimkvcaches", "namespaced": True, "kind": "AIMKVCache"}]
    }
    with pytest.raises(NoKindMatch):  # within min_refresh_interval: no new request
        await m.resource_for(GVK("aim.amd.com", "v1alpha1", "AIMKVCache"))
    assert len(rest.requests) == 1
    clock.advance(1.0)
    r = await m.resource_for(GVK("aim.amd.com", "v1alpha1", "AIMKVCache"))
    assert r.path("ns", "c") == "/apis/aim.amd.com/v1alpha1/namespaces/ns/aimkvcaches/c"
    assert len(rest.requests) == 2


async def test_an_unserved_group_version_is_a_no_kind_match() -> None:
    m = mapper(FakeRest())
    with pytest.raises(NoKindMatch, match="not served"):
        await m.resource_for(GVK("nope.io", "v1", "Thing"))


async def test_concurrent_lookups_share_one_discovery_request() -> None:
    rest = FakeRest()
    rest.gate = asyncio.Event()
    m = mapper(rest)
    lookups = [
        asyncio.create_task(m.resource_for(GVK("", "v1", k))) for k in ("Pod", "Node", "ConfigMap")
    ]
    await asyncio.sleep(0)
    rest.gate.set()
    results = await asyncio.gather(*lookups)
    assert [r.plural for r in results] == ["pods", "nodes", "configmaps"]
    assert rest.requests == ["/api/v1"]


async def test_static_mappings_and_invalidation() -> None:
    rest = FakeRest()
    m = mapper(rest)
    static = Resource(GVK("x.io", "v1", "Y"), "ys", False)
    m.add(static)
    assert await m.resource_for(GVK("x.io", "v1", "Y")) is static
    await m.resource_for(GVK("", "v1", "Pod"))
    m.invalidate("v1")
    await m.resource_for(GVK("", "v1", "Pod"))
    assert rest.requests == ["/api/v1", "/api/v1"]
