"""Client operations whose behaviour the API server owns: apply ownership, controllerutil,
live lists, namespace-scoped caches, and the event recorder under a failing server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aimctl.client import (
    CONFIGMAP,
    DEPLOYMENT,
    Conflict,
    EventRecorder,
    OperationResult,
    RestClient,
    UnknownNamespace,
    load_kubeconfig,
)
from aimctl.envtest import ControlPlane
from tests.integration.client.conftest import cached_client


def deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def test_apply_takes_another_managers_field_only_when_forced(
    control_plane: ControlPlane, namespace: str
) -> None:
    config = await load_kubeconfig(str(control_plane.kubeconfig))
    async with cached_client(config, namespace, "other-manager") as other:
        await other.apply(deployment("web", namespace, 3))
        ours = other.with_field_manager("aimctl-test")
        with pytest.raises(Conflict) as conflict:
            await ours.apply(deployment("web", namespace, 5))
        assert ".spec.replicas" in conflict.value.message
        assert "other-manager" in conflict.value.message
        live = await ours.get_live(DEPLOYMENT, "web", namespace)
        assert live is not None
        assert live["spec"]["replicas"] == 3
        taken = await ours.apply(deployment("web", namespace, 5), force=True)
        assert taken["spec"]["replicas"] == 5


async def test_create_or_update_creates_leaves_alone_and_updates(
    control_plane: ControlPlane, namespace: str
) -> None:
    config = await load_kubeconfig(str(control_plane.kubeconfig))
    key = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": namespace},
    }
    want = {"k": "1"}

    def mutate(obj: dict[str, Any]) -> None:
        obj["data"] = dict(want)

    async with cached_client(config, namespace) as client:
        obj, result = await client.create_or_update(key, mutate)
        assert result is OperationResult.CREATED
        assert obj["data"] == {"k": "1"}
        await _until_cached(client, "a", namespace, obj["metadata"]["resourceVersion"])
        obj, result = await client.create_or_update(key, mutate)
        assert result is OperationResult.UNCHANGED
        assert client.rest.stats.requests["PUT"] == 0
        want["k"] = "2"
        obj, result = await client.create_or_update(key, mutate)
        assert result == "updated"
        assert obj["data"] == {"k": "2"}
        with pytest.raises(ValueError, match="name or namespace"):
            await client.create_or_update(key, lambda o: o["metadata"].update(name="b"))


async def test_create_or_patch_reports_what_it_patched(
    control_plane: ControlPlane, namespace: str
) -> None:
    config = await load_kubeconfig(str(control_plane.kubeconfig))
    key = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "w", "namespace": namespace},
    }
    full = deployment("w", namespace, 1)
    async with cached_client(config, namespace) as client:

        def spec(replicas: int) -> Any:
            def mutate(obj: dict[str, Any]) -> None:
                obj["spec"] = {**full["spec"], **obj.get("spec", {}), "replicas": replicas}

            return mutate

        obj, result = await client.create_or_patch(key, spec(1))
        assert result is OperationResult.CREATED
        await _until_cached(client, "w", namespace, obj["metadata"]["resourceVersion"], DEPLOYMENT)
        obj, result = await client.create_or_patch(key, spec(1))
        assert result is OperationResult.UNCHANGED
        obj, result = await client.create_or_patch(key, spec(2))
        assert result is OperationResult.UPDATED
        await _until_cached(client, "w", namespace, obj["metadata"]["resourceVersion"], DEPLOYMENT)

        def status(obj: dict[str, Any]) -> None:
            obj.setdefault("status", {})["observedGeneration"] = 7

        obj, result = await client.create_or_patch(key, status)
        assert result is OperationResult.UPDATED_STATUS_ONLY
        assert obj["status"]["observedGeneration"] == 7
        await _until_cached(client, "w", namespace, obj["metadata"]["resourceVersion"], DEPLOYMENT)

        def both(obj: dict[str, Any]) -> None:
            spec(3)(obj)
            obj["status"]["observedGeneration"] = 8

        obj, result = await client.create_or_patch(key, both)
        assert result is OperationResult.UPDATED_STATUS
        assert (obj["spec"]["replicas"], obj["status"]["observedGeneration"]) == (3, 8)


async def test_list_live_reads_any_namespace_with_label_and_field_selectors(
    control_plane: ControlPlane, namespace: str
) -> None:
    config = await load_kubeconfig(str(control_plane.kubeconfig))
    async with cached_client(config, namespace) as client:
        for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
            await client.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": namespace, "labels": {"tier": tier}},
                }
            )
        web = await client.list_live(CONFIGMAP, namespace, label_selector="tier=web")
        assert sorted(o["metadata"]["name"] for o in web) == ["a", "b"]
        assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in web)
        one = await client.list_live(CONFIGMAP, namespace, field_selector="metadata.name=c")
        assert [o["metadata"]["name"] for o in one] == ["c"]
        # Outside the watched namespace: the cache refuses, the live reader answers.
        with pytest.raises(UnknownNamespace, match="unknown namespace 'kube-system'"):
            await client.get(CONFIGMAP, "extension-apiserver-authentication", "kube-system")
        with pytest.raises(UnknownNamespace):
            await client.list(CONFIGMAP, "kube-system")
        assert await client.list_live(CONFIGMAP, "kube-system")
        assert await client.get(CONFIGMAP, "a", namespace) is not None


async def test_the_event_recorder_stays_bounded_when_every_write_fails(
    control_plane: ControlPlane, namespace: str
) -> None:
    user = control_plane.add_user("no-events")  # RBAC grants nothing: every Event is a 403
    async with await RestClient.from_kubeconfig(str(user.kubeconfig)) as rest:
        recorder = EventRecorder(rest, "aimctl-test")  # client-go's bounds: 1000 queued
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": namespace, "uid": "u"},
        }
        tasks_before = len(asyncio.all_tasks())
        for i in range(3000):
            recorder.event(obj, "Warning", "Failed", f"attempt {i}")  # distinct: no series
        assert len(asyncio.all_tasks()) - tasks_before <= 1  # one writer, not a task per event
        assert recorder._queue.qsize() <= 1000
        assert recorder.dropped >= 1900
        await asyncio.sleep(0.5)
        await recorder.aclose(timeout=2.0)
        assert recorder._queue.qsize() == 0
        assert len(recorder._series) == 0  # nothing was written
        assert len(asyncio.all_tasks()) <= tasks_before


async def test_repeated_events_become_one_series(
    control_plane: ControlPlane, namespace: str
) -> None:
    async with await RestClient.from_kubeconfig(str(control_plane.kubeconfig)) as rest:
        recorder = EventRecorder(rest, "aimctl-test")
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": namespace, "uid": "u"},
        }
        for _ in range(3):
            recorder.event(obj, "Normal", "Synced", "all good")
        await recorder.aclose()
        events = await rest.request("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
        (event,) = events["items"]
        assert event["series"]["count"] == 3


async def _until_cached(
    client: Any, name: str, namespace: str, rv: str, gvk: Any = CONFIGMAP
) -> None:
    """Wait until the informer delivered version ``rv`` (read-your-own-writes covers reads
    meanwhile, but these tests want the cache itself at that version)."""
    async with asyncio.timeout(30):
        while True:
            informers = await client._cache.informers_for(gvk)
            cached = informers[0].store.get_by_name(namespace, name)
            if cached is not None and cached["metadata"]["resourceVersion"] == rv:
                return
            await asyncio.sleep(0.05)
