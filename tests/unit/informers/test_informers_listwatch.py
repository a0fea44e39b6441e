"""RestListerWatcher against a local HTTP server that cannot convert to PartialObjectMetadata
(as an aggregated API server may not): selectors and Accept go out, whole objects come back and
are projected to metadata. The real API server's conversion is tested in
tests/integration/informers/test_informers_cache_options.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest_asyncio
from aiohttp import web

from aimctl.client import GVK, ClusterConfig, Object, Resource, RestClient, RESTMapper
from aimctl.informers import (
    RestListerWatcher,
    SharedInformer,
    freeze,
    strip_last_applied,
    strip_managed_fields,
)

CM = GVK("", "v1", "ConfigMap")
WHOLE = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "7"},
    "data": {"big": "x" * 1000},
}


class NoAuth:
    async def auth_settings(self) -> dict[str, object]:
        return {}


class PlainServer:
    """Answers every list and watch with whole objects, recording what was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.headers.get("Accept", ""), dict(request.query)))
        if request.query.get("watch") == "true":
            resp = web.StreamResponse()
            resp.content_type = "application/json"
            await resp.prepare(request)
            await resp.write(orjson.dumps({"type": "MODIFIED", "object": WHOLE}) + b"\n")
            await resp.write_eof()
            return resp
        items = [{k: v for k, v in WHOLE.items() if k not in ("apiVersion", "kind")}]
        body = {"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": items}
        return web.json_response(body)


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[PlainServer, RestClient, RESTMapper]]:
    server = PlainServer()
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/ns/configmaps", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rest = RestClient(ClusterConfig(f"http://127.0.0.1:{port}", None, None, None, NoAuth()))
    mapper = RESTMapper(rest)
    mapper.add(Resource(CM, "configmaps", True))
    yield server, rest, mapper
    await rest.aclose()
    await runner.cleanup()


async def test_metadata_only_asks_for_partial_object_metadata_and_projects_whole_answers(
    served: tuple[PlainServer, RestClient, RESTMapper],
) -> None:
    server, rest, mapper = served
    lw = RestListerWatcher(
        rest,
        mapper,
        CM,
        namespace="ns",
        label_selector="app=web",
        field_selector="metadata.name=a",
        metadata_only=True,
    )
    page = await lw.list({"limit": "500"})
    assert page["apiVersion"] == "meta.k8s.io/v1"
    assert page["kind"] == "PartialObjectMetadataList"
    assert page["items"] == [
        {
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": WHOLE["metadata"],
        }
    ]
    stream = await lw.watch({"resourceVersion": "7"}, inactivity_timeout=10)
    events = [e async for e in stream]
    await stream.aclose()
    assert [(e.type, e.object["kind"], sorted(e.object)) for e in events] == [
        ("MODIFIED", "PartialObjectMetadata", ["apiVersion", "kind", "metadata"])
    ]
    (list_accept, list_query), (watch_accept, watch_query) = server.requests
    assert list_accept == (
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    )
    assert watch_accept == (
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
    )
    for query in (list_query, watch_query):
        assert query["labelSelector"] == "app=web"
        assert query["fieldSelector"] == "metadata.name=a"


async def test_whole_object_informers_keep_the_default_accept_and_whole_objects(
    served: tuple[PlainServer, RestClient, RESTMapper],
) -> None:
    server, rest, mapper = served
    lw = RestListerWatcher(rest, mapper, CM, namespace="ns")
    page = await lw.list({})
    assert page["items"][0]["data"] == WHOLE["data"]
    stream = await lw.watch({"resourceVersion": "7"}, inactivity_timeout=10)
    assert [e.object async for e in stream] == [WHOLE]
    await stream.aclose()
    assert [a for a, _ in server.requests] == ["application/json", "application/json"]
    assert all("fieldSelector" not in q for _, q in server.requests)


async def test_take_echoes_hands_known_objects_over_undecoded_for_whole_object_informers_only(
    served: tuple[PlainServer, RestClient, RESTMapper],
) -> None:
    _, rest, mapper = served
    held = freeze(strip_managed_fields(dict(WHOLE)))

    def known(body: bytes) -> Object | None:
        return held if orjson.loads(body) == WHOLE else None

    lw = RestListerWatcher(rest, mapper, CM, namespace="ns")
    informer = SharedInformer(lw)
    assert informer.take_echoes(known)
    stream = await lw.watch({"resourceVersion": "7"}, inactivity_timeout=10)
    assert [e.object async for e in stream] == [held]
    await stream.aclose()
    assert informer._prepare(held) is held  # stored as handed over: already stripped, frozen

    other = RestListerWatcher(rest, mapper, CM, namespace="ns")
    assert not SharedInformer(other, transform=None).take_echoes(known)
    assert not SharedInformer(other, transform=strip_last_applied).take_echoes(known)
    metadata = RestListerWatcher(rest, mapper, CM, namespace="ns", metadata_only=True)
    assert not SharedInformer(metadata).take_echoes(known)
    assert other.known is None and metadata.known is None
