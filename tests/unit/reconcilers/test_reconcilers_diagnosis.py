"""Diagnosis: each troubleshooting cause maps to a reason and an actionable message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aimctl.reconcilers.kvcache._diagnosis import (
    DEFAULT_CLASS_ANNOTATION,
    diagnose_pod,
    diagnose_storage,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
DEFAULT = {"metadata": {"name": "standard", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}}}
SSD = {"metadata": {"name": "fast-ssd"}, "allowVolumeExpansion": True}


def ts(delta: float) -> str:
    return (NOW - timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def storage(**kw: Any) -> Any:
    args: dict[str, Any] = {
        "namespace": "ml-team",
        "pvc_name": "redis-data-c-statefulset-0",
        "size": "10Gi",
        "class_name": None,
        "pvc": None,
        "statefulset_exists": True,
        "classes": [DEFAULT, SSD],
        "quotas": [],
        "now": NOW,
    }
    args.update(kw)
    return diagnose_storage(**args)


def pvc(
    phase: str,
    *,
    age: float = 0,
    capacity: str | None = None,
    request: str = "10Gi",
    klass: str = "standard",
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if capacity:
        status["capacity"] = {"storage": capacity}
    return {
        "metadata": {"name": "redis-data-c-statefulset-0", "creationTimestamp": ts(age)},
        "spec": {"storageClassName": klass, "resources": {"requests": {"storage": request}}},
        "status": status,
    }


def test_bound_is_ok() -> None:
    f = storage(pvc=pvc("Bound", capacity="10Gi"))
    assert (f.ok, f.reason) == (True, "Bound")


def test_named_class_missing() -> None:
    f = storage(class_name="premium-ssd")
    assert (f.ok, f.reason) == (False, "StorageClassNotFound")
    assert "StorageClass premium-ssd does not exist" in f.message


def test_no_default_class() -> None:
    f = storage(classes=[SSD])
    assert f.reason == "NoDefaultStorageClass"
    assert DEFAULT_CLASS_ANNOTATION in f.message


def test_quota_on_total_storage_and_on_class_storage() -> None:
    quota = {
        "metadata": {"name": "q", "namespace": "ml-team"},
        "status": {"hard": {"requests.storage": "15Gi"}, "used": {"requests.storage": "10Gi"}},
    }
    f = storage(quotas=[quota])
    assert f.reason == "QuotaExceeded"
    assert (
        "ResourceQuota q limits requests.storage to 15Gi and 10Gi is used; "
        "this cache needs 10Gi more" in f.message
    )
    per_class = {
        "metadata": {"name": "q2", "namespace": "ml-team"},
        "status": {
            "hard": {"fast-ssd.storageclass.storage.k8s.io/persistentvolumeclaims": "0"},
            "used": {},
        },
    }
    assert storage(class_name="fast-ssd", quotas=[per_class]).reason == "QuotaExceeded"
    roomy = {
        "metadata": {"name": "q3"},
        "status": {"hard": {"requests.storage": "1Ti"}, "used": {"requests.storage": "10Gi"}},
    }
    assert storage(quotas=[roomy]).reason == "CreatingClaim"


def test_pending_claim_is_provisioning_then_stuck() -> None:
    young = storage(pvc=pvc("Pending", age=10))
    assert (
        young.reason == "Provisioning"
        and young.recheck_after is not None
        and 50 <= young.recheck_after <= 52
    )
    stuck = storage(pvc=pvc("Pending", age=135))
    assert stuck.reason == "ClaimPending"
    assert "has been Pending for 2m15s" in stuck.message


def test_lost_claim_is_reported_but_does_not_fail_the_cache() -> None:
    # Binders flash Lost while they catch up (kwok's volume stages do); a Lost claim needs a
    # human, but it is not a spec problem, so the cache stays Progressing with the instructions.
    f = storage(pvc=pvc("Lost"))
    assert (f.ok, f.reason, f.failed) == (False, "ClaimLost", False)
    assert "kubectl delete pvc" in f.message


def test_expansion_in_progress_or_not_supported() -> None:
    resizing = storage(
        size="20Gi", pvc=pvc("Bound", capacity="10Gi", request="20Gi", klass="fast-ssd")
    )
    assert resizing.reason == "Resizing"
    fixed = storage(size="20Gi", pvc=pvc("Bound", capacity="10Gi", klass="standard"))
    assert fixed.reason == "ExpansionNotSupported"
    assert "does not allow volume expansion" in fixed.message


def pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "c-statefulset-0", "namespace": "ml-team"}, "status": status}


def test_image_pull_and_crash_loop_fail() -> None:
    f = diagnose_pod(
        pod(
            containerStatuses=[
                {
                    "name": "redis",
                    "image": "redis:9",
                    "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}},
                }
            ]
        ),
        "c-statefulset-0",
        NOW,
    )
    assert f is not None and (f.reason, f.failed) == ("ImagePullFailed", True)
    assert "cannot pull image redis:9: not found" in f.message
    f = diagnose_pod(
        pod(
            containerStatuses=[
                {
                    "name": "redis",
                    "restartCount": 7,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 137}},
                }
            ]
        ),
        "c-statefulset-0",
        NOW,
    )
    assert f is not None and f.reason == "CrashLoopBackOff"
    assert "7 restarts, last exit code 137" in f.message


def test_unschedulable_after_a_grace_period() -> None:
    cond = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes: Insufficient cpu",
    }
    early = diagnose_pod(pod(conditions=[{**cond, "lastTransitionTime": ts(5)}]), "p", NOW)
    assert early is not None and early.reason == "Scheduling"
    late = diagnose_pod(pod(conditions=[{**cond, "lastTransitionTime": ts(45)}]), "p", NOW)
    assert (
        late is not None and late.reason == "Unschedulable" and "Insufficient cpu" in late.message
    )


def test_healthy_pod_has_no_finding() -> None:
    assert (
        diagnose_pod(pod(containerStatuses=[{"name": "redis", "state": {"running": {}}}]), "p", NOW)
        is None
    )
    assert diagnose_pod(None, "p", NOW) is None
