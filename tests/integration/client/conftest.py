"""Async REST clients on the session control plane."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from prometheus_client import CollectorRegistry

from aimctl.client import RestClient
from aimctl.envtest import ControlPlane


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
