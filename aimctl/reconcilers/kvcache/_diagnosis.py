"""Why is a cache not Ready? Pure functions from observed objects to a reason and a message.

The guide's troubleshooting causes ("KV Cache Stuck in Progressing", "Status Failed") are
diagnosed from the cluster's state, not waited on. Each finding has a CamelCase ``reason`` (for
conditions, Events and alerts) and a ``message`` that says what is wrong *and what to do*.

Storage (condition ``StorageReady``): no default StorageClass; a named class that does not exist;
a ResourceQuota that forbids the claim; a claim stuck Pending; a claim Lost; an expansion the
class does not allow. Pod (condition ``Ready``): image pull failures, crash loops, unschedulable.

A storage finding keeps the cache ``Progressing`` (the guide files these under "Stuck in
Progressing": they resolve when the cluster is fixed); a pod that cannot start makes it
``Failed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aimctl.api import quantity
from aimctl.objects import meta

__all__ = [
    "DEFAULT_CLASS_ANNOTATION",
    "PVC_PENDING_GRACE",
    "SCHEDULING_GRACE",
    "Finding",
    "default_storage_class",
    "diagnose_pod",
    "diagnose_storage",
    "parse_time",
    "pod_is_ready",
]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
# How long a claim may be Pending before we call it stuck (provisioners usually bind in seconds).
PVC_PENDING_GRACE = 60.0
# How long a pod may wait for scheduling before we call it unschedulable: right after creation it
# routinely waits for its claim to bind ("pod has unbound immediate PersistentVolumeClaims").
SCHEDULING_GRACE = 30.0

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Finding:
    """One diagnosis. ``ok``: nothing wrong. ``failed``: the cache cannot become Ready without
    a user action (status Failed). ``recheck_after``: seconds after which time alone may change
    the finding (a Pending claim turning "stuck")."""

    ok: bool
    reason: str
    message: str
    failed: bool = False
    recheck_after: float | None = None


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value.replace(".000000", "")[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=UTC
    )


def default_storage_class(classes: Sequence[Obj]) -> Obj | None:
    """The cluster's default StorageClass (the newest, as the API server picks when several)."""
    defaults = [
        c
        for c in classes
        if (meta(c).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
    ]
    defaults.sort(key=lambda c: meta(c).get("creationTimestamp") or "", reverse=True)
    return defaults[0] if defaults else None


def _quota_problem(quotas: Sequence[Obj], class_name: str | None, size: str) -> str | None:
    need = quantity.parse_quantity(size)
    keys = ["requests.storage", "persistentvolumeclaims"]
    if class_name:
        keys += [
            f"{class_name}.storageclass.storage.k8s.io/requests.storage",
            f"{class_name}.storageclass.storage.k8s.io/persistentvolumeclaims",
        ]
    for q in quotas:
        hard = (q.get("status") or {}).get("hard") or (q.get("spec") or {}).get("hard") or {}
        used = (q.get("status") or {}).get("used") or {}
        for key in keys:
            if key not in hard:
                continue
            limit = quantity.parse_quantity(hard[key])
            current = quantity.parse_quantity(used.get(key, "0"))
            add = 1 if key.endswith("persistentvolumeclaims") else need
            if current + add > limit:
                what = "1 more claim" if add == 1 else f"{quantity.format_quantity(size)} more"
                return (
                    f"ResourceQuota {meta(q).get('name')} limits {key} to {hard[key]} and "
                    f"{used.get(key, '0')} is used; this cache needs {what}. Raise the quota, "
                    f"or free storage in the namespace (kubectl describe resourcequota -n "
                    f"{meta(q).get('namespace')})"
                )
    return None


def diagnose_storage(
    *,
    namespace: str,
    pvc_name: str,
    size: str,
    class_name: str | None,
    pvc: Obj | None,
    statefulset_exists: bool,
    classes: Sequence[Obj],
    quotas: Sequence[Obj],
    now: datetime,
) -> Finding:
    """The ``StorageReady`` finding for a cache's claim."""
    phase = (pvc or {}).get("status", {}).get("phase")
    if pvc is not None and phase == "Bound":
        capacity = ((pvc.get("status") or {}).get("capacity") or {}).get("storage")
        requested = (
            ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        )
        if capacity and quantity.compare(capacity, size) < 0:
            klass = next(
                (
                    c
                    for c in classes
                    if meta(c).get("name") == (pvc.get("spec") or {}).get("storageClassName")
                ),
                None,
            )
            if klass is not None and not klass.get("allowVolumeExpansion"):
                return Finding(
                    False,
                    "ExpansionNotSupported",
                    f"storage.size is {size} but PVC {pvc_name} has {capacity} and StorageClass "
                    f"{meta(klass).get('name')} does not allow volume expansion; the cache keeps "
                    f"working with {capacity}. Enable allowVolumeExpansion on the class, or create "
                    "a new cache with the larger size",
                )
            return Finding(
                False,
                "Resizing",
                f"expanding PVC {pvc_name} from {capacity} to {requested or size}",
                recheck_after=10,
            )
        return Finding(True, "Bound", f"PVC {pvc_name} is Bound ({capacity or size})")

    klass_name = class_name
    if class_name is not None:
        if class_name and not any(meta(c).get("name") == class_name for c in classes):
            return Finding(
                False,
                "StorageClassNotFound",
                f"StorageClass {class_name} does not exist (kubectl get storageclass lists the "
                "classes); create it, or create a new cache with an existing class "
                "(storage.storageClassName cannot be changed)",
            )
    else:
        default = default_storage_class(classes)
        if default is None and (pvc is None or not (pvc.get("spec") or {}).get("storageClassName")):
            return Finding(
                False,
                "NoDefaultStorageClass",
                "storage.storageClassName is not set and the cluster has no default "
                f"StorageClass; mark one as default (annotation {DEFAULT_CLASS_ANNOTATION}=true) "
                "or create a new cache with storage.storageClassName set",
            )
        klass_name = meta(default).get("name") if default is not None else None

    if pvc is None:
        problem = _quota_problem(quotas, klass_name, size)
        if problem is not None:
            return Finding(False, "QuotaExceeded", problem)
        if statefulset_exists:
            return Finding(
                False,
                "CreatingClaim",
                f"waiting for the StatefulSet controller to create PVC {pvc_name}",
            )
        return Finding(False, "Pending", f"PVC {pvc_name} will be created with the StatefulSet")

    if phase == "Lost":
        return Finding(
            False,
            "ClaimLost",
            f"PVC {pvc_name} lost its PersistentVolume; the cached data is gone. Delete the PVC "
            f"(kubectl delete pvc -n {namespace} {pvc_name}) so a new one is provisioned",
        )
    created = parse_time(meta(pvc).get("creationTimestamp"))
    age = (now - created).total_seconds() if created else 0.0
    if age < PVC_PENDING_GRACE:
        return Finding(
            False,
            "Provisioning",
            f"PVC {pvc_name} is Pending; waiting for storage to be provisioned",
            recheck_after=PVC_PENDING_GRACE - age + 1,
        )
    return Finding(
        False,
        "ClaimPending",
        f"PVC {pvc_name} has been Pending for {int(age // 60)}m{int(age % 60):02d}s; its events "
        f"say why: kubectl describe pvc -n {namespace} {pvc_name}",
    )


_PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}


