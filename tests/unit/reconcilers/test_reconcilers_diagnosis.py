"""Diagnosis: each troubleshooting cause maps to a reason and an actionable message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aimctl.reconcilers.kvcache._diagnosis import (
    CREATE_CONTAINER_GRACE,
    DEFAULT_CLASS_ANNOTATION,
    IMAGE_PULL_GRACE,
    PVC_PENDING_GRACE,
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
    # No elapsed time in the message: it would be rewritten every reconcile, then be stale.
    assert stuck.message == (
        "PVC redis-data-c-statefulset-0 has been Pending for more than 1m; its events say why: "
        "kubectl describe pvc -n ml-team redis-data-c-statefulset-0"
    )
    assert storage(pvc=pvc("Pending", age=400)).message == stuck.message


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
            startTime=ts(3600),
            containerStatuses=[
                {
                    "name": "redis",
                    "image": "redis:9",
                    "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}},
                }
            ],
        ),
        "c-statefulset-0",
        NOW,
    )
    assert f is not None and (f.reason, f.failed) == ("ImagePullFailed", True)
    assert "cannot pull image redis:9 (failing for more than 5m)" in f.message
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


# -- issue 15: diagnosis that names the real cause and says what to do -------------------------

LATER = NOW + timedelta(seconds=7)  # another reconcile, nothing observed changed
WFFC = {"metadata": {"name": "local"}, "volumeBindingMode": "WaitForFirstConsumer"}
UNTOLERATED = (
    "0/3 nodes are available: 3 node(s) had untolerated taint {amd.com/gpu: present}. "
    "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
)


def same_at_both_times(f: Any, g: Any) -> None:
    """Messages are functions of the objects, not of the clock (else every reconcile writes)."""
    assert f is not None and g is not None
    assert (f.reason, f.message, f.failed) == (g.reason, g.message, g.failed)


def cache_pod(
    *statuses: dict[str, Any],
    since: float = 60,
    conditions: list[dict[str, Any]] | None = None,
    node: str | None = "n1",
    limits: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The cache's pod: its containers not ready since ``since`` seconds before NOW."""
    container: dict[str, Any] = {"name": "redis", "image": "docker.io/library/redis:7.2.12"}
    if limits is not None:
        container["resources"] = {"limits": limits}
    spec: dict[str, Any] = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {
            "name": "c-statefulset-0",
            "namespace": "ml-team",
            "creationTimestamp": ts(since + 1),
        },
        "spec": spec,
        "status": {
            "startTime": ts(since),
            "conditions": conditions
            if conditions is not None
            else [
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": ts(since)},
                {"type": "Ready", "status": "False", "lastTransitionTime": ts(since)},
            ],
            "containerStatuses": list(statuses),
        },
    }


def waiting(reason: str, message: str | None = None, **cs: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message is not None:
        state["message"] = message
    return {
        "name": "redis",
        "image": "docker.io/library/redis:7.2.12",
        "ready": False,
        "state": {"waiting": state},
        **cs,
    }


# 1. WaitForFirstConsumer: the pod's scheduling is the cause, not the claim.


def unschedulable_pod(after: float = 45) -> dict[str, Any]:
    return cache_pod(
        node=None,
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": UNTOLERATED,
                "lastTransitionTime": ts(after),
            }
        ],
    )


def test_wait_for_first_consumer_claim_defers_to_the_unschedulable_pod() -> None:
    claim = pvc("Pending", age=135, klass="local")
    p = unschedulable_pod()
    f = storage(class_name="local", classes=[DEFAULT, WFFC], pvc=claim, pod=p)
    assert (f.ok, f.reason, f.failed, f.defer_to_pod) == (
        False,
        "WaitingForFirstConsumer",
        False,
        True,
    )
    assert f.message == (
        "PVC redis-data-c-statefulset-0 is provisioned once the cache's pod is scheduled: "
        "StorageClass local binds volumes at WaitForFirstConsumer; the pod's condition says why "
        "it is not scheduled yet"
    )
    same_at_both_times(
        f,
        storage(
            class_name="local",
            classes=[DEFAULT, WFFC],
            pvc=claim,
            pod=p,
            now=LATER + timedelta(hours=1),
        ),
    )
    # No pod yet (StatefulSet being created): the same wait, not a storage failure.
    assert storage(class_name="local", classes=[DEFAULT, WFFC], pvc=claim).reason == (
        "WaitingForFirstConsumer"
    )
    # The default class may be the WaitForFirstConsumer one.
    default_wffc = {**WFFC, "metadata": DEFAULT["metadata"]}
    assert (
        storage(classes=[default_wffc], pvc=pvc("Pending", age=135), pod=p).reason
        == "WaitingForFirstConsumer"
    )

    pod_finding = diagnose_pod(p, "c-statefulset-0", NOW)
    assert pod_finding is not None
    assert (pod_finding.reason, pod_finding.failed) == ("Unschedulable", False)
    assert pod_finding.message == (
        f"pod c-statefulset-0 cannot be scheduled: {UNTOLERATED.rstrip('.')}. To fix: add "
        "spec.tolerations for the nodes' taints; details: kubectl describe pod -n ml-team "
        "c-statefulset-0"
    )
    same_at_both_times(pod_finding, diagnose_pod(p, "c-statefulset-0", LATER))


