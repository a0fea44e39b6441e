"""RestClient against a local aiohttp server: decoding, errors, counters, watch streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, generate_latest

from aimctl.client import (
    AlreadyExists,
    ClusterConfig,
    Gone,
    NotFound,
    RestClient,
    TokenBucket,
    TooManyRequests,
    TransportError,
    Unauthorized,
    WatchEvent,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Auth:
    """Stands in for kubernetes-asyncio's Configuration: a bearer token that can change."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def auth_settings(self) -> dict[str, Any]:
        return {"BearerToken": {"value": f"Bearer {self.token}"}}


class Api:
    """A local server whose routes tests set, recording requests."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[web.Request] = []
        self.bodies: list[bytes] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.server = TestServer(app, host="127.0.0.1")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        self.bodies.append(await request.read())
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return json_response(404, status_body(404, "NotFound", f"{request.path} not found"))
        return await handler(request)

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler


def json_response(code: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=code, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "code": code,
        "reason": reason,
        "message": message,
    }


def fixed(code: int, body: Any, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(code, body, headers)

    return handler


@pytest_asyncio.fixture
async def api() -> AsyncIterator[Api]:
    a = Api()
    await a.server.start_server()
    yield a
    await a.server.close()


def config_for(api: Api, auth: Auth | None = None, on_401: Any = None) -> ClusterConfig:
    host = str(api.server.make_url("")).rstrip("/")
    return ClusterConfig(host, None, None, None, auth or Auth("t1"), on_401)


@pytest_asyncio.fixture
async def rest(api: Api) -> AsyncIterator[RestClient]:
    async with RestClient(config_for(api), registry=CollectorRegistry()) as r:
        yield r


async def test_a_request_returns_decoded_json_and_sends_auth_and_params(
    api: Api, rest: RestClient
) -> None:
    api.route(
        "GET",
        "/api/v1/namespaces/ns/configmaps",
        fixed(200, {"kind": "ConfigMapList", "items": []}),
    )
    out = await rest.request(
        "get", "/api/v1/namespaces/ns/configmaps", params={"limit": 5, "watch": False, "x": None}
    )
    assert out == {"kind": "ConfigMapList", "items": []}
    req = api.seen[-1]
    assert req.headers["Authorization"] == "Bearer t1"
    assert req.headers["Accept"] == "application/json"
    assert dict(req.query) == {"limit": "5", "watch": "false"}


async def test_bodies_are_sent_as_json_with_the_given_content_type(
    api: Api, rest: RestClient
) -> None:
    api.route("PATCH", "/x", fixed(200, {"ok": True}))
    await rest.request(
        "PATCH", "/x", body={"a": [1, 2]}, content_type="application/apply-patch+yaml"
    )
    assert api.seen[-1].headers["Content-Type"] == "application/apply-patch+yaml"
    assert orjson.loads(api.bodies[-1]) == {"a": [1, 2]}


async def test_error_answers_raise_typed_errors_built_from_the_status(
    api: Api, rest: RestClient
) -> None:
    api.route(
        "POST", "/c", fixed(409, status_body(409, "AlreadyExists", 'configmaps "a" already exists'))
    )
    api.route(
        "GET", "/t", fixed(429, status_body(429, "TooManyRequests", "slow"), {"Retry-After": "2"})
    )
    with pytest.raises(AlreadyExists) as conflict:
        await rest.request("POST", "/c", body={})
    assert conflict.value.message == 'configmaps "a" already exists'
    assert conflict.value.path == "/c"
    with pytest.raises(NotFound):
        await rest.request("GET", "/missing")
    with pytest.raises(TooManyRequests) as throttled:
        await rest.request("GET", "/t")
    assert throttled.value.retry_after == 2


async def test_a_refused_connection_is_a_transport_error_counted_as_error_code() -> None:
    registry = CollectorRegistry()
    config = ClusterConfig("http://127.0.0.1:1", None, None, None, Auth("t"))
    async with RestClient(config, registry=registry) as rest:
        with pytest.raises(TransportError):
            await rest.request("GET", "/api")
    text = generate_latest(registry).decode()
    assert 'rest_client_requests_total{code="<error>",host="127.0.0.1:1",method="GET"} 1.0' in text


async def test_requests_are_counted_by_code_method_and_host_and_per_verb_in_stats(
    api: Api,
) -> None:
    registry = CollectorRegistry()
    api.route("GET", "/a", fixed(200, {}))
    api.route("DELETE", "/a", fixed(200, {}))
    async with RestClient(config_for(api), registry=registry) as rest:
        await rest.request("GET", "/a")
        await rest.request("GET", "/a")
        await rest.request("DELETE", "/a")
        with pytest.raises(NotFound):
            await rest.request("GET", "/b")
        assert rest.stats.requests == {"GET": 3, "DELETE": 1}
        assert rest.stats.writes == 1
        host = rest.host
    text = generate_latest(registry).decode()
    assert f'rest_client_requests_total{{code="200",host="{host}",method="GET"}} 2.0' in text
    assert f'rest_client_requests_total{{code="404",host="{host}",method="GET"}} 1.0' in text
    assert f'rest_client_requests_total{{code="200",host="{host}",method="DELETE"}} 1.0' in text


async def test_two_clients_share_one_metric_family_per_registry(api: Api) -> None:
    registry = CollectorRegistry()
    api.route("GET", "/a", fixed(200, {}))
    async with (
        RestClient(config_for(api), registry=registry) as r1,
        RestClient(config_for(api), registry=registry) as r2,
    ):
        await r1.request("GET", "/a")
        await r2.request("GET", "/a")
    assert 'code="200"' in generate_latest(registry).decode()
    assert generate_latest(registry).decode().count("rest_client_requests_total{") == 1


async def test_a_401_refreshes_credentials_once_and_retries(api: Api) -> None:
    auth = Auth("expired")
    refreshed: list[bool] = []

    async def refresh() -> None:
        refreshed.append(True)
        auth.token = "fresh"

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers["Authorization"] == "Bearer fresh":
            return json_response(200, {"ok": 1})
        return json_response(401, status_body(401, "Unauthorized", "Unauthorized"))

    api.route("GET", "/a", handler)
    async with RestClient(config_for(api, auth, refresh)) as rest:
        assert await rest.request("GET", "/a") == {"ok": 1}
        auth.token = "revoked"
        refreshed.clear()

        async def always_bad() -> None:
            refreshed.append(True)

        rest.config._on_unauthorized = always_bad
        with pytest.raises(Unauthorized):
            await rest.request("GET", "/a")
    assert refreshed == [True]


def watch_handler(chunks: list[bytes], *, hold: asyncio.Event | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for c in chunks:
            await resp.write(c)
            await asyncio.sleep(0)
        if hold is not None:
            await hold.wait()
        await resp.write_eof()
        return resp

    return handler


def event(etype: str, name: str, rv: str, pad: int = 0) -> bytes:
    obj = {
        "kind": "ConfigMap",
        "metadata": {"name": name, "resourceVersion": rv},
        "data": {"x": "y" * pad},
    }
    return orjson.dumps({"type": etype, "object": obj}) + b"\n"


async def test_watch_decodes_events_split_and_joined_across_chunks(
    api: Api, rest: RestClient
) -> None:
    big = event("MODIFIED", "big", "3", pad=5 * 2**20)  # over aiohttp's default line limit
    stream = (
        event("ADDED", "a", "1") + event("BOOKMARK", "", "2") + big + event("DELETED", "a", "4")
    )
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    chunks.insert(1, b"")  # an empty write is not the end
    api.route("GET", "/api/v1/configmaps", watch_handler(chunks))
    async with rest.watch("/api/v1/configmaps", {"resourceVersion": "1"}) as events:
        got = [e async for e in events]
    assert [(e.type, e.object["metadata"]["resourceVersion"]) for e in got] == [
        ("ADDED", "1"),
        ("BOOKMARK", "2"),
        ("MODIFIED", "3"),
        ("DELETED", "4"),
    ]
    assert len(got[2].object["data"]["x"]) == 5 * 2**20
    assert dict(api.seen[-1].query) == {"resourceVersion": "1", "watch": "true"}
    assert rest.stats.watches == 1


async def test_a_watch_error_event_raises_its_api_error(api: Api, rest: RestClient) -> None:
    expired = orjson.dumps(
        {"type": "ERROR", "object": status_body(410, "Expired", "too old resource version: 1")}
    )
    api.route("GET", "/w", watch_handler([event("ADDED", "a", "5"), expired + b"\n"]))
    got: list[WatchEvent] = []

    async def consume() -> None:
        async with rest.watch("/w") as events:
            async for e in events:
                got.append(e)

    with pytest.raises(Gone, match="too old resource version"):
        await consume()
    assert len(got) == 1


async def test_a_refused_watch_raises_the_servers_error(api: Api, rest: RestClient) -> None:
    stream = rest.watch("/nothing-here")
    with pytest.raises(NotFound):
        await anext(stream)
    await stream.aclose()


async def test_a_closed_client_refuses_new_requests(api: Api) -> None:
    rest = RestClient(config_for(api))
    await rest.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await rest.request("GET", "/a")


def test_token_bucket_allows_a_burst_then_spaces_reservations_at_qps() -> None:
    bucket = TokenBucket(qps=10, burst=3)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3] == pytest.approx(0.1, abs=0.01)
    assert waits[4] == pytest.approx(0.2, abs=0.01)
    with pytest.raises(ValueError):
        TokenBucket(qps=0, burst=1)


async def test_watch_hands_over_what_known_holds_for_added_and_modified_bytes_only(
    api: Api, rest: RestClient
) -> None:
    # ``known`` answers for exactly these object bytes (a write's answer it kept).
    echo = orjson.dumps(orjson.loads(event("MODIFIED", "mine", "5"))["object"])
    held = {"held": True}
    asked: list[bytes] = []

    def known(body: bytes) -> dict[str, Any] | None:
        asked.append(body)
        return held if body == echo else None

    stream = (
        event("ADDED", "other", "4")
        + event("MODIFIED", "mine", "5")
        + event("DELETED", "mine", "6")
        + event("BOOKMARK", "", "7")
    )
    api.route("GET", "/api/v1/configmaps", watch_handler([stream]))
    async with rest.watch("/api/v1/configmaps", known=known) as events:
        got = [e async for e in events]
    assert [e.type for e in got] == ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    assert got[1].object is held  # not decoded
    assert got[0].object["metadata"]["name"] == "other"  # asked, declined, decoded
    assert got[2].object["metadata"]["name"] == "mine"  # DELETED: never asked
    assert len(asked) == 2 and asked[1] == echo
