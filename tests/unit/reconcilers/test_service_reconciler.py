"""The AIMService reconciler on the fake client: the cache's password gates the first rollout
and rolls the pods once on rotation; the workload diagnosis is the Ready reason."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from aimctl.client.testing import FakeClient, FakeEventRecorder
from aimctl.controller import Request
from aimctl.objects import find_condition
from aimctl.reconcilers import ServiceReconciler
from aimctl.reconcilers._common import (
    AIMKVCACHE,
    AIMSERVICE,
    DEPLOYMENT,
    SECRET,
    SERVICES_BY_CACHE,
)
from aimctl.reconcilers.kvcache._desired import AUTH_HASH_ANNOTATION, password_hash
from aimctl.reconcilers.service._names import cache_key

NS = "team"
API = "aim.silogen.ai/v1alpha1"


def service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AIMService",
        "metadata": {"name": "chat", "namespace": NS},
        "spec": {"model": {"image": "ghcr.io/silogen/aim-llama:0.7.0"}, **spec},
    }


def ready_cache() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AIMKVCache",
        "metadata": {"name": "shared", "namespace": NS},
        "spec": {"kvCacheType": "redis"},
        "status": {"status": "Ready", "endpoint": "redis://shared-svc:6379"},
    }


def secret(password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "shared-auth",
            "namespace": NS,
            "labels": {
                "app.kubernetes.io/instance": "shared",
                "app.kubernetes.io/managed-by": "aimkvcache-controller",
            },
        },
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }


@pytest.fixture
def recorder() -> FakeEventRecorder:
    return FakeEventRecorder("aimservice-controller")


def world(*objects: dict[str, Any]) -> FakeClient:
    fake = FakeClient(objects)
    fake.add_index(AIMSERVICE, SERVICES_BY_CACHE, cache_key)
    return fake


async def reconcile(fake: FakeClient, recorder: FakeEventRecorder) -> Any:
    return await ServiceReconciler(fake, recorder).reconcile(Request(NS, "chat"))


async def ready(fake: FakeClient) -> dict[str, Any]:
    svc = await fake.get(AIMSERVICE, "chat", NS)
    assert svc is not None
    cond = find_condition(svc["status"]["conditions"], "Ready")
    assert cond is not None
    return {**cond, "summary": svc["status"]["status"]}


def template_hash(deploy: dict[str, Any] | None) -> str | None:
    assert deploy is not None
    annotations = deploy["spec"]["template"]["metadata"].get("annotations") or {}
    value = annotations.get(AUTH_HASH_ANNOTATION)
    return value if isinstance(value, str) else None


async def test_the_first_rollout_waits_for_the_caches_secret(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(ready_cache(), service(kvCache={"name": "shared"}))
    await reconcile(fake, recorder)
    assert await fake.get(DEPLOYMENT, "chat", NS) is None
    cond = await ready(fake)
    assert (cond["summary"], cond["reason"]) == ("Pending", "WaitingForKVCacheSecret")
    assert "Secret shared-auth" in cond["message"]

    fake.seed(secret("p1"))
    await reconcile(fake, recorder)
    deploy = await fake.get(DEPLOYMENT, "chat", NS)
    assert template_hash(deploy) == password_hash(secret("p1"))


async def test_rotation_keeps_the_live_hash_while_the_secret_is_gone_then_rolls_once(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(ready_cache(), service(kvCache={"name": "shared"}), secret("p1"))
    await reconcile(fake, recorder)
    first = await fake.get(DEPLOYMENT, "chat", NS)
    await fake.delete(SECRET, "shared-auth", NS)
    fake.actions.clear()
    await reconcile(fake, recorder)
    assert not [a for a in fake.actions if a.gvk == DEPLOYMENT]  # no roll without a password
    assert template_hash(await fake.get(DEPLOYMENT, "chat", NS)) == template_hash(first)

    fake.seed(secret("p2"))
    await reconcile(fake, recorder)
    assert template_hash(await fake.get(DEPLOYMENT, "chat", NS)) == password_hash(secret("p2"))


def with_status(deploy: dict[str, Any] | None, **status: Any) -> dict[str, Any]:
    assert deploy is not None
    out = copy.deepcopy(dict(deploy))
    out["status"] = status
    return out


REFUSED = {
    "type": "ReplicaFailure",
    "status": "True",
    "reason": "FailedCreate",
    "message": 'pods "chat-5d8f" is forbidden: exceeded quota: no-pods, requested: pods=1, '
    "used: pods=0, limited: pods=0",
}


async def test_pods_the_api_refuses_fail_the_service_with_the_apis_message(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(service())
    await reconcile(fake, recorder)
    fake.seed(with_status(await fake.get(DEPLOYMENT, "chat", NS), conditions=[REFUSED]))
    await reconcile(fake, recorder)
    cond = await ready(fake)
    assert (cond["summary"], cond["reason"]) == ("Failed", "FailedCreate")
    assert "exceeded quota: no-pods" in cond["message"]
    assert recorder.reasons.count("FailedCreate") == 1
    await reconcile(fake, recorder)  # unchanged: no second Event
    assert recorder.reasons.count("FailedCreate") == 1


async def test_some_pods_serving_while_others_are_refused_is_degraded(
    recorder: FakeEventRecorder,
) -> None:
    fake = world(service(replicas=2))
    await reconcile(fake, recorder)
    deploy = with_status(
        await fake.get(DEPLOYMENT, "chat", NS),
        replicas=1,
        readyReplicas=1,
        conditions=[REFUSED],
    )
    fake.seed(deploy)
    await reconcile(fake, recorder)
    cond = await ready(fake)
    assert (cond["summary"], cond["reason"]) == ("Degraded", "FailedCreate")


async def test_a_service_without_a_cache_reads_no_secret(recorder: FakeEventRecorder) -> None:
    fake = world(service(), secret("p1"))
    await reconcile(fake, recorder)
    deploy = await fake.get(DEPLOYMENT, "chat", NS)
    assert deploy is not None
    assert template_hash(deploy) is None
    assert await fake.get(AIMKVCACHE, "kvcache-chat", NS) is None
