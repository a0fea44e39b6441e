"""The operator against a cluster with a real node: Redis pods run under a kubelet, on
containerd, with real probes, mounts, memory limits, DNS and Services.

One real node per host (see aimctl.envtest._host), so the cluster is package-scoped: it stops
when this package's tests are done, before any other package may start its own. The cluster
sends every KV cache's Redis pod to the real node (the policy ``aimctl dev`` installs), so the
guide's YAML runs unchanged; other pods (the inference Deployments) stay on kwok. Client pods,
commands in them and waits on the real objects are in ``node_kit``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from aimctl.envtest import ControlPlane, real_node_policy, wait_for_real_node_policy
from aimctl.envtest.pytest_plugin import private_control_plane
from aimctl.reconcilers import DEFAULT_REDIS_IMAGE
from aimctl.reconcilers._common import LABEL_NAME
from tests.integration.reconcilers.operator_kit import CRDS, Operator, start_operator

# What every cache's Redis pod carries (the guide's `-l app.kubernetes.io/name=aimkvcache`).
REDIS_POD_LABELS = {LABEL_NAME: "aimkvcache"}


@pytest.fixture(scope="package")
def real_cluster() -> Iterator[ControlPlane]:
    with private_control_plane(
        full=True, real_node=True, redis_images=(DEFAULT_REDIS_IMAGE,)
    ) as cp:
        cp.install_crds(CRDS)
        for obj in real_node_policy("aimctl-kvcache-real-node", REDIS_POD_LABELS):
            cp.kubectl("apply", "-f", "-", input=json.dumps(obj))
        wait_for_real_node_policy(
            lambda pod: (
                cp.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=pod).stdout
            ),
            REDIS_POD_LABELS,
        )
        yield cp


@pytest.fixture
def real_namespace(real_cluster: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    name = real_cluster.create_namespace(prefix="real-")
    yield name
    real_cluster.delete_namespace(name)


@pytest.fixture
async def real_operator(real_cluster: ControlPlane, real_namespace: str) -> AsyncIterator[Operator]:
    async with start_operator(real_cluster, real_namespace) as op:
        yield op
