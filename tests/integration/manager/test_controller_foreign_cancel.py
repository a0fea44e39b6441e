"""A reconcile that awaits a task someone else cancels is a retried error, on a real apiserver:
the worker lives on, later events are reconciled and ``/healthz`` stays 200."""

from __future__ import annotations

import asyncio

import aiohttp

from aimctl.client import GVK, ClusterConfig, RestClient
from aimctl.controller import Request
from aimctl.manager import Manager

from .manager_kit import wait_for

CONFIGMAP = GVK("", "v1", "ConfigMap")


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
