"""An AIMService in a namespace enforcing the ``restricted`` Pod Security Standard, and pods the
API server refuses to create, surfaced on the AIMService (the full local cluster: the
ReplicaSet controller creates the pods, Pod Security and ResourceQuota admission judge them)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from aimctl.envtest._full import PULL_FAILURE_MARKER
from aimctl.reconcilers.kvcache import _diagnosis as kv_diagnosis

from .operator_kit import Operator

ENFORCE = "pod-security.kubernetes.io/enforce"


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "Ready"), {})


def model_only(name: str, **spec: Any) -> str:
    """An AIMService without a cache: only its own Deployment is judged."""
    return json.dumps(
        {
            "apiVersion": "aim.silogen.ai/v1alpha1",
            "kind": "AIMService",
            "metadata": {"name": name},
            "spec": {
                "model": {"image": "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"},
                **spec,
            },
        }
    )


async def test_a_restricted_namespace_runs_a_service_and_its_cache(operator: Operator) -> None:
    op = operator
    await op.k(
        "label", "namespace", op.namespace, f"{ENFORCE}=restricted", f"{ENFORCE}-version=latest"
    )
    await op.apply_sample("quick-start.yaml")
    await op.wait_status("aimkvcache", "kvcache-llama-chat", "Ready", within=120)
    running = await op.wait_status("aimservice", "llama-chat", "Running", within=120)
    assert ready_condition(running)["reason"] == "Running"
    # The pods were admitted (kwok runs them): one inference pod, one Redis pod.
    pods = json.loads(await op.k("get", "pods", "-n", op.namespace, "-o", "json"))["items"]
    owners = sorted(p["metadata"]["ownerReferences"][0]["kind"] for p in pods)
    assert owners == ["ReplicaSet", "StatefulSet"], owners
    for p in pods:
        assert p["spec"].get("automountServiceAccountToken") is False, p["metadata"]["name"]
        mounts = [m for c in p["spec"]["containers"] for m in c.get("volumeMounts") or []]
        assert not any("serviceaccount" in m["mountPath"] for m in mounts), mounts


async def wait_ready_reason(op: Operator, name: str, reason: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await op.get("aimservice", name)
        return obj if obj and ready_condition(obj).get("reason") == reason else None

    found: dict[str, Any] = await op.wait(f"{name} Ready={reason}", check, within=90)
    return found


async def test_pods_refused_by_a_resource_quota_are_failed_create_then_heal(
    operator: Operator,
) -> None:
    op = operator
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}},
    }
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(quota))
    await op.k("apply", "-n", op.namespace, "-f", "-", input=model_only("refused"))
    svc = await wait_ready_reason(op, "refused", "FailedCreate")
    ready = ready_condition(svc)
    assert svc["status"]["status"] == "Failed"
    # The API server's own words, then what to do.
    assert "exceeded quota: no-pods" in ready["message"], ready["message"]
    assert "Deployment refused cannot create its pods" in ready["message"]
    assert "raise it" in ready["message"]
    describe = await op.k("describe", "aimservice", "refused", "-n", op.namespace)
    assert re.search(r"Warning\s+FailedCreate", describe), describe
    # Raising the quota heals it; the ReplicaSet controller retries with backoff.
    quota["spec"] = {"hard": {"pods": "10"}}
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(quota))
    await op.wait_status("aimservice", "refused", "Running", within=180)


async def test_an_unknown_priority_class_is_failed_create(operator: Operator) -> None:
    op = operator
    await op.k(
        "apply",
        "-n",
        op.namespace,
        "-f",
        "-",
        input=model_only("urgent", priorityClassName=f"{op.namespace}-missing"),
    )
    svc = await wait_ready_reason(op, "urgent", "FailedCreate")
    message = ready_condition(svc)["message"]
    assert f"no PriorityClass with name {op.namespace}-missing was found" in message, message
    deploy = await op.get("deployment", "urgent")
    assert deploy is not None
    assert deploy["spec"]["template"]["spec"]["priorityClassName"] == f"{op.namespace}-missing"


# A pod's pull error changes no Deployment field: the service controller watches its pods
# (`.watches(POD, service_of_pod)` in reconcilers/_setup.py).
async def test_a_model_image_that_cannot_be_pulled_is_retrying_then_failed_then_fixed(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = operator
    monkeypatch.setattr(kv_diagnosis, "IMAGE_PULL_GRACE", 4.0)
    bad = f"ghcr.io/silogen/{PULL_FAILURE_MARKER}:0.7.0"
    svc = json.loads(model_only("pull"))
    svc["spec"]["model"]["image"] = bad
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(svc))
    failed = await wait_ready_reason(op, "pull", "ImagePullFailed")
    assert failed["status"]["status"] == "Failed"
    assert bad in ready_condition(failed)["message"]
    assert "spec.model.image" in ready_condition(failed)["message"]
    describe = await op.k("describe", "aimservice", "pull", "-n", op.namespace)
    assert re.search(r"Warning\s+ImagePullFailed", describe), describe
    svc["spec"]["model"]["image"] = "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(svc))
    await op.wait_status("aimservice", "pull", "Running", within=120)
