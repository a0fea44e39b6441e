"""The operator, in-process, against the full local cluster (pods, PVCs and GC by kwok and the
controller-manager). Each test gets its own namespace and its own operator scoped to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aimctl.envtest import ControlPlane

from .operator_kit import CRDS, Operator, start_operator


@pytest.fixture(scope="session")
def operator_cluster(full_control_plane: ControlPlane) -> ControlPlane:
    full_control_plane.install_crds(CRDS)
    return full_control_plane


@pytest.fixture
async def operator(operator_cluster: ControlPlane, full_namespace: str) -> AsyncIterator[Operator]:
    async with start_operator(operator_cluster, full_namespace) as op:
        yield op
