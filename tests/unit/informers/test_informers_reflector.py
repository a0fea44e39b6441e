"""Reflector: list/watch semantics, recovery and metrics, against an in-memory server."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from aimctl._internal.backoff import BackoffPolicy
from aimctl._internal.clock import ManualClock
from aimctl.client import (
    Forbidden,
    Gone,
    ServerError,
    TooManyRequests,
    TransportError,
    WatchStalled,
)
from aimctl.informers import (
    Apply,
    Delete,
    Failed,
    InformerMetrics,
    Init,
    InitApply,
    InitDone,
    Reflector,
    ReflectorEvent,
    ReflectorOptions,
)
from aimctl.informers.testing import FakeListerWatcher, RecordingSleep, until

NO_JITTER = BackoffPolicy(jitter=0.0)


class Run:
    """Drives a reflector in a task and records its events."""

    def __init__(self, server: FakeListerWatcher, **options: object) -> None:
        self.server = server
        self.clock = ManualClock(1000.0)
        self.sleep = RecordingSleep()
        self.metrics = InformerMetrics().for_informer("v1/ConfigMap", "")
        opts = {"initial_list": "list", "backoff": NO_JITTER, **options}
        self.reflector = Reflector(
            server,
            options=ReflectorOptions(**opts),  # type: ignore[arg-type]
            metrics=self.metrics,
            clock=self.clock,
            sleep=self.sleep,
            rng=random.Random(3),
        )
        self.events: list[ReflectorEvent] = []
        self._task: asyncio.Task[None] | None = None

    async def _consume(self) -> None:
        async with contextlib.aclosing(self.reflector.run()) as events:
            async for ev in events:
                self.events.append(ev)

    async def __aenter__(self) -> Run:
        self._task = asyncio.create_task(self._consume())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def of(self, t: type) -> list[ReflectorEvent]:
        return [e for e in self.events if isinstance(e, t)]

    def names(self, t: type) -> list[str]:
        return [e.object["metadata"]["name"] for e in self.of(t)]  # type: ignore[union-attr]


@pytest.fixture
def server() -> FakeListerWatcher:
    s = FakeListerWatcher()
    for i in range(5):
        s.create(f"cm{i}")
    return s


async def test_first_list_is_a_paginated_consistent_read_then_a_watch_from_its_version(
    server: FakeListerWatcher,
) -> None:
    async with Run(server, page_size=2) as run:
        await until(lambda: server.open_streams == 1)
    assert run.events[0] == Init(relist=False)
    assert run.names(InitApply) == [f"cm{i}" for i in range(5)]
    assert run.of(InitDone) == [InitDone("105")]
    lists = server.list_calls()
    assert [p.get("limit") for p in lists] == ["2", "2", "2"]
    assert "resourceVersion" not in lists[0]  # "" = the latest state, a consistent read
    assert all("resourceVersion" not in p for p in lists[1:])  # continue tokens only
    (watch,) = server.watch_calls()
    assert watch["resourceVersion"] == "105"
    assert watch["allowWatchBookmarks"] == "true"
    assert 300 <= int(watch["timeoutSeconds"]) < 600


async def test_list_items_get_api_version_and_kind_filled_in(server: FakeListerWatcher) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
    item = run.of(InitApply)[0].object  # type: ignore[union-attr]
    assert (item["apiVersion"], item["kind"]) == ("v1", "ConfigMap")


async def test_watch_events_arrive_in_order_as_apply_and_delete(server: FakeListerWatcher) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        server.create("new")
        server.update("default/cm1", {"k": "v"})
        server.delete("default/cm2")
        await until(lambda: len(run.events) == 1 + 5 + 1 + 3)
    tail = run.events[-3:]
    assert isinstance(tail[0], Apply)
    assert tail[0].object["metadata"]["name"] == "new"
    assert isinstance(tail[1], Apply)
    assert tail[1].object["data"] == {"k": "v"}
    assert isinstance(tail[2], Delete)
    assert run.reflector.resource_version == "108"


async def test_bookmarks_advance_the_resource_version_and_refresh_its_age(
    server: FakeListerWatcher,
) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        run.clock.advance(30)
        assert run.metrics.rv_age.get() == pytest.approx(30)
        server.rv = 500  # other kinds changed meanwhile
        server.bookmark()
        await until(lambda: run.reflector.resource_version == "500")
        assert run.metrics.rv_age.get() == pytest.approx(0)
    assert not run.of(Apply)


async def test_a_watch_the_server_ends_is_reopened_from_the_last_version_without_relist(
    server: FakeListerWatcher,
) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        server.create("x")
        await until(lambda: len(run.of(Apply)) == 1)
        run.clock.advance(400)  # the watch ran its course
        server.streams[0].end()
        await until(lambda: len(server.watch_calls()) == 2)
    assert server.watch_calls()[1]["resourceVersion"] == "106"
    assert len(server.list_calls()) == 1
    assert run.sleep.delays == []
    assert not run.of(Failed)


async def test_dropped_connections_back_off_then_resume_watching_without_relist(
    server: FakeListerWatcher,
) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        server.streams[0].fail(TransportError("ClientPayloadError: truncated"))
        server.watch_errors = [TransportError("connection refused")] * 2
        await until(lambda: server.open_streams == 1 and len(server.watch_calls()) == 4)
    assert run.sleep.delays == pytest.approx([0.8, 1.6, 3.2])
    assert len(server.list_calls()) == 1
    assert [c["resourceVersion"] for c in server.watch_calls()] == ["105"] * 4
    failed = run.of(Failed)
    assert [f.phase for f in failed] == ["watch"] * 3  # type: ignore[union-attr]
    assert run.metrics._families.watch_errors.labels("v1/ConfigMap", "", "transport").value == 3


async def test_gone_on_a_watch_relists_at_the_last_version_then_at_the_latest(
    server: FakeListerWatcher,
) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        run.clock.advance(5)  # a healthy watch: relist without delay
        server.list_errors = [Gone(410, "Expired", "too old resource version")]
        server.streams[0].fail(Gone(410, "Expired", "too old resource version: 105"))
        await until(lambda: len(run.of(InitDone)) == 2)
    lists = server.list_calls()
    assert lists[1]["resourceVersion"] == "105"
    assert lists[1]["resourceVersionMatch"] == "NotOlderThan"
    assert "resourceVersion" not in lists[2]
    assert run.of(Init) == [Init(relist=False), Init(relist=True), Init(relist=True)]
    assert run.sleep.delays == pytest.approx([0.8])  # only the failed list waited
    assert run.metrics.relists.value == 1
    assert run.metrics.lists.value == 2


async def test_an_expired_continue_token_restarts_the_list_from_the_latest(
    server: FakeListerWatcher,
) -> None:
    server.continue_expired = True
    async with Run(server, page_size=2) as run:
        await until(lambda: server.open_streams == 1)
    # Init, 2 items, Failed(410), Init, 5 items, InitDone
    assert run.of(Init) == [Init(relist=False), Init(relist=False)]
    assert len(run.of(InitDone)) == 1
    assert run.names(InitApply)[-5:] == [f"cm{i}" for i in range(5)]


async def test_throttling_waits_at_least_the_servers_retry_after(server: FakeListerWatcher) -> None:
    server.list_errors = [TooManyRequests(429, "TooManyRequests", "slow down", retry_after=7)]
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
    assert run.sleep.delays == [7]


async def test_server_errors_stalls_and_refusals_back_off_exponentially(
    server: FakeListerWatcher,
) -> None:
    server.list_errors = [
        ServerError(500, "InternalError", "etcd"),
        Forbidden(403, "Forbidden", "configmaps is forbidden"),
        WatchStalled("nothing for 70s"),
    ]
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
    assert run.sleep.delays == pytest.approx([0.8, 1.6, 3.2])
    assert [type(f.error) for f in run.of(Failed)] == [  # type: ignore[union-attr]
        ServerError,
        Forbidden,
        WatchStalled,
    ]
    fam = run.metrics._families.list_errors
    assert fam.labels("v1/ConfigMap", "", "forbidden").value == 1
    assert fam.labels("v1/ConfigMap", "", "stalled").value == 1


async def test_a_quiet_watch_is_reopened_at_once_from_its_resource_version(
    server: FakeListerWatcher,
) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        rv = server.watch_calls()[0]["resourceVersion"]
        server.streams[0].fail(WatchStalled("nothing received for 70s"))
        await until(lambda: len(server.watch_calls()) == 2)
    assert run.sleep.delays == []  # no backoff: the deadline already spaced the attempts
    assert server.watch_calls()[1]["resourceVersion"] == rv
    assert [f.retry_in for f in run.of(Failed)] == [0.0]  # type: ignore[union-attr]
    fam = run.metrics._families.watch_errors
    assert fam.labels("v1/ConfigMap", "", "stalled").value == 1


async def test_a_watch_closed_at_once_without_events_counts_as_a_failure(
    server: FakeListerWatcher,
) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        server.streams[0].end()  # no time passed on the manual clock
        await until(lambda: len(server.watch_calls()) == 2)
    assert run.sleep.delays == pytest.approx([0.8])


async def test_backoff_resets_after_two_quiet_minutes(server: FakeListerWatcher) -> None:
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        for _ in range(3):
            server.streams[0].fail(TransportError("reset"))
            n = len(server.watch_calls())
            await until(lambda n=n: len(server.watch_calls()) == n + 1)  # type: ignore[misc]
        run.clock.advance(121)
        server.streams[0].fail(TransportError("reset"))
        await until(lambda: len(server.watch_calls()) == 5)
    assert run.sleep.delays == pytest.approx([0.8, 1.6, 3.2, 0.8])


async def test_streaming_list_ends_at_the_initial_events_end_bookmark_and_keeps_watching() -> None:
    server = FakeListerWatcher(streaming=True)
    for i in range(3):
        server.create(f"cm{i}")
    async with Run(server, initial_list="auto") as run:
        await until(lambda: len(run.of(InitDone)) == 1)
        server.create("later")
        await until(lambda: len(run.of(Apply)) == 1)
    assert server.list_calls() == []
    assert run.reflector.streaming_list is True
    (watch,) = server.watch_calls()
    assert watch["sendInitialEvents"] == "true"
    assert watch["resourceVersionMatch"] == "NotOlderThan"
    assert watch["resourceVersion"] == ""
    assert run.events[0] == Init(relist=False)
    assert run.names(InitApply) == ["cm0", "cm1", "cm2"]
    assert run.of(InitDone) == [InitDone("103")]
    assert run.reflector.resource_version == "104"
    assert run.metrics.lists.value == 1
    assert run.metrics.watches.value == 1


async def test_a_server_refusing_streaming_lists_gets_paginated_lists(
    server: FakeListerWatcher,
) -> None:
    async with Run(server, initial_list="auto") as run:
        await until(lambda: server.open_streams == 1)
        # After a 410 the fallback sticks: no second streaming attempt.
        run.clock.advance(5)
        server.streams[0].fail(Gone(410, "Expired", "too old"))
        await until(lambda: len(run.of(InitDone)) == 2)
    streaming = [c for c in server.watch_calls() if c.get("sendInitialEvents")]
    assert len(streaming) == 1
    assert run.reflector.streaming_list is False
    assert len(server.list_calls()) == 2
    assert run.sleep.delays == []
    assert run.events[0] == Init(relist=False)
    assert run.names(InitApply)[:5] == [f"cm{i}" for i in range(5)]


async def test_relist_after_compaction_reports_every_object_as_of_now() -> None:
    server = FakeListerWatcher()
    server.create("a")
    server.create("b")
    async with Run(server) as run:
        await until(lambda: server.open_streams == 1)
        run.clock.advance(5)
        streams = server.streams
        server.streams = []  # the watch misses these changes
        server.create("c")
        server.delete("default/a")
        server.compact()
        server.streams = streams
        streams[0].fail(Gone(410, "Expired", "too old"))
        await until(lambda: len(run.of(InitDone)) == 2)
    last_init = max(i for i, e in enumerate(run.events) if isinstance(e, Init))
    relisted = [
        e.object["metadata"]["name"] for e in run.events[last_init:] if isinstance(e, InitApply)
    ]
    assert relisted == ["b", "c"]


async def test_cancelling_the_consumer_closes_the_watch(server: FakeListerWatcher) -> None:
    async with Run(server):
        await until(lambda: server.open_streams == 1)
        stream = server.streams[0]
    assert stream.closed
    assert server.open_streams == 0
