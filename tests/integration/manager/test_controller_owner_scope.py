"""``owns()`` keys a cluster-scoped owner by name alone, on a real kube-apiserver.

A ClusterRole (cluster-scoped) owns ConfigMaps (namespaced). The owner's key is ``("", name)``:
keyed by the child's namespace, the reconcile's cached ``get`` finds nothing, and children in
two namespaces would hand one owner to two workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aimctl.client import GVK, ClusterConfig, RestClient
from aimctl.controller import Request, label_selector
from aimctl.manager import Manager

from .manager_kit import wait_for

CONFIGMAP = GVK("", "v1", "ConfigMap")
CLUSTERROLE = GVK("rbac.authorization.k8s.io", "v1", "ClusterRole")
ROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"


@pytest.fixture
async def owner(rest: RestClient, namespace: str) -> AsyncIterator[dict[str, Any]]:
    """A ClusterRole named and labelled after the test's namespace (deleted afterwards)."""
    role = await rest.request(
        "POST",
        ROLES,
        body={
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"owner-{namespace}", "labels": {"test-owner": namespace}},
            "rules": [],
        },
    )
    yield role
    with contextlib.suppress(Exception):
        await rest.request("DELETE", f"{ROLES}/{role['metadata']['name']}")


async def owned_configmap(
    rest: RestClient, ns: str, name: str, owner: dict[str, Any], *, controller: bool
) -> None:
    ref = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
    }
    await rest.request(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps",
        body={"metadata": {"name": name, "ownerReferences": [ref]}, "data": {"a": "b"}},
    )


@pytest.mark.parametrize("only_controller", [True, False])
async def test_a_cluster_scoped_owner_of_a_namespaced_child_is_keyed_by_name_alone(
    config: ClusterConfig,
    rest: RestClient,
    namespace: str,
    owner: dict[str, Any],
    only_controller: bool,
) -> None:
    mgr = Manager(
        config,
        namespaces=[namespace],
        metrics_bind_address="0",
        health_probe_bind_address="0",
    )
    client = mgr.client("owner-scope-test")
    owner_name = owner["metadata"]["name"]
    seen: list[tuple[Request, bool]] = []  # (request, found in the cache)

    async def reconcile(req: Request) -> None:
        seen.append((req, await client.get(CLUSTERROLE, req.name, req.namespace) is not None))

    (
        mgr.controller()
        .named("clusterrole-owner")
        .for_(CLUSTERROLE, label_selector(lambda labels: labels.get("test-owner") == namespace))
        .owns(CONFIGMAP, only_controller=only_controller)
        .complete(reconcile)
    )
    task = asyncio.create_task(mgr.run())
    try:
        await wait_for(lambda: len(seen) == 1)  # the owner's own initial-list event
        assert seen == [(Request("", owner_name), True)]
        # A controller reference is followed by both; a plain owner reference only by
        # only_controller=False.
        await owned_configmap(rest, namespace, "child", owner, controller=only_controller)
        await wait_for(lambda: len(seen) == 2)
        await asyncio.sleep(0.3)  # anything else it would wrongly enqueue has arrived by now
        assert seen == [(Request("", owner_name), True)] * 2
    finally:
        mgr.stop()
        await asyncio.wait_for(task, 30)
