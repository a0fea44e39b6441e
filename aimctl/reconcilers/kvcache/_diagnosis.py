"""Why is a cache not Ready? Pure functions from observed objects to a reason and a message.

The guide's troubleshooting causes ("KV Cache Stuck in Progressing", "Status Failed") are
diagnosed from the cluster's state, not waited on. Each finding has a CamelCase ``reason`` (for
conditions, Events and alerts) and a ``message`` that says what is wrong *and what to do*.

Storage (condition ``StorageReady``): no default StorageClass; a named class that does not exist;
a ResourceQuota that forbids the claim; a claim stuck Pending; a claim waiting for its pod on a
``WaitForFirstConsumer`` class; a claim Lost; an expansion the class (or a missing class) does
not allow; an expansion under way or refused by the storage driver. Pod (condition ``Ready``):
image pull failures (after a grace period), crash loops, OOM kills, container configuration
errors, unschedulable.

A storage finding keeps the cache ``Progressing`` (the guide files these under "Stuck in
Progressing": they resolve when the cluster is fixed); a pod that cannot start makes it
``Failed``.

Messages are functions of the observed objects only, never of the clock: a status is written only
when it changes, so a message that embedded an elapsed time would be rewritten every reconcile
(and be stale in between). Time decides only *which* finding applies; ``recheck_after`` says when
to look again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aimctl.api import quantity
from aimctl.objects import meta

__all__ = [
    "CACHE_POD_ADVICE",
    "CREATE_CONTAINER_GRACE",
    "DEFAULT_CLASS_ANNOTATION",
    "IMAGE_PULL_GRACE",
    "PVC_PENDING_GRACE",
    "SCHEDULING_GRACE",
    "Finding",
    "PodAdvice",
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
# How long ErrImagePull/ImagePullBackOff may last before the pod counts as failed. kubelet retries
# a pull after 10s, doubling up to 300s (imageBackOffPeriod, MaxImageBackOff in
# kubernetes/kubernetes:pkg/kubelet/kubelet.go): within 5 minutes it has tried about five times
# (0, 10, 30, 70, 150s) and its backoff has reached the cap, so a registry 429 or a network blip
# has had its chances; an image that does not exist, or credentials that are wrong, will not
# start working by waiting longer.
IMAGE_PULL_GRACE = 300.0
# Likewise for CreateContainerConfigError (a Secret or ConfigMap the pod refers to is missing: it
# may be created a moment later, and kubelet picks it up on its next sync) and
# CreateContainerError (the runtime refused to create the container, sometimes a passing runtime
# timeout on a loaded node).
CREATE_CONTAINER_GRACE = 300.0

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Finding:
    """One diagnosis. ``ok``: nothing wrong. ``failed``: the cache cannot become Ready without
    a user action (status Failed). ``recheck_after``: seconds after which time alone may change
    the finding (a Pending claim turning "stuck"). ``defer_to_pod``: a storage finding that only
    waits for the pod (a ``WaitForFirstConsumer`` claim whose pod is not scheduled): when there
    is a pod finding, report that one as the cause instead."""

    ok: bool
    reason: str
    message: str
    failed: bool = False
    recheck_after: float | None = None
    defer_to_pod: bool = False


@dataclass(frozen=True)
class PodAdvice:
    """The words :func:`diagnose_pod` uses to say what to change, in the owning resource's terms
    (an AIMKVCache and an AIMService name their image and memory differently)."""

    image: str
    """Where the image is set, e.g. ``spec.image``."""
    pull_access: str
    """What gives access to a private registry."""
    never_pull: str
    """What to do when the image is absent and the pull policy is ``Never``."""
    memory: str
    """What to do when a container is OOM-killed."""


CACHE_POD_ADVICE = PodAdvice(
    image="spec.image",
    pull_access="spec.imagePullSecrets (credentials for a private registry)",
    never_pull="set spec.imagePullPolicy to IfNotPresent, or load the image onto the nodes",
    memory="raise resources.limits.memory or lower maxmemory (spec.redis.maxMemory): Redis "
    "needs room above maxmemory for client buffers and for the copy-on-write of a snapshot",
)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value.replace(".000000", "")[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=UTC
    )


def _elapsed(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def _sentence(text: str | None, fallback: str) -> str:
    """``text`` (an API message) without its final period, to go on with our own words."""
    return (text or "").strip().rstrip(".") or fallback


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m" if seconds >= 60 else f"{int(seconds)}s"


def default_storage_class(classes: Sequence[Obj]) -> Obj | None:
    """The cluster's default StorageClass (the newest, as the API server picks when several)."""
    defaults = [
        c
        for c in classes
        if (meta(c).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
    ]
    defaults.sort(key=lambda c: meta(c).get("creationTimestamp") or "", reverse=True)
    return defaults[0] if defaults else None


def _find_class(classes: Sequence[Obj], name: str | None) -> Obj | None:
    if not name:
        return None
    return next((c for c in classes if meta(c).get("name") == name), None)


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


# -- storage ----------------------------------------------------------------------------------

# PVC status vocabulary, kubernetes/kubernetes:pkg/apis/core/types.go: the condition types
# (PersistentVolumeClaimConditionType: Resizing, FileSystemResizePending, and with
# RecoverVolumeExpansionFailure ControllerResizeError, NodeResizeError) and
# status.allocatedResourceStatuses["storage"] (ClaimResourceStatus). The *Infeasible values are
# "a terminal unrecoverable error"; transient errors leave the status alone (the resizer retries).
_RESIZE_INFEASIBLE = frozenset({"ControllerResizeInfeasible", "NodeResizeInfeasible"})
_RESIZE_ERROR_CONDITIONS = ("ControllerResizeError", "NodeResizeError")


def _true_condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _bound(namespace: str, pvc_name: str, size: str, pvc: Obj, classes: Sequence[Obj]) -> Finding:
    status = pvc.get("status") or {}
    capacity = (status.get("capacity") or {}).get("storage")
    requested = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    if not capacity or quantity.compare(capacity, size) >= 0:
        return Finding(True, "Bound", f"PVC {pvc_name} is Bound ({capacity or size})")
    describe = f"kubectl describe pvc -n {namespace} {pvc_name}"
    keeps = f"the cache keeps working with {capacity}"

    resize = (status.get("allocatedResourceStatuses") or {}).get("storage")
    if resize in _RESIZE_INFEASIBLE:
        error = next(
            (c for t in _RESIZE_ERROR_CONDITIONS if (c := _true_condition(pvc, t)) is not None),
            None,
        )
        side = "storage driver" if resize == "ControllerResizeInfeasible" else "node (kubelet)"
        why = f": {error.get('message')}" if error and error.get("message") else ""
        return Finding(
            False,
            "ResizeFailed",
            f"the {side} refused to expand PVC {pvc_name} to {requested or size} "
            f"({resize}{why}); {keeps}. See why with {describe}; fix the storage (for example "
            "the driver's size limits or the cloud quota), then raise storage.size to a size "
            "it can provide (a new size is a new request), or create a new cache with the "
            "size you need",
        )

    if requested is None or quantity.compare(requested, size) < 0:
        # The operator has not asked for the new size yet: only a claim whose StorageClass
        # exists and allows it can be expanded. The API server refuses the rest
        # (kubernetes/kubernetes:plugin/pkg/admission/storage/persistentvolume/resize/
        # admission.go, allowResize: no class name, or a class it cannot find -> forbidden), so
        # asking would never end: say why instead of "Resizing" forever.
        class_name = (pvc.get("spec") or {}).get("storageClassName")
        klass = _find_class(classes, class_name)
        head = f"storage.size is {size} but PVC {pvc_name} has {capacity}"
        if not class_name:
            return Finding(
                False,
                "ExpansionNotSupported",
                f"{head} and is bound to a PersistentVolume with no StorageClass (statically "
                "provisioned); Kubernetes expands only claims of a class that allows it, so "
                f"{keeps}. Expand the volume and its PersistentVolume by hand, or create a new "
                "cache with the larger size",
            )
        if klass is None:
            return Finding(
                False,
                "ExpansionNotSupported",
                f"{head} and its StorageClass {class_name} no longer exists; Kubernetes expands "
                f"only claims whose class exists and allows it, so {keeps}. Re-create "
                f"StorageClass {class_name} with allowVolumeExpansion: true, or create a new "
                "cache with the larger size",
            )
        if not klass.get("allowVolumeExpansion"):
            return Finding(
                False,
                "ExpansionNotSupported",
                f"{head} and StorageClass {class_name} does not allow volume expansion; "
                f"{keeps}. Enable allowVolumeExpansion on the class, or create a new cache with "
                "the larger size",
            )
        target = size  # requested by this very reconcile (the reconciler patches the claim)
    else:
        target = requested

    if resize == "NodeResizePending" or _true_condition(pvc, "FileSystemResizePending"):
        return Finding(
            False,
            "Resizing",
            f"the volume of PVC {pvc_name} has grown to {target}; its file system grows when "
            "kubelet expands it (online, while the pod runs, if the driver supports it; else "
            f"when the pod restarts); until then {keeps}",
            recheck_after=30,
        )
    error = next(
        (c for t in _RESIZE_ERROR_CONDITIONS if (c := _true_condition(pvc, t)) is not None), None
    )
    if error is not None:
        return Finding(
            False,
            "Resizing",
            f"expanding PVC {pvc_name} from {capacity} to {target}; the last attempt failed and "
            f"is retried: {error.get('message') or error.get('type')} ({describe})",
            recheck_after=30,
        )
    where = " on the node" if resize == "NodeResizeInProgress" else ""
    return Finding(
        False,
        "Resizing",
        f"expanding PVC {pvc_name}{where} from {capacity} to {target}",
        recheck_after=10,
    )


def _scheduled_at(pod: Obj | None) -> datetime | None:
    """When the pod got its node, or None when it has none."""
    if pod is None or not (pod.get("spec") or {}).get("nodeName"):
        return None
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return parse_time(meta(pod).get("creationTimestamp"))


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
    pod: Obj | None = None,
) -> Finding:
    """The ``StorageReady`` finding for a cache's claim.

    ``pod`` is the cache's pod (or None): a claim of a ``WaitForFirstConsumer`` class is
    provisioned only once its pod has a node, so while the pod is not scheduled the claim waits
    (``WaitingForFirstConsumer``, ``defer_to_pod``) and the pod's finding is the cause."""
    phase = (pvc or {}).get("status", {}).get("phase")
    if pvc is not None and phase == "Bound":
        return _bound(namespace, pvc_name, size, pvc, classes)

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
    claimed = (pvc.get("spec") or {}).get("storageClassName")  # "" is no class, not the default
    klass = _find_class(classes, claimed if claimed is not None else klass_name)
    if klass is not None and klass.get("volumeBindingMode") == "WaitForFirstConsumer":
        scheduled = _scheduled_at(pod)
        if scheduled is None:
            # Not a storage problem: the volume is made for the node the pod lands on.
            return Finding(
                False,
                "WaitingForFirstConsumer",
                f"PVC {pvc_name} is provisioned once the cache's pod is scheduled: StorageClass "
                f"{meta(klass).get('name')} binds volumes at WaitForFirstConsumer; the pod's "
                "condition says why it is not scheduled yet",
                defer_to_pod=True,
            )
        # Provisioning starts when the scheduler picks the node: the grace counts from then.
        created = max(created, scheduled) if created is not None else scheduled
    age = _elapsed(created, now)
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
        f"PVC {pvc_name} has been Pending for more than {_minutes(PVC_PENDING_GRACE)}; its "
        f"events say why: kubectl describe pvc -n {namespace} {pvc_name}",
    )


