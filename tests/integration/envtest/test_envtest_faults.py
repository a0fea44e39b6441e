"""Fault injection on private control planes: apiserver kill/restart and etcd compaction."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import config, watch
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.rest import ApiException

from aimctl.envtest import ApiError
from aimctl.envtest.pytest_plugin import ControlPlaneFactory


def test_apiserver_restarts_on_the_same_port_with_its_data(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    cp = control_plane_factory()
    url = cp.url
    ns = cp.create_namespace("survivor")
    cp.kill_apiserver()
    with pytest.raises(OSError):
        cp.client().request("GET", "/version")
    cp.start_apiserver()
    assert cp.url == url
    assert cp.client().request("GET", f"/api/v1/namespaces/{ns}")["metadata"]["name"] == ns
    cp.restart_apiserver()
    assert cp.client().ok("/readyz")


async def test_watch_from_a_compacted_revision_is_gone(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    # Without the watch cache, watches are served by etcd, so compaction is directly visible.
    cp = control_plane_factory(apiserver_args={"watch-cache": "false"})
    client = cp.client()
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"n": "0"}}
    old = client.request("POST", "/api/v1/namespaces/default/configmaps", cm)
    for n in range(1, 4):
        client.request(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            {"data": {"n": str(n)}},
            content_type="application/merge-patch+json",
        )
    revision = cp.compact_etcd()
    assert revision > int(old["metadata"]["resourceVersion"])
    with pytest.raises(ApiError) as gone:
        client.request(
            "GET",
            "/api/v1/namespaces/default/configmaps",
            params={
                "resourceVersion": old["metadata"]["resourceVersion"],
                "resourceVersionMatch": "Exact",
            },
        )
    assert gone.value.status == 410

    async with await config.new_client_from_config(
        config_file=str(cp.kubeconfig), persist_config=False
    ) as api:
        stream = watch.Watch().stream(
            CoreV1Api(api).list_namespaced_config_map,
            "default",
            resource_version=old["metadata"]["resourceVersion"],
            timeout_seconds=10,
        )
        with pytest.raises(ApiException) as expired:
            async for _ in stream:
                pass
        assert expired.value.status == 410
