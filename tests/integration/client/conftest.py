"""Async REST clients on the session control plane, a fault-injecting proxy, cached clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio
from prometheus_client import CollectorRegistry

from aimctl.client import Client, ClusterConfig, RestClient, load_kubeconfig
from aimctl.envtest import ControlPlane
from aimctl.manager import Manager
from tests.integration.client.faulty_proxy import FaultyProxy


@pytest_asyncio.fixture
async def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest_asyncio.fixture
async def rest(
    control_plane: ControlPlane, registry: CollectorRegistry
) -> AsyncIterator[RestClient]:
    async with await RestClient.from_kubeconfig(
        str(control_plane.kubeconfig), registry=registry
    ) as client:
        yield client


@pytest_asyncio.fixture
async def proxy(control_plane: ControlPlane) -> AsyncIterator[FaultyProxy]:
    """A fault-injecting HTTP proxy in front of the session API server."""
    p = FaultyProxy(await load_kubeconfig(str(control_plane.kubeconfig)))
    await p.start()
    yield p
    await p.close()


@contextlib.asynccontextmanager
async def cached_client(
    config: ClusterConfig, namespace: str, field_manager: str = "aimctl-test"
) -> AsyncIterator[Client]:
    """A Client of a (not running) Manager watching ``namespace``, its informers started."""
    mgr = Manager(
        config, namespaces=[namespace], metrics_bind_address="0", health_probe_bind_address="0"
    )
    await mgr.informers.start()
    try:
        yield mgr.client(field_manager)
    finally:
        await mgr.informers.stop()
        await mgr.rest.aclose()
