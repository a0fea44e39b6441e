"""Fixtures for the manager and controller integration tests: the session control plane's
configuration and a REST client on it (helpers are in ``manager_kit``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aimctl.client import ClusterConfig, RestClient, load_kubeconfig
from aimctl.envtest import ControlPlane


@pytest.fixture
async def config(control_plane: ControlPlane) -> ClusterConfig:
    return await load_kubeconfig(str(control_plane.kubeconfig))


@pytest.fixture
async def rest(config: ClusterConfig) -> AsyncIterator[RestClient]:
    async with RestClient(config) as r:
        yield r
