"""Async kubernetes_asyncio clients for the envtest integration tests (admin credentials)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient

from aimctl.envtest import ControlPlane


async def client_for(kubeconfig: str) -> ApiClient:
    return await config.new_client_from_config(config_file=kubeconfig, persist_config=False)


@pytest_asyncio.fixture
async def api(control_plane: ControlPlane) -> AsyncIterator[ApiClient]:
    async with await client_for(str(control_plane.kubeconfig)) as client:
        yield client


@pytest_asyncio.fixture
async def full_api(full_control_plane: ControlPlane) -> AsyncIterator[ApiClient]:
    async with await client_for(str(full_control_plane.kubeconfig)) as client:
        yield client