# -- the pod ----------------------------------------------------------------------------------

# Pull failures that retrying cannot fix (kubernetes/kubernetes:pkg/kubelet/images/types.go:
# ErrInvalidImageName, ErrImageNeverPull) and those that are retried with backoff.
_PULL_HOPELESS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
_PULL_RETRIED = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "RegistryUnavailable", "ImageInspectError"}
)
_CREATE_ERRORS = frozenset({"CreateContainerConfigError", "CreateContainerError"})


def pod_is_ready(pod: Obj | None) -> bool:
    """The pod's Ready condition is True and it is not being deleted."""
    if pod is None or meta(pod).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _not_ready_since(pod: Obj) -> datetime | None:
    """When the pod's containers stopped being (or started not being) ready: the start of a
    pull or create failure. A fresh pod: when it was initialised; a pod whose container restarts:
    when the container stopped."""
    conditions = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or ()}
    for kind in ("ContainersReady", "Ready"):
        cond = conditions.get(kind)
        if cond is not None and cond.get("status") != "True":
            since = parse_time(cond.get("lastTransitionTime"))
            if since is not None:
                return since
    return parse_time((pod.get("status") or {}).get("startTime")) or parse_time(
        meta(pod).get("creationTimestamp")
    )


def _memory_limit(pod: Obj, container: str | None) -> str | None:
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        if c.get("name") == container:
            limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
            return str(limit) if limit is not None else None
    return None


