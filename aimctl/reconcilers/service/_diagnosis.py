"""Why is an AIMService's workload not running? A pure function from its Deployment and pods.

What the Deployment controller reports, read as it writes it
(kubernetes/kubernetes:pkg/controller/deployment/progress.go ``syncRolloutStatus``, util/
deployment_util.go): the ``ReplicaFailure`` condition is the ReplicaSet's own, copied by
``ReplicaSetToDeploymentCondition`` (reason, message and lastTransitionTime unchanged); the
ReplicaSet controller sets it once, when creating or deleting pods fails, with reason
``FailedCreate``/``FailedDelete`` and the API's error as the message, and leaves it alone while
the failure lasts (pkg/controller/replicaset/replica_set_utils.go ``calculateStatus``); a Pod
Security refusal reads ``pods "<name>" is forbidden: violates PodSecurity "restricted:latest":
...``. ``Progressing=False`` with reason ``ProgressDeadlineExceeded`` (``TimedOutReason``) means
the newest ReplicaSet made no progress within ``progressDeadlineSeconds``.

Pods are diagnosed like the cache's (:func:`aimctl.reconcilers.kvcache._diagnosis.diagnose_pod`,
same grace periods), with the AIMService's fields in the advice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aimctl.objects import meta
from aimctl.reconcilers.kvcache._diagnosis import Finding, PodAdvice, diagnose_pod

__all__ = ["SERVICE_POD_ADVICE", "Finding", "diagnose_deployment"]

SERVICE_POD_ADVICE = PodAdvice(
    image="spec.model.image",
    pull_access="an imagePullSecret for a private registry (on the namespace's default "
    "ServiceAccount)",
    never_pull="load the image onto the nodes (its pull policy is Never)",
    memory="raise spec.resources.limits.memory (the model server needs more memory than its limit)",
)

_POD_SECURITY = re.compile(r'violates PodSecurity "([^"]+)"')


def _condition(deployment: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (deployment.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _selector(deployment: Mapping[str, Any]) -> str:
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _create_advice(message: str, namespace: str) -> str:
    """What to do about a pod the API server refused, from its refusal."""
    level = _POD_SECURITY.search(message)
    if level is not None:
        return (
            f"the namespace enforces Pod Security level {level.group(1)}: the pod template "
            "must meet it (change what the message names), or an administrator sets a level "
            "that admits it (namespace label pod-security.kubernetes.io/enforce)"
        )
    if "exceeded quota" in message:
        return (
            "a ResourceQuota refuses the pods: raise it, or lower spec.resources or "
            f"spec.replicas (kubectl describe resourcequota -n {namespace})"
        )
    if "must specify" in message:
        return (
            "a ResourceQuota requires every pod to declare what it names: set those "
            "requests/limits in spec.resources"
        )
    if "LimitRange" in message or "per Container" in message or "per Pod" in message:
        return (
            "spec.resources must fit the namespace's LimitRange "
            f"(kubectl describe limitrange -n {namespace})"
        )
    return (
        "fix what the message names; the ReplicaSet's events have the details "
        f"(kubectl describe replicaset -n {namespace})"
    )


def diagnose_deployment(
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]] = (),
    *,
    now: datetime | None = None,
) -> Finding | None:
    """The workload's problem, or None when nothing is wrong (yet).

    ``pods``: the Deployment's pods (every revision); ``now``: the clock for the grace periods
    (default: the current time). In order: pods the API server refuses to create
    (``FailedCreate``, failed), then the first of the pods' own findings (a failed one first;
    pods by name, so the choice is stable), then ``ProgressDeadlineExceeded`` (not failed: the
    controller keeps rolling out and a slow model may still load; the causes that do need a
    user, a pull, a crash loop, an OOM kill, a refusal, are failed findings of their own). A
    finding's ``recheck_after`` says when time alone may change it (a pull error's grace)."""
    if deployment is None:
        return None
    name = meta(deployment).get("name")
    namespace = str(meta(deployment).get("namespace") or "")

    failure = _condition(deployment, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        message = str(failure.get("message") or failure.get("reason") or "")
        return Finding(
            False,
            str(failure.get("reason") or "ReplicaFailure"),
            f"Deployment {name} cannot create its pods: {message.rstrip('.')}. To fix: "
            f"{_create_advice(message, namespace)}",
            failed=True,
        )

    found: list[Finding] = []
    when = now if now is not None else datetime.now(UTC)
    for pod in sorted(pods, key=lambda p: str(meta(p).get("name") or "")):
        if meta(pod).get("deletionTimestamp"):
            continue  # on its way out (a rollout, a scale-down): not the workload's problem
        finding = diagnose_pod(pod, str(meta(pod).get("name")), when, advice=SERVICE_POD_ADVICE)
        if finding is not None:
            found.append(finding)
    if found:
        return next((f for f in found if f.failed), found[0])

    progressing = _condition(deployment, "Progressing")
    if (
        progressing is not None
        and progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    ):
        deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
        within = f" within {deadline}s" if deadline else ""
        return Finding(
            False,
            "ProgressDeadlineExceeded",
            f"Deployment {name} made no progress{within}: "
            f"{str(progressing.get('message') or '').rstrip('.')}. Its pods did not become "
            "ready in time: see kubectl describe pods and kubectl logs -n "
            f"{namespace} -l {_selector(deployment)} (a large model may still be loading: its "
            "logs show how far it got)",
        )
    return None
