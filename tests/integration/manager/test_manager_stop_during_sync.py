"""A stop (or SIGTERM) while the caches are still syncing takes effect at once: a kubelet sends
SIGKILL after the pod's grace period, so waiting out ``cache_sync_timeout`` (120 s) loses the
clean shutdown. The sync is held back at the transport: the kind is resolved first, then the
proxy in front of the apiserver stops forwarding bytes, so the informer's list never answers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aimctl.client import GVK
from aimctl.envtest import ControlPlane
from aimctl.manager import Manager

from .manager_kit import FaultyProxy, election, manager, wait_for

CONFIGMAP = GVK("", "v1", "ConfigMap")


@pytest.fixture
async def proxy(control_plane: ControlPlane) -> AsyncIterator[FaultyProxy]:
    p = await FaultyProxy.to(control_plane)
    yield p
    await p.close()


async def reconcile(_: object) -> None:
    return None


async def syncing(mgr: Manager, proxy: FaultyProxy) -> asyncio.Task[None]:
    """Start ``mgr`` with its ConfigMap list stalled; return once /readyz says it waits."""
    mgr.controller().named("sync").for_(CONFIGMAP).complete(reconcile)
    await mgr.informers_for(CONFIGMAP)  # discovery while bytes still flow
    proxy.flowing.clear()
    task = asyncio.create_task(mgr.run(handle_signals=True))
    await wait_for(lambda: mgr.probe_server is not None, what="probe server")
    assert mgr.probe_server is not None
    url = f"http://127.0.0.1:{mgr.probe_server.port}/readyz"
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 30
        while True:
            async with http.get(url) as resp:
                body = await resp.text()
            if resp.status == 503 and "waiting for v1/ConfigMap" in body:
                break
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # well inside the sync wait
    assert not task.done()
    return task


async def test_stop_interrupts_the_cache_sync(
    control_plane: ControlPlane, namespace: str, proxy: FaultyProxy
) -> None:
    mgr = manager(await proxy.config(control_plane), namespace, cache_sync_timeout=120)
    task = await syncing(mgr, proxy)
    t0 = time.monotonic()
    mgr.stop()
    await asyncio.wait_for(task, 30)  # returns cleanly: no CacheSyncError
    took = time.monotonic() - t0
    print(f"stop latency during cache sync: {took * 1000:.0f} ms")
    assert took < 5


async def test_sigterm_interrupts_the_cache_sync_of_a_leader_candidate(
    control_plane: ControlPlane, namespace: str, proxy: FaultyProxy
) -> None:
    mgr = manager(
        await proxy.config(control_plane),
        namespace,
        cache_sync_timeout=120,
        leader_election=election(namespace, "a"),
    )
    task = await syncing(mgr, proxy)
    t0 = time.monotonic()
    os.kill(os.getpid(), signal.SIGTERM)  # run() installed its handler (handle_signals=True)
    await asyncio.wait_for(task, 30)
    took = time.monotonic() - t0
    print(f"SIGTERM latency during cache sync: {took * 1000:.0f} ms")
    assert took < 5
    assert mgr.elector is None  # never got as far as the election