def _graced(
    reason: str,
    message: str,
    since: datetime | None,
    now: datetime,
    grace: float,
    *,
    retrying: tuple[str, str] | None = None,
) -> Finding:
    """``reason``/``message``, failed once ``grace`` has passed since ``since``; until then not
    failed and rechecked (under ``retrying``'s reason and message when given)."""
    waited = _elapsed(since, now)
    if waited >= grace:
        return Finding(False, reason, message, failed=True)
    if retrying is not None:
        reason, message = retrying
    return Finding(False, reason, message, recheck_after=grace - waited + 1)


def _container_finding(
    pod: Obj, cs: Obj, pod_name: str, now: datetime, advice: PodAdvice
) -> Finding | None:
    name = cs.get("name")
    namespace = meta(pod).get("namespace")
    describe = f"kubectl describe pod -n {namespace} {pod_name}"
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    last = (cs.get("lastState") or {}).get("terminated") or {}
    image = cs.get("image")

    if reason in _PULL_HOPELESS:
        todo = (
            advice.never_pull
            if reason == "ErrImageNeverPull"
            else f"fix {advice.image} (registry/name:tag, lowercase)"
        )
        return Finding(
            False,
            "ImagePullFailed",
            f"pod {pod_name} cannot use image {image}: "
            f"{_sentence(waiting.get('message'), reason)}. {todo}",
            failed=True,
        )
    if reason in _PULL_RETRIED:
        # kubelet alternates ErrImagePull and ImagePullBackOff and rewrites its message on each
        # attempt; neither goes into our messages (the registry's error is in the pod's events),
        # so the status is not rewritten at every retry.
        check = (
            f"check {advice.image} (the registry, name and tag exist), {advice.pull_access}, "
            f"and that the nodes can reach the registry; the registry's error: {describe}"
        )
        return _graced(
            "ImagePullFailed",
            f"pod {pod_name} cannot pull image {image} (failing for more than "
            f"{_minutes(IMAGE_PULL_GRACE)}); {check}",
            _not_ready_since(pod),
            now,
            IMAGE_PULL_GRACE,
            retrying=(
                "ImagePullRetrying",
                f"pod {pod_name} cannot pull image {image} yet; kubelet retries with backoff "
                f"and it counts as failed after {_minutes(IMAGE_PULL_GRACE)}. If it persists, "
                f"{check}",
            ),
        )
    if reason in _CREATE_ERRORS:
        detail = _sentence(waiting.get("message"), reason)
        if "runAsNonRoot" in detail:
            # kubernetes/kubernetes:pkg/kubelet/kuberuntime/security_context_others.go
            # (verifyRunAsNonRoot): the image's user is root or a name kubelet cannot check.
            # Permanent for this image: no grace.
            return Finding(
                False,
                "CreateContainerConfigError",
                f"container {name} of pod {pod_name} is not started: {detail}. The pod must run "
                "as a non-root user (Pod Security restricted) and the image runs as root or "
                f"names its user by name: use an image ({advice.image}) whose USER is a numeric "
                "non-root UID, or one built for non-root use",
                failed=True,
            )
        if reason == "CreateContainerConfigError":
            todo = (
                "a Secret or ConfigMap (or one of its keys) the container refers to is missing; "
                "create it, or fix the reference"
            )
        else:
            todo = f"the container runtime refused it; check {advice.image} and {describe}"
        return _graced(
            reason,
            f"container {name} of pod {pod_name} cannot be created: {detail}. {todo}",
            _not_ready_since(pod),
            now,
            CREATE_CONTAINER_GRACE,
        )

    oom_now = (state.get("terminated") or {}).get("reason") == "OOMKilled"
    oom_before = last.get("reason") == "OOMKilled"
    if oom_now or (oom_before and (reason == "CrashLoopBackOff" or not cs.get("ready"))):
        limit = _memory_limit(pod, name)
        bound = f"its memory limit {limit}" if limit else "the node's memory (no memory limit)"
        return Finding(
            False,
            "OOMKilled",
            f"container {name} of pod {pod_name} was killed for using more than {bound} "
            f"(OOMKilled); {advice.memory}",
            failed=reason == "CrashLoopBackOff",
        )
    if reason == "CrashLoopBackOff":
        if last:
            # "Error" (non-zero exit) says nothing the exit code does not; StartError,
            # ContainerCannotRun and the like, and a termination message, do.
            why = last.get("reason") if last.get("reason") not in ("Error", "Completed") else None
            text = last.get("message")
            said = f"{why}: {text}" if why and text else why or text
            detail = f"last exit code {last.get('exitCode')}" + (f" ({said})" if said else "")
        else:
            detail = "no exit code yet"
        return Finding(
            False,
            "CrashLoopBackOff",
            f"container {name} of pod {pod_name} keeps crashing "
            f"({cs.get('restartCount', 0)} restarts, {detail}); see kubectl logs -n "
            f"{namespace} {pod_name} -c {name} --previous",
            failed=True,
        )
    return None


