"""WatchStream's inactivity deadline: one timer per stream, pushed forward lazily.

A read waiting ``inactivity_timeout`` seconds fails with WatchStalled; data arriving in time
keeps the stream alive however long it lasts; a cancellation the stream did not make stays a
cancellation. Served by a local HTTP server whose watch writes events when told to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from aimctl.client import ClusterConfig, RestClient, WatchStalled

EVENT = (
    orjson.dumps({"type": "ADDED", "object": {"kind": "ConfigMap", "metadata": {"name": "a"}}})
    + b"\n"
)


class NoAuth:
    async def auth_settings(self) -> dict[str, object]:
        return {}


class Feed:
    """The watch's server side: ``send()`` writes one event on the open watch."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def send(self, n: int = 1) -> None:
        for _ in range(n):
            self.queue.put_nowait(EVENT)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        while True:
            await resp.write(await self.queue.get())


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[Feed, RestClient]]:
    feed = Feed()
    app = web.Application()
    app.router.add_get("/api/v1/configmaps", feed.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rest = RestClient(ClusterConfig(f"http://127.0.0.1:{port}", None, None, None, NoAuth()))
    try:
        yield feed, rest
    finally:
        await rest.aclose()
        await runner.cleanup()


async def test_a_silent_watch_stalls_after_the_inactivity_timeout(
    served: tuple[Feed, RestClient],
) -> None:
    feed, rest = served
    feed.send()
    loop = asyncio.get_running_loop()
    async with rest.watch("/api/v1/configmaps", inactivity_timeout=0.3) as stream:
        assert (await anext(stream)).type == "ADDED"
        start = loop.time()
        with pytest.raises(WatchStalled, match=r"nothing received for 0\.3s"):
            await anext(stream)
        assert 0.25 <= loop.time() - start < 2.0


async def test_events_in_time_keep_a_watch_alive_past_many_timeouts(
    served: tuple[Feed, RestClient],
) -> None:
    """Each read gets its own full deadline, though the stream keeps one timer: events every
    0.15 s for 1.2 s (four timeouts of 0.3 s) never stall it; silence afterwards does."""
    feed, rest = served
    async with rest.watch("/api/v1/configmaps", inactivity_timeout=0.3) as stream:
        for _ in range(8):
            asyncio.get_running_loop().call_later(0.15, feed.send)
            assert (await anext(stream)).type == "ADDED"
        with pytest.raises(WatchStalled):
            await anext(stream)


async def test_a_cancellation_the_stream_did_not_make_stays_a_cancellation(
    served: tuple[Feed, RestClient],
) -> None:
    _, rest = served
    async with rest.watch("/api/v1/configmaps", inactivity_timeout=0.3) as stream:
        reader = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.1)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert reader.cancelled()


async def test_a_cancellation_racing_the_deadline_is_not_swallowed(
    served: tuple[Feed, RestClient],
) -> None:
    """Someone cancels the reader in the same loop turn the deadline fires: as with
    ``asyncio.timeout``, the outside cancellation wins over WatchStalled."""
    _, rest = served
    async with rest.watch("/api/v1/configmaps", inactivity_timeout=0.3) as stream:
        reader = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.05)
        fire_at = stream._waiting_since + 0.3  # the deadline's own loop time
        asyncio.get_running_loop().call_at(fire_at, reader.cancel)
        with pytest.raises(asyncio.CancelledError):
            await reader


async def test_closing_the_stream_stops_its_timer(served: tuple[Feed, RestClient]) -> None:
    feed, rest = served
    async with rest.watch("/api/v1/configmaps", inactivity_timeout=30) as stream:
        reader = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.05)
        assert stream._watchdog is not None
        feed.send()
        await reader
    assert stream._watchdog is None
