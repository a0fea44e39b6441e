"""The AIM reconcilers on the fake client: outcomes (children, owners, status, Events, writes).

Fast and deterministic; what the API server decides (defaulting, SSA details, garbage
collection, the other controllers) stays in tests/integration/reconcilers. Other controllers'
work (the StatefulSet controller's PVC and pod, ready replicas) is simulated with ``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from aimctl.api.v1alpha1 import AIMKVCache
from aimctl.client import ServerError, TransportError
from aimctl.client.testing import FakeClient, FakeEventRecorder, Interceptors
from aimctl.controller import Request
from aimctl.objects import controller_of, find_condition, has_finalizer
from aimctl.reconcilers import FINALIZER, KVCacheReconciler, ServiceReconciler
from aimctl.reconcilers._common import (
    AIMKVCACHE,
    AIMSERVICE,
    CONFIGMAP,
    DEPLOYMENT,
    NETWORKPOLICY,
    SECRET,
    SERVICE,
    SERVICES_BY_CACHE,
    STATEFULSET,
)
from aimctl.reconcilers.kvcache import _desired as kvcache_desired
from aimctl.reconcilers.service._names import cache_key

NS = "team"
API = "aim.silogen.ai/v1alpha1"
DEFAULT_CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": "example.com/disk",
    "allowVolumeExpansion": True,
}


def world(*objects: Mapping[str, Any], interceptors: Interceptors | None = None) -> FakeClient:
    """A fake holding ``objects``, with the index ``add_to_manager`` registers."""
    fake = FakeClient(objects, interceptors=interceptors)
    fake.add_index(AIMSERVICE, SERVICES_BY_CACHE, cache_key)
    return fake


def kvcache(name: str = "cache") -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AIMKVCache",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"kvCacheType": "redis", "storage": {"size": "1Gi"}},
    }


def aimservice(name: str = "chat", kv_cache: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"image": "ghcr.io/silogen/aim-llama:0.7.0"}}
    if kv_cache is not None:
        spec["kvCache"] = kv_cache
    return {
        "apiVersion": API,
        "kind": "AIMService",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


@pytest.fixture
def recorder() -> FakeEventRecorder:
    return FakeEventRecorder("aimkvcache-controller")


async def reconcile_cache(
    fake: FakeClient, recorder: FakeEventRecorder, name: str = "cache"
) -> Any:
    return await KVCacheReconciler(fake, recorder).reconcile(Request(NS, name))


async def reconcile_service(
    fake: FakeClient, recorder: FakeEventRecorder, name: str = "chat"
) -> Any:
    return await ServiceReconciler(fake, recorder).reconcile(Request(NS, name))


def owned_by(child: Mapping[str, Any] | None, owner: Mapping[str, Any] | None) -> bool:
    assert owner is not None
    ref = controller_of(child) if child is not None else None
    return (
        ref is not None and ref["uid"] == owner["metadata"]["uid"] and ref["kind"] == owner["kind"]
    )


def status_of(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    assert obj is not None
    return dict(obj.get("status") or {})


def simulate_running_pod(fake: FakeClient, cache: str = "cache") -> None:
    """What the StatefulSet controller, the provisioner and the kubelet would do."""
    labels = {"app.kubernetes.io/managed-by": "aimkvcache-controller"}
    fake.seed(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"redis-data-{cache}-statefulset-0", "namespace": NS},
            "spec": {"storageClassName": "standard", "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{cache}-statefulset-0", "namespace": NS, "labels": labels},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        },
    )


async def simulate_ready_statefulset(fake: FakeClient, cache: str = "cache") -> None:
    await fake.with_field_manager("kube-controller-manager").patch(
        STATEFULSET,
        f"{cache}-statefulset",
        NS,
        {"status": {"replicas": 1, "readyReplicas": 1}},
        subresource="status",
    )


# -- AIMKVCache -----------------------------------------------------------------------------------


async def test_kvcache_first_reconcile_creates_its_children_owned_by_the_cache(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(kvcache(), DEFAULT_CLASS)

    await reconcile_cache(fake, recorder)

    cache = await fake.get(AIMKVCACHE, "cache", NS)
    assert cache is not None and has_finalizer(cache, FINALIZER)
    for gvk, name in (
        (STATEFULSET, "cache-statefulset"),
        (SERVICE, "cache-svc"),
        (NETWORKPOLICY, "cache-netpol"),
    ):
        child = await fake.get(gvk, name, NS)
        assert owned_by(child, cache), f"{gvk.kind} {name}"
        assert child is not None
        assert child["metadata"]["labels"]["app.kubernetes.io/instance"] == "cache"
    status = status_of(cache)
    assert status["status"] in ("Pending", "Progressing")
    assert status["observedGeneration"] == cache["metadata"]["generation"]
    ready = find_condition(status["conditions"], "Ready")
    assert ready is not None and ready["status"] == "False"


async def test_kvcache_in_sync_reconcile_makes_no_write_and_records_no_event(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(kvcache(), DEFAULT_CLASS)
    await reconcile_cache(fake, recorder)
    fake.actions.clear()
    events = len(recorder.events)

    await reconcile_cache(fake, recorder)

    assert fake.actions == []
    assert len(recorder.events) == events


async def test_kvcache_reports_ready_with_its_endpoint_once_the_pod_is(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(kvcache(), DEFAULT_CLASS)
    await reconcile_cache(fake, recorder)
    simulate_running_pod(fake)
    await simulate_ready_statefulset(fake)

    await reconcile_cache(fake, recorder)

    status = status_of(await fake.get(AIMKVCACHE, "cache", NS))
    assert status["status"] == "Ready"
    assert status["endpoint"] == "redis://cache-svc:6379"
    assert status["readyReplicas"] == 1
    ready = find_condition(status["conditions"], "Ready")
    assert ready is not None and ready["status"] == "True"
    storage = find_condition(status["conditions"], "StorageReady")
    assert storage is not None and storage["status"] == "True"
    assert [e.type for e in recorder.events if e.reason == "KVCacheReady"] == ["Normal"]

    fake.actions.clear()
    await reconcile_cache(fake, recorder)
    assert fake.actions == []


async def test_kvcache_transport_error_on_a_write_is_raised_for_a_retry_not_reported_as_failed(
    recorder: FakeEventRecorder,
) -> None:
    failing = {"Service"}

    async def drop_service_writes(client: FakeClient, obj: Mapping[str, Any], **kw: Any) -> Any:
        if obj["kind"] in failing:
            raise TransportError("connection reset by peer")
        return await client.apply(obj, **kw)

    fake = world(kvcache(), DEFAULT_CLASS, interceptors=Interceptors(apply=drop_service_writes))

    with pytest.raises(TransportError):
        await reconcile_cache(fake, recorder)

    status = status_of(await fake.get(AIMKVCACHE, "cache", NS))
    assert status.get("status") != "Failed"
    assert "lastError" not in status
    assert not [e for e in recorder.events if e.type == "Warning"]
    assert await fake.get(SERVICE, "cache-svc", NS) is None

    # The retry, with the connection back, converges.
    failing.clear()
    await reconcile_cache(fake, recorder)
    assert owned_by(
        await fake.get(SERVICE, "cache-svc", NS), await fake.get(AIMKVCACHE, "cache", NS)
    )


async def test_kvcache_does_not_take_over_a_child_name_another_owner_controls(
    recorder: FakeEventRecorder,
) -> None:
    other: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "cache-svc",
            "namespace": NS,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "someone-else",
                    "uid": "0000-other",
                    "controller": True,
                }
            ],
        },
        "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
    }
    fake = world(kvcache(), DEFAULT_CLASS, other)

    await reconcile_cache(fake, recorder)

    svc = await fake.get(SERVICE, "cache-svc", NS)
    assert svc is not None
    assert controller_of(svc) == other["metadata"]["ownerReferences"][0]
    assert svc["spec"] == other["spec"]
    status = status_of(await fake.get(AIMKVCACHE, "cache", NS))
    assert status["status"] == "Failed"
    assert "cache-svc" in status["lastError"]


async def test_kvcache_deletion_waits_for_its_last_user(recorder: FakeEventRecorder) -> None:
    fake = world(kvcache(), DEFAULT_CLASS, aimservice(kv_cache={"name": "cache"}))
    await reconcile_cache(fake, recorder)

    await fake.delete(AIMKVCACHE, "cache", NS)
    await reconcile_cache(fake, recorder)

    held = await fake.get(AIMKVCACHE, "cache", NS)
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert "DeletionBlocked" in recorder.reasons

    await fake.delete(AIMSERVICE, "chat", NS)
    await reconcile_cache(fake, recorder)

    assert await fake.get(AIMKVCACHE, "cache", NS) is None


# -- AIMService -----------------------------------------------------------------------------------


async def test_service_without_a_cache_creates_its_deployment_and_service(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(aimservice())

    await reconcile_service(fake, recorder)

    svc = await fake.get(AIMSERVICE, "chat", NS)
    assert svc is not None
    deploy = await fake.get(DEPLOYMENT, "chat", NS)
    assert owned_by(deploy, svc)
    assert deploy is not None
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "ghcr.io/silogen/aim-llama:0.7.0"
    assert owned_by(await fake.get(SERVICE, "chat", NS), svc)
    status = status_of(svc)
    kv = find_condition(status["conditions"], "KVCacheReady")
    assert kv is not None and kv["reason"] == "KVCacheNotRequested"

    fake.actions.clear()
    await reconcile_service(fake, recorder)
    assert fake.actions == []


async def test_service_is_running_when_its_deployment_is_available(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(aimservice())
    await reconcile_service(fake, recorder)
    await fake.with_field_manager("kube-controller-manager").patch(
        DEPLOYMENT, "chat", NS, {"status": {"readyReplicas": 1}}, subresource="status"
    )

    await reconcile_service(fake, recorder)

    status = status_of(await fake.get(AIMSERVICE, "chat", NS))
    assert status["status"] == "Running"
    ready = find_condition(status["conditions"], "Ready")
    assert ready is not None and ready["status"] == "True"


async def test_service_with_its_own_cache_creates_it_and_starts_once_it_is_ready(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(aimservice(kv_cache={"type": "redis"}))

    await reconcile_service(fake, recorder)

    svc = await fake.get(AIMSERVICE, "chat", NS)
    assert svc is not None
    cache = await fake.get(AIMKVCACHE, "kvcache-chat", NS)
    assert owned_by(cache, svc)
    assert await fake.get(DEPLOYMENT, "chat", NS) is None  # waits for the cache
    kv = find_condition(status_of(svc)["conditions"], "KVCacheReady")
    assert kv is not None and kv["status"] == "False"

    # The cache controller reports the cache Ready.
    await fake.with_field_manager("aimkvcache-controller").apply_status(
        {
            "apiVersion": API,
            "kind": "AIMKVCache",
            "metadata": {"name": "kvcache-chat", "namespace": NS},
            "status": {"status": "Ready", "endpoint": "redis://kvcache-chat-svc:6379"},
        }
    )
    # ... and has created its auth Secret: the first rollout waits for it (one model load).
    cache_obj = await fake.get(AIMKVCACHE, "kvcache-chat", NS)
    assert cache_obj is not None
    await fake.create(
        kvcache_desired.auth_secret(
            AIMKVCache.model_validate(cache_obj), cache_obj, kvcache_desired.new_password()
        )
    )
    await reconcile_service(fake, recorder)

    config = await fake.get(CONFIGMAP, "chat-lmcache", NS)
    assert owned_by(config, svc)
    assert config is not None
    assert "redis://kvcache-chat-svc:6379" in str(config["data"])
    deploy = await fake.get(DEPLOYMENT, "chat", NS)
    assert owned_by(deploy, svc)
    assert deploy is not None
    volumes = deploy["spec"]["template"]["spec"].get("volumes") or []
    assert any((v.get("configMap") or {}).get("name") == "chat-lmcache" for v in volumes)
    kv = find_condition(
        status_of(await fake.get(AIMSERVICE, "chat", NS))["conditions"], "KVCacheReady"
    )
    assert kv is not None and kv["status"] == "True"
    assert "KVCacheReady" in recorder.reasons


async def test_service_naming_a_missing_cache_waits_and_says_so(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(aimservice(kv_cache={"name": "shared"}))

    await reconcile_service(fake, recorder)

    assert await fake.get(AIMKVCACHE, "shared", NS) is None  # not the service's to create
    assert await fake.get(DEPLOYMENT, "chat", NS) is None
    status = status_of(await fake.get(AIMSERVICE, "chat", NS))
    kv = find_condition(status["conditions"], "KVCacheReady")
    assert kv is not None and kv["status"] == "False" and kv["reason"] == "KVCacheNotFound"
    assert [e.type for e in recorder.events if e.reason == "KVCacheNotFound"] == ["Warning"]


async def test_kvcache_server_error_that_outlives_retries_keeps_a_serving_cache_ready(
    recorder: FakeEventRecorder,
) -> None:
    failing = {"NetworkPolicy"}

    async def unavailable(client: FakeClient, obj: Mapping[str, Any], **kw: Any) -> Any:
        if obj["kind"] in failing:
            raise ServerError(503, "ServiceUnavailable", "etcdserver: request timed out")
        return await client.apply(obj, **kw)

    fake = world(kvcache(), DEFAULT_CLASS, interceptors=Interceptors(apply=unavailable))
    failing.clear()
    await reconcile_cache(fake, recorder)
    simulate_running_pod(fake)
    await simulate_ready_statefulset(fake)
    await reconcile_cache(fake, recorder)
    assert status_of(await fake.get(AIMKVCACHE, "cache", NS))["status"] == "Ready"

    # The desired NetworkPolicy changes (a user appears) while the server is failing.
    failing.add("NetworkPolicy")
    fake.seed(aimservice("chat", kv_cache={"name": "cache"}))
    with pytest.raises(ServerError):
        await reconcile_cache(fake, recorder)
    status = status_of(await fake.get(AIMKVCACHE, "cache", NS))
    assert status["status"] == "Ready", status  # Redis still serves: consumers stay wired
    assert "lastError" not in status
    progressing = find_condition(status["conditions"], "Progressing")
    assert progressing is not None and progressing["status"] == "True"
    assert progressing["reason"] == "ApplyRetrying"
    assert "etcdserver" in progressing["message"]


async def test_service_server_error_is_degraded_or_starting_never_failed(
    recorder: FakeEventRecorder,
) -> None:
    async def unavailable(client: FakeClient, obj: Mapping[str, Any], **kw: Any) -> Any:
        if obj["kind"] == "Deployment":
            raise ServerError(500, "InternalError", "etcd leader changed")
        return await client.apply(obj, **kw)

    fake = world(aimservice("chat"), interceptors=Interceptors(apply=unavailable))
    with pytest.raises(ServerError):
        await reconcile_service(fake, recorder, "chat")
    status = status_of(await fake.get(AIMSERVICE, "chat", NS))
    assert status["status"] in ("Starting", "Pending"), status
    ready = find_condition(status["conditions"], "Ready")
    assert ready is not None and ready["reason"] == "ApplyRetrying"


async def test_kvcache_password_secret_whose_create_answer_is_lost_is_kept_not_replaced(
    recorder: FakeEventRecorder,
) -> None:
    """The POST of the password lands but its answer is lost (a reset mid-request), and the
    informer has not seen the Secret when the retry comes: the retry's create meets
    AlreadyExists, reads the Secret live, finds it ours and uses that password (Redis and the
    services must agree on one); a POST is never retried blindly."""
    lost = {"answer": True}
    hidden = {"secret": True}

    async def create(client: FakeClient, obj: Mapping[str, Any], **kw: Any) -> Any:
        created = await client.create(obj, **kw)
        if obj["kind"] == "Secret" and lost.pop("answer", False):
            raise TransportError("connection reset by peer")
        return created

    async def get(client: FakeClient, gvk: Any, name: str, namespace: str = "") -> Any:
        if gvk == SECRET and hidden.pop("secret", False):
            return None  # the informer lags behind the write
        return await client.get(gvk, name, namespace)

    fake = world(kvcache(), DEFAULT_CLASS, interceptors=Interceptors(create=create, get=get))
    with pytest.raises(TransportError):
        await reconcile_cache(fake, recorder)
    first = await fake.get(SECRET, "cache-auth", NS)
    assert first is not None and await fake.get(STATEFULSET, "cache-statefulset", NS) is None

    hidden["secret"] = True
    await reconcile_cache(fake, recorder)

    assert await fake.get(SECRET, "cache-auth", NS) == first  # not replaced
    sts = await fake.get(STATEFULSET, "cache-statefulset", NS)
    assert sts is not None
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations[kvcache_desired.AUTH_HASH_ANNOTATION] == kvcache_desired.password_hash(first)
