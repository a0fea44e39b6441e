"""A reconcile that awaits a task someone else cancels is a retried error, on a real apiserver:
the worker lives on, later events are reconciled and ``/healthz`` stays 200."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from aimctl.client import GVK, ClusterConfig, RestClient, load_kubeconfig
from aimctl.controller import Request
from aimctl.envtest import ControlPlane
from aimctl.manager import Manager

CONFIGMAP = GVK("", "v1", "ConfigMap")


async def wait_for(cond: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def config(control_plane: ControlPlane) -> ClusterConfig:
    return await load_kubeconfig(str(control_plane.kubeconfig))


@pytest.fixture
async def rest(config: ClusterConfig) -> AsyncIterator[RestClient]:
    async with RestClient(config) as r:
        yield r


async def test_a_foreign_cancellation_does_not_kill_the_worker(
    config: ClusterConfig, rest: RestClient, namespace: str
) -> None:
    mgr = Manager(
        config,
        namespaces=[namespace],
        metrics_bind_address="0",
        health_probe_bind_address="127.0.0.1:0",
    )
    seen: list[str] = []
    cancelled_once = False

    async def reconcile(req: Request) -> None:
        nonlocal cancelled_once
        seen.append(req.name)
        if req.name == "victim" and not cancelled_once:
            cancelled_once = True
            # A shared lookup (here: a real GET on the apiserver) that another task cancels
            # while this reconcile awaits it.
            lookup = asyncio.create_task(
                rest.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/victim")
            )
            asyncio.get_running_loop().call_soon(lookup.cancel)
            await lookup

    mgr.controller().named("foreign-cancel").for_(CONFIGMAP).complete(reconcile)
    task = asyncio.create_task(mgr.run())
    try:
        await rest.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            body={"metadata": {"name": "victim"}},
        )
        await wait_for(lambda: seen.count("victim") == 2)  # retried after the error
        await rest.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            body={"metadata": {"name": "later"}},
        )
        await wait_for(lambda: "later" in seen)  # the one worker is still alive
        assert mgr.probe_server is not None
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{mgr.probe_server.port}/healthz") as resp,
        ):
            assert resp.status == 200, await resp.text()
        errors = mgr.registry.get_sample_value(
            "controller_runtime_reconcile_errors_total", {"controller": "foreign-cancel"}
        )
        assert errors == 1
    finally:
        mgr.stop()
        await asyncio.wait_for(task, 30)
