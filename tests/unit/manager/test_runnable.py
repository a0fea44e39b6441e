"""Runnables and the manager's lifecycle without a server: a manager with no watched kind and no
leader election makes no request, so start, stop, failures and probes run offline here (the
leader-election cases are in tests/integration/manager/test_manager_runnables.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import aiohttp
import pytest
import pytest_asyncio

from aimctl.client import ClusterConfig
from aimctl.controller import Controller
from aimctl.manager import Manager, Runnable
from aimctl.manager._runnable import needs_leader_election


class NoAuth:
    async def auth_settings(self) -> dict[str, object]:
        return {}


def offline_manager(*, graceful_shutdown_timeout: float = 30.0) -> Manager:
    # Nothing listens on port 1; nothing here sends a request.
    return Manager(
        ClusterConfig("http://127.0.0.1:1", None, None, None, NoAuth()),
        metrics_bind_address="0",
        health_probe_bind_address="127.0.0.1:0",
        graceful_shutdown_timeout=graceful_shutdown_timeout,
    )


async def eventually(cond: object, within: float = 10.0) -> None:
    assert callable(cond)
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Recorder:
    """A runnable recording its lifecycle; ``obey`` False ignores ``stop``."""

    def __init__(self, *, obey: bool = True, need: bool | None = None) -> None:
        self.obey = obey
        if need is not None:
            self.need_leader_election = need
        self.started = asyncio.Event()
        self.saw_stop = False
        self.cancelled = False
        self.returned = False

    async def start(self, stop: asyncio.Event) -> None:
        self.started.set()
        try:
            if self.obey:
                await stop.wait()
                self.saw_stop = True
            else:
                await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.returned = True


# -- the shape -------------------------------------------------------------------------------


def test_need_leader_election_defaults_to_true_as_in_controller_runtime() -> None:
    async def fn(stop: asyncio.Event) -> None: ...

    class Method:
        def need_leader_election(self) -> bool:  # Go's NeedLeaderElection() shape
            return False

    assert needs_leader_election(fn)
    assert needs_leader_election(Recorder())
    assert not needs_leader_election(Recorder(need=False))
    assert not needs_leader_election(Method())
    assert isinstance(Recorder(), Runnable)


def test_add_rejects_a_sync_start() -> None:
    mgr = offline_manager()

    def sync(stop: asyncio.Event) -> None: ...

    class SyncStart:
        def start(self, stop: asyncio.Event) -> None: ...

    with pytest.raises(TypeError):
        mgr.add(sync)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mgr.add(SyncStart())  # type: ignore[arg-type]


async def test_add_after_start_is_refused() -> None:
    mgr = offline_manager()
    mgr.stop()
    await mgr.run()
    with pytest.raises(RuntimeError):
        mgr.add(Recorder())
    with pytest.raises(RuntimeError, match="runs once"):
        await mgr.run()


# -- lifecycle -------------------------------------------------------------------------------


async def test_runnables_start_and_get_stop_on_shutdown() -> None:
    mgr = offline_manager()
    leader, other = Recorder(), Recorder(need=False)
    seen: list[str] = []

    async def fn(stop: asyncio.Event) -> None:
        seen.append("started")
        await stop.wait()
        seen.append("stopped")

    mgr.add(leader)
    mgr.add(other)
    mgr.add(fn, name="fn")
    task = asyncio.create_task(mgr.run())
    await asyncio.wait_for(asyncio.gather(leader.started.wait(), other.started.wait()), 10)
    await eventually(lambda: seen == ["started"])
    mgr.stop()
    await asyncio.wait_for(task, 10)
    assert leader.saw_stop and leader.returned and not leader.cancelled
    assert other.saw_stop and other.returned
    assert seen == ["started", "stopped"]


async def test_a_runnable_ignoring_stop_is_cancelled_at_the_graceful_timeout() -> None:
    mgr = offline_manager(graceful_shutdown_timeout=0.5)
    stubborn, polite = Recorder(obey=False), Recorder()
    mgr.add(stubborn)
    mgr.add(polite)
    task = asyncio.create_task(mgr.run())
    await asyncio.wait_for(stubborn.started.wait(), 10)
    t0 = time.monotonic()
    mgr.stop()
    await asyncio.wait_for(task, 10)
    took = time.monotonic() - t0
    assert stubborn.cancelled and not stubborn.returned
    assert polite.returned and not polite.cancelled
    assert 0.4 < took < 5, took


async def test_a_runnable_returning_early_leaves_the_manager_running() -> None:
    mgr = offline_manager()
    done = asyncio.Event()

    async def once(stop: asyncio.Event) -> None:
        done.set()

    mgr.add(once)
    task = asyncio.create_task(mgr.run())
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.2)
    assert not task.done()
    mgr.stop()
    await asyncio.wait_for(task, 10)


async def test_a_failing_runnable_stops_the_manager_with_its_error() -> None:
    mgr = offline_manager(graceful_shutdown_timeout=10)
    other = Recorder()

    class Boom(Exception):
        pass

    async def fails(stop: asyncio.Event) -> None:
        await other.started.wait()
        raise Boom("broken")

    mgr.add(other)
    mgr.add(fails)
    with pytest.raises(Boom, match="broken"):
        await asyncio.wait_for(mgr.run(), 10)
    assert other.saw_stop and other.returned  # the others were stopped gracefully


async def test_a_runnable_failing_after_stop_is_only_logged() -> None:
    mgr = offline_manager()
    started = asyncio.Event()

    async def fails_on_stop(stop: asyncio.Event) -> None:
        started.set()
        await stop.wait()
        raise RuntimeError("cleanup failed")

    mgr.add(fails_on_stop)
    task = asyncio.create_task(mgr.run())
    await asyncio.wait_for(started.wait(), 10)
    mgr.stop()
    await asyncio.wait_for(task, 10)  # controller-runtime logs errors after the stop began


# -- /healthz --------------------------------------------------------------------------------


class OldStubController:
    """What the manager calls on a controller, without ``workers_alive``: counts as alive."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = False

    def start(self) -> None:
        self.started = True

    async def stop(self, drain_timeout: float | None = 30.0) -> None:
        self.started = False


class StubController(OldStubController):
    """With ``workers_alive``, flipped by the test."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.alive = True

    def workers_alive(self) -> bool:
        return self.alive


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_healthz_fails_when_a_started_controller_has_no_live_worker(
    http: aiohttp.ClientSession,
) -> None:
    mgr = offline_manager()
    stub, old = StubController("kvcache"), OldStubController("legacy")
    mgr.add_controller(cast(Controller, stub))
    mgr.add_controller(cast(Controller, old))
    task = asyncio.create_task(mgr.run())
    try:
        await eventually(lambda: stub.started and mgr.probe_server is not None)
        assert mgr.probe_server is not None
        url = f"http://127.0.0.1:{mgr.probe_server.port}/healthz"
        async with http.get(url) as resp:
            assert resp.status == 200
        stub.alive = False
        async with http.get(url, params={"verbose": ""}) as resp:
            body = await resp.text()
            assert resp.status == 500, body
            assert "[-]controllers failed: no live worker in controller kvcache" in body
            assert "legacy" not in body
        async with http.get(url, params={"exclude": "controllers"}) as resp:
            assert resp.status == 200
    finally:
        mgr.stop()
        await asyncio.wait_for(task, 10)
