"""The inference workload's diagnosis: what the Deployment controller and kubelet report, turned
into a reason that names the cause and a message that says what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aimctl.reconcilers.kvcache._diagnosis import IMAGE_PULL_GRACE
from aimctl.reconcilers.service._diagnosis import Finding, diagnose_deployment

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=7)
IMAGE = "ghcr.io/silogen/aim-llama:0.7.0"
PSA = (
    'pods "llama-65f95c6cfb-wzknh" is forbidden: violates PodSecurity "restricted:latest": '
    'allowPrivilegeEscalation != false (container "inference" must set '
    "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
    '"inference" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true '
    '(pod or container "inference" must set securityContext.runAsNonRoot=true), seccompProfile '
    '(pod or container "inference" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")'
)


def ts(delta: float) -> str:
    return (NOW - timedelta(seconds=delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(*conditions: dict[str, Any], ready: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": "llama", "namespace": "ml-team"},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "aimservice",
                    "app.kubernetes.io/instance": "llama",
                }
            },
        },
        "status": {"readyReplicas": ready, "conditions": list(conditions)},
    }


def pod(name: str, *statuses: dict[str, Any], since: float = 60, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml-team", "creationTimestamp": ts(since), **meta},
        "spec": {
            "nodeName": "gpu-1",
            "containers": [
                {"name": "inference", "image": IMAGE, "resources": {"limits": {"memory": "64Gi"}}}
            ],
        },
        "status": {
            "startTime": ts(since),
            "conditions": [
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": ts(since)}
            ],
            "containerStatuses": list(statuses),
        },
    }


def waiting(reason: str, message: str = "", **cs: Any) -> dict[str, Any]:
    return {
        "name": "inference",
        "image": IMAGE,
        "ready": False,
        "state": {"waiting": {"reason": reason, "message": message}},
        **cs,
    }


def running(ready: bool = True) -> dict[str, Any]:
    return {"name": "inference", "image": IMAGE, "ready": ready, "state": {"running": {}}}


def diagnose(deploy: dict[str, Any] | None, *pods: dict[str, Any], now: datetime = NOW) -> Finding:
    f = diagnose_deployment(deploy, pods, now=now)
    assert f is not None
    return f


def test_nothing_wrong_is_none() -> None:
    available = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
    assert diagnose_deployment(None) is None
    assert diagnose_deployment(deployment(available, ready=1), [pod("llama-1", running())]) is None
    # Running, still loading the model: not a problem (yet).
    assert diagnose_deployment(deployment(), [pod("llama-1", running(ready=False))]) is None


def test_pod_security_refusal_is_failed_create_with_the_api_message() -> None:
    refused = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": PSA,
        "lastTransitionTime": ts(30),
    }
    f = diagnose(deployment(refused))
    assert (f.ok, f.reason, f.failed) == (False, "FailedCreate", True)
    assert f.message == (
        f"Deployment llama cannot create its pods: {PSA}. To fix: the namespace enforces Pod "
        "Security level restricted:latest: the pod template must meet it (change what the "
        "message names), or an administrator sets a level that admits it (namespace label "
        "pod-security.kubernetes.io/enforce)"
    )
    # Pods cannot exist, so none can explain it better; and the clock changes nothing.
    g = diagnose(deployment(refused), now=LATER + timedelta(hours=1))
    assert (f.reason, f.message, f.failed) == (g.reason, g.message, g.failed)


def test_quota_refusal_says_to_raise_the_quota_or_lower_the_request() -> None:
    refused = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": 'pods "llama-7c9d8f6b5-x2x9q" is forbidden: exceeded quota: gpu, requested: '
        "requests.amd.com/gpu=1, used: requests.amd.com/gpu=4, limited: requests.amd.com/gpu=4",
    }
    f = diagnose(deployment(refused))
    assert f.reason == "FailedCreate"
    assert f.message.endswith(
        "To fix: a ResourceQuota refuses the pods: raise it, or lower spec.resources or "
        "spec.replicas (kubectl describe resourcequota -n ml-team)"
    )


def test_replica_failure_that_is_not_true_is_ignored() -> None:
    gone = {"type": "ReplicaFailure", "status": "False", "reason": "FailedCreate", "message": PSA}
    assert diagnose_deployment(deployment(gone), [], now=NOW) is None


def test_progress_deadline_exceeded_is_reported_not_failed() -> None:
    timed_out = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "llama-7c9d8f6b5" has timed out progressing.',
    }
    f = diagnose(deployment(timed_out), pod("llama-7c9d8f6b5-abcde", running(ready=False)))
    assert (f.reason, f.failed) == ("ProgressDeadlineExceeded", False)
    assert f.message == (
        'Deployment llama made no progress within 600s: ReplicaSet "llama-7c9d8f6b5" has timed '
        "out progressing. Its pods did not become ready in time: see kubectl describe pods and "
        "kubectl logs -n ml-team -l app.kubernetes.io/instance=llama,"
        "app.kubernetes.io/name=aimservice (a large model may still be loading: its logs show "
        "how far it got)"
    )


def test_a_pod_cause_is_reported_before_the_progress_deadline() -> None:
    timed_out = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    crash = waiting(
        "CrashLoopBackOff",
        restartCount=4,
        lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    )
    f = diagnose(deployment(timed_out), pod("llama-1", crash))
    assert (f.reason, f.failed) == ("OOMKilled", True)
    assert f.message == (
        "container inference of pod llama-1 was killed for using more than its memory limit 64Gi "
        "(OOMKilled); raise spec.resources.limits.memory (the model server needs more memory "
        "than its limit)"
    )


PULL_CHECK = (
    "check spec.model.image (the registry, name and tag exist), an imagePullSecret for a "
    "private registry (on the namespace's default ServiceAccount), and that the nodes can "
    "reach the registry; the registry's error: kubectl describe pod -n ml-team llama-1"
)


def test_image_pull_gets_the_same_grace_as_the_cache() -> None:
    young = diagnose(deployment(), pod("llama-1", waiting("ErrImagePull", "429"), since=60))
    assert (young.reason, young.failed) == ("ImagePullRetrying", False)
    assert young.recheck_after == IMAGE_PULL_GRACE - 60 + 1
    assert young.message == (
        f"pod llama-1 cannot pull image {IMAGE} yet; kubelet retries with backoff and it counts "
        "as failed after 5m. If it persists, " + PULL_CHECK
    )
    again = diagnose(
        deployment(), pod("llama-1", waiting("ImagePullBackOff", "Back-off"), since=60), now=LATER
    )
    assert (again.reason, again.message) == (young.reason, young.message)

    old = diagnose(deployment(), pod("llama-1", waiting("ImagePullBackOff"), since=400))
    assert (old.reason, old.failed) == ("ImagePullFailed", True)
    assert old.message == (
        f"pod llama-1 cannot pull image {IMAGE} (failing for more than 5m); " + PULL_CHECK
    )


def test_create_container_config_error_on_an_inference_pod() -> None:
    refused = waiting(
        "CreateContainerConfigError",
        "container has runAsNonRoot and image has non-numeric user (vllm), cannot verify user "
        "is non-root",
    )
    f = diagnose(deployment(), pod("llama-1", refused, since=1))
    assert (f.reason, f.failed) == ("CreateContainerConfigError", True)
    assert f.message == (
        "container inference of pod llama-1 is not started: container has runAsNonRoot and "
        "image has non-numeric user (vllm), cannot verify user is non-root. The pod must run as "
        "a non-root user (Pod Security restricted) and the image runs as root or names its user "
        "by name: use an image (spec.model.image) whose USER is a numeric non-root UID, or one "
        "built for non-root use"
    )


def test_pods_being_deleted_are_not_the_workloads_problem() -> None:
    old = pod(
        "llama-old",
        waiting("CrashLoopBackOff", restartCount=9),
        deletionTimestamp=ts(1),
    )
    assert diagnose_deployment(deployment(), [old, pod("llama-new", running())], now=NOW) is None


def test_a_failed_pod_wins_and_the_choice_is_stable() -> None:
    pulling = pod("llama-a", waiting("ErrImagePull"), since=10)
    crashing = pod(
        "llama-b",
        waiting(
            "CrashLoopBackOff",
            restartCount=3,
            lastState={"terminated": {"reason": "Error", "exitCode": 1}},
        ),
    )
    f = diagnose(deployment(), pulling, crashing)
    assert (f.reason, f.failed) == ("CrashLoopBackOff", True)
    assert "pod llama-b" in f.message
    g = diagnose(deployment(), crashing, pulling, now=LATER)
    assert (f.reason, f.message) == (g.reason, g.message)
    # Two failed pods: the first by name, whatever the listing order.
    crashing_c = {**crashing, "metadata": {**crashing["metadata"], "name": "llama-c"}}
    assert "pod llama-b" in diagnose(deployment(), crashing_c, crashing).message


def test_unschedulable_inference_pod_says_to_tolerate_the_gpu_taint() -> None:
    p = pod("llama-1", since=120)
    p["spec"].pop("nodeName")
    p["status"] = {
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/4 nodes are available: 4 node(s) had untolerated taint "
                "{amd.com/gpu: present}.",
                "lastTransitionTime": ts(120),
            }
        ]
    }
    f = diagnose(deployment(), p)
    assert (f.reason, f.failed) == ("Unschedulable", False)
    assert f.message == (
        "pod llama-1 cannot be scheduled: 0/4 nodes are available: 4 node(s) had untolerated "
        "taint {amd.com/gpu: present}. To fix: add spec.tolerations for the nodes' taints; "
        "details: kubectl describe pod -n ml-team llama-1"
    )
