"""The guide's troubleshooting causes, each diagnosed as a condition with a specific reason, a
message that says what to do, and a Warning Event, visible in ``kubectl describe``; and each
healing once the cluster is fixed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from aimctl.reconcilers.kvcache import _diagnosis

from .operator_kit import Operator, storage_class


def cache(name: str, **storage: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "aim.silogen.ai/v1alpha1",
            "kind": "AIMKVCache",
            "metadata": {"name": name},
            "spec": {"kvCacheType": "redis", "storage": storage},
        }
    )


async def condition(op: Operator, name: str, type_: str) -> dict[str, Any]:
    obj = await op.get("aimkvcache", name)
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == type_), {})


async def wait_reason(op: Operator, name: str, type_: str, reason: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        c = await condition(op, name, type_)
        return c if c.get("reason") == reason else None

    result: dict[str, Any] = await op.wait(f"{name} {type_}={reason}", check)
    return result


async def test_storage_class_not_found_then_created(operator: Operator) -> None:
    op = operator
    await op.k(
        "apply",
        "-n",
        op.namespace,
        "-f",
        "-",
        input=cache("c1", size="5Gi", storageClassName=f"{op.namespace}-ssd"),
    )
    cond = await wait_reason(op, "c1", "StorageReady", "StorageClassNotFound")
    assert cond["status"] == "False"
    assert f"StorageClass {op.namespace}-ssd does not exist" in cond["message"]
    obj = await op.get("aimkvcache", "c1")
    assert obj is not None and obj["status"]["status"] == "Progressing"  # "Stuck in Progressing"
    describe = await op.k("describe", "aimkvcache", "c1", "-n", op.namespace)
    assert re.search(r"Warning\s+StorageClassNotFound", describe), describe
    # Fixing the cluster heals the cache without touching it (the StorageClass watch).
    storage_class(op.cp, f"{op.namespace}-ssd")
    await op.wait_status("aimkvcache", "c1", "Ready")


async def test_no_default_storage_class_then_one_is_marked_default(operator: Operator) -> None:
    op = operator
    annotation = "storageclass.kubernetes.io/is-default-class"
    await op.k("annotate", "storageclass", "kwok-volume", f"{annotation}=false", "--overwrite")
    try:
        await op.k("apply", "-n", op.namespace, "-f", "-", input=cache("c2"))
        cond = await wait_reason(op, "c2", "StorageReady", "NoDefaultStorageClass")
        assert "the cluster has no default StorageClass" in cond["message"]
        assert annotation in cond["message"]
    finally:
        await op.k("annotate", "storageclass", "kwok-volume", f"{annotation}=true", "--overwrite")
    # Kubernetes assigns the new default to class-less claims retroactively; the cache follows.
    await op.wait_status("aimkvcache", "c2", "Ready", within=90)


async def test_resource_quota_forbids_the_claim_then_is_raised(operator: Operator) -> None:
    op = operator
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "storage"},
        "spec": {"hard": {"requests.storage": "5Gi"}},
    }
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(quota))
    await op.wait("quota status", lambda: True)
    await op.k("apply", "-n", op.namespace, "-f", "-", input=cache("c3", size="10Gi"))
    cond = await wait_reason(op, "c3", "StorageReady", "QuotaExceeded")
    assert "ResourceQuota storage limits requests.storage to 5Gi" in cond["message"]
    assert "needs 10Gi more" in cond["message"]
    quota["spec"] = {"hard": {"requests.storage": "50Gi"}}
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(quota))
    await op.wait_status("aimkvcache", "c3", "Ready", within=120)


async def test_claim_stuck_pending(operator: Operator, monkeypatch: pytest.MonkeyPatch) -> None:
    op = operator
    monkeypatch.setattr(_diagnosis, "PVC_PENDING_GRACE", 3.0)
    storage_class(op.cp, f"{op.namespace}-nobody", provisioner="example.com/nobody-serves-this")
    await op.k(
        "apply",
        "-n",
        op.namespace,
        "-f",
        "-",
        input=cache("c4", storageClassName=f"{op.namespace}-nobody"),
    )
    await wait_reason(op, "c4", "StorageReady", "Provisioning")
    cond = await wait_reason(op, "c4", "StorageReady", "ClaimPending")
    assert "has been Pending for" in cond["message"]
    assert f"kubectl describe pvc -n {op.namespace} redis-data-c4-statefulset-0" in cond["message"]


async def break_pod(
    op: Operator, pod: str, waiting: dict[str, Any], last: dict[str, Any] | None = None
) -> None:
    """Make the (kwok) pod look like a real failing one; kwok leaves Running pods alone."""
    status = {
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "PodScheduled", "status": "True"},
            ],
            "containerStatuses": [
                {
                    "name": "redis",
                    "image": "redis:7.2.4",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 5 if last else 0,
                    "state": {"waiting": waiting},
                    **({"lastState": {"terminated": last}} if last else {}),
                }
            ],
        }
    }
    await op.k(
        "patch",
        "pod",
        pod,
        "-n",
        op.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


async def test_image_pull_failure_fails_the_cache_and_its_service(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No grace: the pull has failed for longer than it (the grace has its own unit tests).
    monkeypatch.setattr(_diagnosis, "IMAGE_PULL_GRACE", 0.0)
    op = operator
    await op.apply_sample("quick-start.yaml")
    await op.wait_status("aimkvcache", "kvcache-llama-chat", "Ready")
    await op.wait_status("aimservice", "llama-chat", "Running")
    await break_pod(
        op,
        "kvcache-llama-chat-statefulset-0",
        {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "redis:7.2.4"'},
    )
    failed = await op.wait_status("aimkvcache", "kvcache-llama-chat", "Failed")
    ready = next(c for c in failed["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ImagePullFailed"
    assert "cannot pull image redis:7.2.4" in failed["status"]["lastError"]
    describe = await op.k("describe", "aimkvcache", "kvcache-llama-chat", "-n", op.namespace)
    assert re.search(
        r"Last Error:\s+pod kvcache-llama-chat-statefulset-0 cannot pull image", describe
    )
    assert re.search(r"Warning\s+ImagePullFailed", describe)
    svc = await op.wait_status("aimservice", "llama-chat", "Failed")
    kv = next(c for c in svc["status"]["conditions"] if c["type"] == "KVCacheReady")
    assert (kv["status"], kv["reason"]) == ("False", "KVCacheFailed")


async def test_crash_loop_fails_the_cache_and_recovery_clears_last_error(
    operator: Operator,
) -> None:
    op = operator
    await op.k("apply", "-n", op.namespace, "-f", "-", input=cache("c6"))
    await op.wait_status("aimkvcache", "c6", "Ready")
    await break_pod(
        op,
        "c6-statefulset-0",
        {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"},
        last={"exitCode": 1, "reason": "Error"},
    )
    failed = await op.wait_status("aimkvcache", "c6", "Failed")
    assert "keeps crashing (5 restarts, last exit code 1)" in failed["status"]["lastError"]
    assert "kubectl logs -n" in failed["status"]["lastError"]
    # The pod recovers: the cache is Ready again and lastError is cleared.
    healthy = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "PodScheduled", "status": "True"},
            ],
            "containerStatuses": [
                {
                    "name": "redis",
                    "image": "redis:7.2.4",
                    "imageID": "",
                    "ready": True,
                    "restartCount": 5,
                    "state": {"running": {}},
                }
            ],
        }
    }
    await op.k(
        "patch",
        "pod",
        "c6-statefulset-0",
        "-n",
        op.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(healthy),
    )
    ready = await op.wait_status("aimkvcache", "c6", "Ready")
    assert "lastError" not in ready["status"]