def test_wait_for_first_consumer_claim_of_a_scheduled_pod_is_given_time_from_scheduling() -> None:
    claim = pvc("Pending", age=600, klass="local")
    scheduled = cache_pod(
        conditions=[{"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(10)}]
    )
    f = storage(class_name="local", classes=[WFFC], pvc=claim, pod=scheduled)
    assert f.reason == "Provisioning" and f.recheck_after == PVC_PENDING_GRACE - 10 + 1
    late = cache_pod(
        conditions=[{"type": "PodScheduled", "status": "True", "lastTransitionTime": ts(100)}]
    )
    assert storage(class_name="local", classes=[WFFC], pvc=claim, pod=late).reason == (
        "ClaimPending"
    )


def test_unschedulable_advice_follows_the_scheduler_message() -> None:
    def advice(message: str) -> str:
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": ts(45),
        }
        f = diagnose_pod(cache_pod(node=None, conditions=[cond]), "p", NOW)
        assert f is not None and f.reason == "Unschedulable"
        return f.message.split("To fix: ")[1]

    assert advice("0/2 nodes are available: 2 Insufficient memory.").startswith(
        "lower spec.resources requests, or add nodes with room for them"
    )
    # As kube-scheduler v1.36 words it (seen on the full local cluster).
    assert advice(
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. no new "
        "claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not "
        "helpful for scheduling."
    ).startswith("check spec.nodeSelector and spec.affinity against the nodes' labels")
    assert "allowedTopologies" in advice(
        "0/2 nodes are available: 2 node(s) had volume node affinity conflict."
    )
    both = advice("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint.")
    assert "lower spec.resources requests" in both and "spec.tolerations" in both
    assert "spec.nodeSelector, spec.tolerations or spec.affinity" in advice("no nodes")


# 2. Image pulls: a grace period for transient errors, none for hopeless ones.

PULL_CHECK = (
    "check spec.image (the registry, name and tag exist), spec.imagePullSecrets (credentials "
    "for a private registry), and that the nodes can reach the registry; the registry's error: "
    "kubectl describe pod -n ml-team c-statefulset-0"
)


def test_transient_pull_errors_retry_within_the_grace_period() -> None:
    limited = waiting("ErrImagePull", "429 Too Many Requests")
    f = diagnose_pod(cache_pod(limited, since=60), "c-statefulset-0", NOW)
    assert f is not None
    assert (f.ok, f.reason, f.failed) == (False, "ImagePullRetrying", False)
    assert f.message == (
        "pod c-statefulset-0 cannot pull image docker.io/library/redis:7.2.12 yet; kubelet "
        "retries with backoff and it counts as failed after 5m. If it persists, " + PULL_CHECK
    )
    assert f.recheck_after == IMAGE_PULL_GRACE - 60 + 1
    # kubelet alternates ErrImagePull and ImagePullBackOff with new messages: same finding.
    backoff = waiting("ImagePullBackOff", 'Back-off pulling image "docker.io/library/redis"')
    same_at_both_times(f, diagnose_pod(cache_pod(backoff, since=60), "c-statefulset-0", LATER))


def test_pull_errors_fail_after_the_grace_period() -> None:
    f = diagnose_pod(
        cache_pod(waiting("ImagePullBackOff", "Back-off"), since=IMAGE_PULL_GRACE + 1),
        "c-statefulset-0",
        NOW,
    )
    assert f is not None
    assert (f.reason, f.failed, f.recheck_after) == ("ImagePullFailed", True, None)
    assert f.message == (
        "pod c-statefulset-0 cannot pull image docker.io/library/redis:7.2.12 (failing for more "
        "than 5m); " + PULL_CHECK
    )
    same_at_both_times(
        f,
        diagnose_pod(
            cache_pod(waiting("ErrImagePull", "not found"), since=IMAGE_PULL_GRACE + 1),
            "c-statefulset-0",
            LATER,
        ),
    )


def test_the_grace_period_counts_from_when_the_containers_stopped_being_ready() -> None:
    # A pod started an hour ago whose container restarted a minute ago (pull policy Always,
    # the tag vanished): still within grace.
    p = cache_pod(waiting("ErrImagePull"), since=60)
    p["status"]["startTime"] = ts(3600)
    f = diagnose_pod(p, "c-statefulset-0", NOW)
    assert f is not None and f.reason == "ImagePullRetrying"
    # No conditions at all (a fake kubelet): from startTime.
    p = cache_pod(waiting("ErrImagePull"), since=3600, conditions=[])
    f = diagnose_pod(p, "c-statefulset-0", NOW)
    assert f is not None and f.reason == "ImagePullFailed"


def test_hopeless_pull_errors_fail_at_once() -> None:
    invalid = waiting(
        "InvalidImageName",
        'Failed to apply default image tag "Redis:7": couldn\'t parse image name "Redis:7": '
        "invalid reference format: repository name must be lowercase",
        image="Redis:7",
    )
    f = diagnose_pod(cache_pod(invalid, since=1), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("ImagePullFailed", True)
    assert f.message == (
        'pod c-statefulset-0 cannot use image Redis:7: Failed to apply default image tag "Redis:7"'
        ': couldn\'t parse image name "Redis:7": invalid reference format: repository name must '
        "be lowercase. fix spec.image (registry/name:tag, lowercase)"
    )
    never = waiting(
        "ErrImageNeverPull",
        'Container image "docker.io/library/redis:7.2.12" is not present with pull policy of Never',
    )
    f = diagnose_pod(cache_pod(never, since=1), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("ImagePullFailed", True)
    assert f.message == (
        "pod c-statefulset-0 cannot use image docker.io/library/redis:7.2.12: Container image "
        '"docker.io/library/redis:7.2.12" is not present with pull policy of Never. set '
        "spec.imagePullPolicy to IfNotPresent, or load the image onto the nodes"
    )


# 3. OOMKilled names the memory limit and says what to do.

OOM = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}


def test_oom_killed_in_a_crash_loop_fails_with_the_memory_advice() -> None:
    crash = waiting("CrashLoopBackOff", "back-off 5m0s", restartCount=6, lastState=OOM)
    f = diagnose_pod(cache_pod(crash, limits={"memory": "1Gi"}), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("OOMKilled", True)
    assert f.message == (
        "container redis of pod c-statefulset-0 was killed for using more than its memory limit "
        "1Gi (OOMKilled); raise resources.limits.memory or lower maxmemory "
        "(spec.redis.maxMemory): Redis needs room above maxmemory for client buffers and for "
        "the copy-on-write of a snapshot"
    )
    assert "raise resources.limits.memory or lower maxmemory" in f.message
    # Another crash later (restartCount moves on): the same message.
    again = waiting("CrashLoopBackOff", "back-off 5m0s", restartCount=7, lastState=OOM)
    same_at_both_times(
        f, diagnose_pod(cache_pod(again, limits={"memory": "1Gi"}), "c-statefulset-0", LATER)
    )


def test_oom_killed_and_restarting_is_reported_but_not_failed() -> None:
    restarted = {
        "name": "redis",
        "ready": False,
        "restartCount": 1,
        "state": {"running": {"startedAt": ts(5)}},
        "lastState": OOM,
    }
    f = diagnose_pod(cache_pod(restarted), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("OOMKilled", False)
    assert "the node's memory (no memory limit)" in f.message
    assert "raise resources.limits.memory or lower maxmemory" in f.message
    # Ready again (evictions keep it within bounds now): nothing to report.
    assert diagnose_pod(cache_pod({**restarted, "ready": True}), "c-statefulset-0", NOW) is None


def test_crash_loop_says_why_the_container_stopped() -> None:
    start_error = {
        "terminated": {
            "reason": "StartError",
            "exitCode": 128,
            "message": 'exec: "redis-server": executable file not found in $PATH',
        }
    }
    crash = waiting("CrashLoopBackOff", restartCount=3, lastState=start_error)
    f = diagnose_pod(cache_pod(crash), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("CrashLoopBackOff", True)
    assert f.message == (
        "container redis of pod c-statefulset-0 keeps crashing (3 restarts, last exit code 128 "
        '(StartError: exec: "redis-server": executable file not found in $PATH)); see kubectl '
        "logs -n ml-team c-statefulset-0 -c redis --previous"
    )


# 7. Container creation errors.


def test_run_as_non_root_refusal_fails_at_once() -> None:
    refused = waiting(
        "CreateContainerConfigError",
        'container has runAsNonRoot and image will run as root (pod: "c-statefulset-0_ml-team'
        '(5e3c)", container: redis)',
    )
    f = diagnose_pod(cache_pod(refused, since=1), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("CreateContainerConfigError", True)
    assert f.message == (
        "container redis of pod c-statefulset-0 is not started: container has runAsNonRoot and "
        'image will run as root (pod: "c-statefulset-0_ml-team(5e3c)", container: redis). The '
        "pod must run as a non-root user (Pod Security restricted) and the image runs as root "
        "or names its user by name: use an image (spec.image) whose USER is a numeric non-root "
        "UID, or one built for non-root use"
    )


def test_missing_secret_gets_a_grace_period_then_fails() -> None:
    missing = waiting("CreateContainerConfigError", 'secret "c-auth" not found')
    young = diagnose_pod(cache_pod(missing, since=30), "c-statefulset-0", NOW)
    old = diagnose_pod(cache_pod(missing, since=CREATE_CONTAINER_GRACE), "c-statefulset-0", NOW)
    assert young is not None and old is not None
    assert (young.reason, young.failed) == ("CreateContainerConfigError", False)
    assert young.recheck_after == CREATE_CONTAINER_GRACE - 30 + 1
    assert (old.reason, old.failed) == ("CreateContainerConfigError", True)
    assert (
        young.message
        == old.message
        == (
            'container redis of pod c-statefulset-0 cannot be created: secret "c-auth" not found. '
            "a Secret or ConfigMap (or one of its keys) the container refers to is missing; create "
            "it, or fix the reference"
        )
    )


def test_create_container_error_is_reported_with_the_runtime_message() -> None:
    err = waiting("CreateContainerError", "context deadline exceeded")
    f = diagnose_pod(cache_pod(err, since=CREATE_CONTAINER_GRACE + 5), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("CreateContainerError", True)
    assert f.message == (
        "container redis of pod c-statefulset-0 cannot be created: context deadline exceeded. "
        "the container runtime refused it; check spec.image and kubectl describe pod -n ml-team "
        "c-statefulset-0"
    )
    f = diagnose_pod(cache_pod(err, since=5), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("CreateContainerError", False)


def test_a_failed_container_wins_over_a_retrying_one() -> None:
    exporter = {**waiting("ErrImagePull"), "name": "metrics"}
    crash = waiting("CrashLoopBackOff", restartCount=2, lastState=OOM)
    f = diagnose_pod(cache_pod(exporter, crash, since=10), "c-statefulset-0", NOW)
    assert f is not None and (f.reason, f.failed) == ("OOMKilled", True)


# 4. Growth with no StorageClass to allow it: say so, never "Resizing" forever.


def bound(capacity: str, request: str, klass: str | None, **status: Any) -> dict[str, Any]:
    claim = pvc("Bound", capacity=capacity, request=request, klass=klass or "")
    if klass is None:
        del claim["spec"]["storageClassName"]
    claim["status"].update(status)
    return claim


def test_growth_of_a_static_volume_is_not_supported() -> None:
    for klass in ("", None):
        f = storage(size="2Gi", pvc=bound("1Gi", "1Gi", klass))
        assert (f.ok, f.reason, f.failed) == (False, "ExpansionNotSupported", False)
        assert f.message == (
            "storage.size is 2Gi but PVC redis-data-c-statefulset-0 has 1Gi and is bound to a "
            "PersistentVolume with no StorageClass (statically provisioned); Kubernetes expands "
            "only claims of a class that allows it, so the cache keeps working with 1Gi. Expand "
            "the volume and its PersistentVolume by hand, or create a new cache with the larger "
            "size"
        )
        assert "1Gi to 1Gi" not in f.message and f.recheck_after is None


def test_growth_when_the_class_was_deleted_is_not_supported() -> None:
    f = storage(size="2Gi", pvc=bound("1Gi", "1Gi", "gone"))
    assert f.reason == "ExpansionNotSupported"
    assert f.message == (
        "storage.size is 2Gi but PVC redis-data-c-statefulset-0 has 1Gi and its StorageClass "
        "gone no longer exists; Kubernetes expands only claims whose class exists and allows "
        "it, so the cache keeps working with 1Gi. Re-create StorageClass gone with "
        "allowVolumeExpansion: true, or create a new cache with the larger size"
    )


def test_resizing_only_while_a_resize_is_requested() -> None:
    # Requested (by the operator's patch): Resizing, naming the two different sizes.
    f = storage(size="20Gi", pvc=bound("10Gi", "20Gi", "fast-ssd"))
    assert (f.reason, f.message) == (
        "Resizing",
        "expanding PVC redis-data-c-statefulset-0 from 10Gi to 20Gi",
    )
    # Not requested yet, class allows it: the reconciler requests it now; same words.
    g = storage(size="20Gi", pvc=bound("10Gi", "10Gi", "fast-ssd"), now=LATER)
    same_at_both_times(f, g)
    # Grown: Bound.
    assert storage(size="20Gi", pvc=bound("20Gi", "20Gi", "fast-ssd")).reason == "Bound"


# 5. PVC conditions and allocatedResourceStatuses.


def test_file_system_resize_pending_says_when_it_grows() -> None:
    pending = {"type": "FileSystemResizePending", "status": "True", "lastTransitionTime": ts(5)}
    f = storage(size="20Gi", pvc=bound("10Gi", "20Gi", "fast-ssd", conditions=[pending]))
    assert f.reason == "Resizing"
    assert f.message == (
        "the volume of PVC redis-data-c-statefulset-0 has grown to 20Gi; its file system grows "
        "when kubelet expands it (online, while the pod runs, if the driver supports it; else "
        "when the pod restarts); until then the cache keeps working with 10Gi"
    )
    node_pending = storage(
        size="20Gi",
        pvc=bound(
            "10Gi", "20Gi", "fast-ssd", allocatedResourceStatuses={"storage": "NodeResizePending"}
        ),
        now=LATER,
    )
    same_at_both_times(f, node_pending)


def test_resize_in_progress_statuses_are_resizing() -> None:
    for status, where in (
        ("ControllerResizeInProgress", ""),
        ("NodeResizeInProgress", " on the node"),
    ):
        f = storage(
            size="20Gi",
            pvc=bound("10Gi", "20Gi", "fast-ssd", allocatedResourceStatuses={"storage": status}),
        )
        assert (f.reason, f.message) == (
            "Resizing",
            f"expanding PVC redis-data-c-statefulset-0{where} from 10Gi to 20Gi",
        )


def test_infeasible_resize_is_a_resize_failure() -> None:
    error = {
        "type": "ControllerResizeError",
        "status": "True",
        "message": "resize volume pvc-1 failed: requested size exceeds the maximum of 16Ti",
    }
    f = storage(
        size="20Gi",
        pvc=bound(
            "10Gi",
            "20Gi",
            "fast-ssd",
            conditions=[error],
            allocatedResourceStatuses={"storage": "ControllerResizeInfeasible"},
        ),
    )
    assert (f.ok, f.reason, f.failed) == (False, "ResizeFailed", False)
    assert f.message == (
        "the storage driver refused to expand PVC redis-data-c-statefulset-0 to 20Gi "
        "(ControllerResizeInfeasible: resize volume pvc-1 failed: requested size exceeds the "
        "maximum of 16Ti); the cache keeps working with 10Gi. See why with kubectl describe pvc "
        "-n ml-team redis-data-c-statefulset-0; fix the storage (for example the driver's size "
        "limits or the cloud quota), then raise storage.size to a size it can provide (a new "
        "size is a new request), or create a new cache with the size you need"
    )
    node = storage(
        size="20Gi",
        pvc=bound(
            "10Gi",
            "20Gi",
            "fast-ssd",
            allocatedResourceStatuses={"storage": "NodeResizeInfeasible"},
        ),
    )
    assert node.reason == "ResizeFailed"
    assert node.message.startswith(
        "the node (kubelet) refused to expand PVC redis-data-c-statefulset-0 to 20Gi "
        "(NodeResizeInfeasible); "
    )


def test_a_transient_resize_error_is_retried() -> None:
    error = {"type": "NodeResizeError", "status": "True", "message": "resize2fs: device busy"}
    f = storage(size="20Gi", pvc=bound("10Gi", "20Gi", "fast-ssd", conditions=[error]))
    assert f.reason == "Resizing"
    assert f.message == (
        "expanding PVC redis-data-c-statefulset-0 from 10Gi to 20Gi; the last attempt failed and "
        "is retried: resize2fs: device busy (kubectl describe pvc -n ml-team "
        "redis-data-c-statefulset-0)"
    )


def test_a_plain_error_exit_adds_nothing_to_the_exit_code() -> None:
    crash = waiting(
        "CrashLoopBackOff",
        restartCount=5,
        lastState={"terminated": {"exitCode": 1, "reason": "Error"}},
    )
    f = diagnose_pod(cache_pod(crash), "c-statefulset-0", NOW)
    assert f is not None and "keeps crashing (5 restarts, last exit code 1);" in f.message
