"""Names, labels and kinds shared by the AIM reconcilers (``docs/architecture.md``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import structlog
from pydantic import ValidationError

from aimctl.api import quantity
from aimctl.api.v1alpha1 import GROUP, VERSION
from aimctl.client import GVK, ApiError, Client, EventRecorder
from aimctl.objects import controller_of, diff_paths, set_condition

__all__ = [
    "AIMKVCACHE",
    "AIMSERVICE",
    "CONFIGMAP",
    "DEPLOYMENT",
    "KVCACHE_CONTROLLER",
    "LABEL_INSTANCE",
    "LABEL_MANAGED_BY",
    "LABEL_NAME",
    "NETWORKPOLICY",
    "POD",
    "PVC",
    "RESOURCEQUOTA",
    "SERVICE",
    "SERVICE_CONTROLLER",
    "STATEFULSET",
    "STORAGECLASS",
    "CONFLICT_RECHECK",
    "ChildConflict",
    "apply_if_changed",
    "apply_status_if_changed",
    "observed_status",
    "report_invalid",
    "leaf_equal",
]

log = structlog.get_logger("aimctl.reconcilers")

KVCACHE_CONTROLLER = "aimkvcache-controller"
SERVICE_CONTROLLER = "aimservice-controller"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

AIMKVCACHE = GVK(GROUP, VERSION, "AIMKVCache")
AIMSERVICE = GVK(GROUP, VERSION, "AIMService")
STATEFULSET = GVK("apps", "v1", "StatefulSet")
DEPLOYMENT = GVK("apps", "v1", "Deployment")
SERVICE = GVK("", "v1", "Service")
CONFIGMAP = GVK("", "v1", "ConfigMap")
PVC = GVK("", "v1", "PersistentVolumeClaim")
POD = GVK("", "v1", "Pod")
RESOURCEQUOTA = GVK("", "v1", "ResourceQuota")
STORAGECLASS = GVK("storage.k8s.io", "v1", "StorageClass")
NETWORKPOLICY = GVK("networking.k8s.io", "v1", "NetworkPolicy")


def leaf_equal(a: Any, b: Any) -> bool:
    """Equality for ``is_subset`` that treats equal Kubernetes quantities as equal strings."""
    if a == b:
        return True
    if (
        isinstance(a, str)
        and isinstance(b, str)
        and quantity.is_quantity(a)
        and quantity.is_quantity(b)
    ):
        return quantity.compare(a, b) == 0
    return False


# How often a reconciler re-checks a child name held by another owner (it gets no event when
# that owner lets go, so it polls instead of backing off towards 1000 s).
CONFLICT_RECHECK = 60.0


class ChildConflict(Exception):
    """The child's name is taken by an object another owner controls; nothing was written."""


async def apply_if_changed(
    client: Client, want: dict[str, Any], have: dict[str, Any] | None
) -> dict[str, Any]:
    """Server-side apply ``want`` unless the cached ``have`` already carries every field of it.

    This check is what makes a converged reconcile cost no API write; the fields that differ are
    logged, so drift corrections say what drifted. Raises :class:`ChildConflict` instead of
    fighting over an object that another owner controls (two objects wanting one name).
    """
    if have is not None:
        theirs = controller_of(have)
        ours = (want["metadata"].get("ownerReferences") or [{}])[0]
        if theirs is not None and theirs.get("uid") != ours.get("uid"):
            raise ChildConflict(
                f"{want['kind']} {want['metadata']['name']} already belongs to "
                f"{theirs.get('kind')} {theirs.get('name')}; rename one of them (or delete that "
                f"{want['kind']})"
            )
        diff = diff_paths(want, have, leaf_equal=leaf_equal)
        if not diff:
            return have
        log.info("Correcting drift", kind=want["kind"], child=want["metadata"]["name"], fields=diff)
    else:
        log.info("Creating", kind=want["kind"], child=want["metadata"]["name"])
    applied: dict[str, Any] = await client.apply(want)
    return applied


def observed_status(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The object's status, or ``{}`` when it has none or holds something that is not an object
    (stored before a schema change): reconcilers must not crash on what they read."""
    status = raw.get("status")
    return status if isinstance(status, dict) else {}


async def apply_status_if_changed(
    client: Client, raw: dict[str, Any], status: dict[str, Any], owned: Collection[str]
) -> bool:
    """Server-side apply ``status`` to ``raw``'s status subresource unless the ``owned`` keys of
    the observed status already equal it. Returns whether it wrote.

    ``status`` is the whole status this controller owns: a key it leaves out (``lastError`` once
    the error is gone) is removed by the apply. Keys outside ``owned`` belong to someone else and
    are neither compared nor touched.
    """
    stored = raw.get("status")
    old = observed_status(raw)
    if status == {k: old[k] for k in old if k in owned}:
        return False
    m = raw["metadata"]
    if stored is not None and (
        stored is not old or not isinstance(old.get("conditions", []), list)
    ):
        # Garbage stored before a schema change (a string status, a string conditions list):
        # server-side apply cannot merge into it, a merge patch replaces it.
        await client.patch(
            GVK.of(raw), m["name"], m["namespace"], {"status": status}, subresource="status"
        )
        return True
    await client.apply_status(
        {
            "apiVersion": raw["apiVersion"],
            "kind": raw["kind"],
            "metadata": {"name": m["name"], "namespace": m["namespace"]},
            "status": status,
        }
    )
    return True


async def report_invalid(
    client: Client,
    recorder: EventRecorder,
    raw: dict[str, Any],
    err: ValidationError,
    owned: Collection[str],
    *,
    last_error: bool,
) -> str:
    """Report an object the models reject (stored before a schema change, or written around
    validation): status ``Failed``, ``Ready=False/InvalidSpec`` with the first errors, and a
    Warning Event when the report is new. Returns the message. Never raises for an unwritable
    status: the Event is the report then."""
    m = raw.get("metadata") or {}
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5]
    )
    message = (
        f"invalid spec: {problems}; fix it with kubectl edit {str(raw.get('kind', '')).lower()} "
        f"-n {m.get('namespace')} {m.get('name')}"
    )
    generation = m.get("generation") if isinstance(m.get("generation"), int) else None
    conds = set_condition(
        observed_status(raw).get("conditions"),
        "Ready",
        "False",
        "InvalidSpec",
        message,
        observed_generation=generation,
    )
    status: dict[str, Any] = {"status": "Failed", "conditions": conds}
    if generation is not None:
        status["observedGeneration"] = generation
    if last_error:
        status["lastError"] = message
    old = observed_status(raw)
    if status == {k: old[k] for k in old if k in owned}:
        return message
    try:
        # A merge patch, not an apply: the server cannot build the typed object that server-side
        # apply needs when the stored spec itself is garbage.
        await client.patch(
            GVK.of(raw), m["name"], m["namespace"], {"status": status}, subresource="status"
        )
        recorder.event(raw, "Warning", "InvalidSpec", message)
    except ApiError as apierr:
        log.warning("Could not write the status of an invalid object", error=str(apierr))
        recorder.event(raw, "Warning", "InvalidSpec", message)
    return message
