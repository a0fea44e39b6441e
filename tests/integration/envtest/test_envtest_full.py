"""Acceptance (full mode): a StatefulSet with a volumeClaimTemplate reaches readyReplicas 1 with
its PVC Bound, and deleting an owner garbage-collects its dependents."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, AppsV1Api, CoreV1Api, V1DeleteOptions
from kubernetes_asyncio.client.rest import ApiException

from aimctl.envtest import NODE_NAME, STORAGE_CLASS


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {within:.0f}s")
        await asyncio.sleep(0.2)


async def test_statefulset_with_volume_becomes_ready(
    full_namespace: str, full_api: ApiClient
) -> None:
    apps, core = AppsV1Api(full_api), CoreV1Api(full_api)
    labels = {"app": "kv"}
    statefulset: Any = {
        "metadata": {"name": "kv"},
        "spec": {
            "serviceName": "kv",
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "kv",
                            "image": "example.invalid/kv:1",
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }
    await apps.create_namespaced_stateful_set(full_namespace, statefulset)

    async def ready() -> bool:
        sts = await apps.read_namespaced_stateful_set_status("kv", full_namespace)
        return (sts.status.ready_replicas or 0) == 1

    await _eventually(ready)
    pvc = await core.read_namespaced_persistent_volume_claim("data-kv-0", full_namespace)
    assert pvc.status.phase == "Bound"
    assert pvc.spec.storage_class_name == STORAGE_CLASS  # the default StorageClass
    pod = await core.read_namespaced_pod("kv-0", full_namespace)
    assert pod.spec.node_name == NODE_NAME
    assert pod.status.phase == "Running"
    # The ServiceAccount admission plugin ran: the pod got the default account's token volume.
    assert pod.spec.service_account_name == "default"
    assert any(v.name.startswith("kube-api-access-") for v in pod.spec.volumes)


async def test_deleting_an_owner_collects_its_dependents(
    full_namespace: str, full_api: ApiClient
) -> None:
    core = CoreV1Api(full_api)
    body: Any = {"metadata": {"name": "owner"}, "data": {}}
    owner = await core.create_namespaced_config_map(full_namespace, body)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    for name in ("child-a", "child-b"):
        body = {"metadata": {"name": name, "ownerReferences": [ref]}, "data": {}}
        await core.create_namespaced_config_map(full_namespace, body)
    await core.delete_namespaced_config_map(
        "owner", full_namespace, body=V1DeleteOptions(propagation_policy="Background")
    )

    async def collected() -> bool:
        for name in ("child-a", "child-b"):
            try:
                await core.read_namespaced_config_map(name, full_namespace)
                return False
            except ApiException as e:
                if e.status != 404:
                    raise
        return True

    await _eventually(collected)
