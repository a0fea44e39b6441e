"""Names, labels and kinds shared by the AIM reconcilers (``docs/architecture.md``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import structlog

from aimctl.api import quantity
from aimctl.api.v1alpha1 import GROUP, VERSION
from aimctl.client import GVK, Client
from aimctl.objects import diff_paths

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
    "apply_if_changed",
    "apply_status_if_changed",
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


async def apply_if_changed(
    client: Client, want: dict[str, Any], have: dict[str, Any] | None
) -> dict[str, Any]:
    """Server-side apply ``want`` unless the cached ``have`` already carries every field of it.

    This check is what makes a converged reconcile cost no API write; the fields that differ are
    logged, so drift corrections say what drifted.
    """
    if have is not None:
        diff = diff_paths(want, have, leaf_equal=leaf_equal)
        if not diff:
            return have
        log.info("Correcting drift", kind=want["kind"], child=want["metadata"]["name"], fields=diff)
    else:
        log.info("Creating", kind=want["kind"], child=want["metadata"]["name"])
    applied: dict[str, Any] = await client.apply(want)
    return applied


async def apply_status_if_changed(
    client: Client, raw: dict[str, Any], status: dict[str, Any], owned: Collection[str]
) -> bool:
    """Server-side apply ``status`` to ``raw``'s status subresource unless the ``owned`` keys of
    the observed status already equal it. Returns whether it wrote.

    ``status`` is the whole status this controller owns: a key it leaves out (``lastError`` once
    the error is gone) is removed by the apply. Keys outside ``owned`` belong to someone else and
    are neither compared nor touched.
    """
    old = raw.get("status") or {}
    if status == {k: old[k] for k in old if k in owned}:
        return False
    m = raw["metadata"]
    await client.apply_status(
        {
            "apiVersion": raw["apiVersion"],
            "kind": raw["kind"],
            "metadata": {"name": m["name"], "namespace": m["namespace"]},
            "status": status,
        }
    )
    return True