def pod_is_ready(pod: Obj | None) -> bool:
    """The pod's Ready condition is True and it is not being deleted."""
    if pod is None or meta(pod).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def diagnose_pod(pod: Obj | None, pod_name: str, now: datetime) -> Finding | None:
    """A finding when the cache's pod cannot start; None when nothing is wrong (yet)."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or ():
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in _PULL_REASONS:
            return Finding(
                False,
                "ImagePullFailed",
                f"pod {pod_name} cannot pull image {cs.get('image')}: "
                f"{waiting.get('message') or reason}. Check spec.image and that the node can "
                "reach its registry",
                failed=True,
            )
        if reason == "CrashLoopBackOff":
            last = (cs.get("lastState") or {}).get("terminated") or {}
            detail = f"last exit code {last.get('exitCode')}" if last else "no exit code yet"
            return Finding(
                False,
                "CrashLoopBackOff",
                f"container {cs.get('name')} of pod {pod_name} keeps crashing "
                f"({cs.get('restartCount', 0)} restarts, {detail}); see kubectl logs -n "
                f"{meta(pod).get('namespace')} {pod_name} --previous",
                failed=True,
            )
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            since = parse_time(cond.get("lastTransitionTime"))
            waited = (now - since).total_seconds() if since else SCHEDULING_GRACE
            if waited < SCHEDULING_GRACE:
                return Finding(
                    False,
                    "Scheduling",
                    f"pod {pod_name} is waiting to be scheduled",
                    recheck_after=SCHEDULING_GRACE - waited + 1,
                )
            return Finding(
                False,
                "Unschedulable",
                f"pod {pod_name} cannot be scheduled: {cond.get('message') or cond.get('reason')}",
            )
    return None