# What the scheduler's message points at (kubernetes/kubernetes:pkg/scheduler/framework/plugins:
# NodeResourcesFit "Insufficient <resource>", TaintToleration "untolerated taint", NodeAffinity
# "didn't match Pod's node affinity/selector", InterPodAffinity, VolumeBinding/VolumeZone), and
# the field of the spec that changes it.
_SCHEDULING_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("insufficient",), "lower spec.resources requests, or add nodes with room for them"),
    (("taint",), "add spec.tolerations for the nodes' taints"),
    (
        ("node affinity/selector", "pod affinity", "anti-affinity"),
        "check spec.nodeSelector and spec.affinity against the nodes' labels "
        "(kubectl get nodes --show-labels)",
    ),
    (
        ("volume node affinity", "persistent volume", "persistentvolume"),
        "its volume is not available on a node the pod may run on; check the StorageClass "
        "(allowedTopologies) and spec.nodeSelector/affinity",
    ),
)


def _scheduling_advice(message: str) -> str:
    text = message.lower()
    hints = [hint for keys, hint in _SCHEDULING_HINTS if any(k in text for k in keys)]
    if not hints:
        hints = [
            "set spec.nodeSelector, spec.tolerations or spec.affinity to match nodes that can "
            "run it, or lower spec.resources requests"
        ]
    return "; ".join(hints)


def diagnose_pod(
    pod: Obj | None, pod_name: str, now: datetime, *, advice: PodAdvice = CACHE_POD_ADVICE
) -> Finding | None:
    """A finding when the pod cannot start; None when nothing is wrong (yet).

    ``advice`` names the fields of the owning resource to change (the cache's by default). Of
    several containers, a failed finding wins over a transient one."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    found: list[Finding] = []
    for cs in [
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
    ]:
        finding = _container_finding(pod, cs, pod_name, now, advice)
        if finding is not None:
            found.append(finding)
    if found:
        return next((f for f in found if f.failed), found[0])
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
            why = _sentence(cond.get("message"), cond.get("reason") or "no node fits")
            return Finding(
                False,
                "Unschedulable",
                f"pod {pod_name} cannot be scheduled: {why}. To fix: {_scheduling_advice(why)}; "
                f"details: kubectl describe pod -n {meta(pod).get('namespace')} {pod_name}",
            )
    return None
