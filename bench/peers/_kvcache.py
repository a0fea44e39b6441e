"""What every peer writes for one AIMKVCache, mirroring aimctl's reconciler for a new cache.

aimctl's reconciler (``aimctl.reconcilers.kvcache._reconciler``), for a cache it has not seen:
adds the finalizer ``aim.silogen.ai/kvcache-protection``; server-side applies the StatefulSet,
the Service and the NetworkPolicy; writes the status once; records one Event for the
transition to ``Progressing``. The peers make the same writes, so the comparison is of the
machinery, not of the amount of work. The children come from the lead's pure builders
(``aimctl.reconcilers.kvcache._desired``), so all peers send byte-identical child bodies. The
status is the one a cache has right after its children were created in a cluster without a
StatefulSet controller (envtest): the children's names and endpoint, and ``Progressing`` until
the Redis pod is ready.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aimctl.api import quantity
from aimctl.api.v1alpha1 import AIMKVCache
from aimctl.objects import ConditionStatus, is_subset, set_condition
from aimctl.reconcilers._common import KVCACHE_CONTROLLER, leaf_equal
from aimctl.reconcilers.kvcache import _desired as desired

__all__ = [
    "API_VERSION",
    "FIELD_MANAGER",
    "FINALIZER",
    "GROUP",
    "PLURAL",
    "VERSION",
    "Desired",
    "cache_path",
    "children_paths",
    "desired_state",
    "event_body",
    "in_sync",
    "status_apply_body",
]

GROUP = "aim.silogen.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "aimkvcaches"
# The peers write as aimctl's controller does, so a child's managedFields look the same whichever
# peer made it.
FIELD_MANAGER = KVCACHE_CONTROLLER
FINALIZER = "aim.silogen.ai/kvcache-protection"


class Desired:
    """The bodies for one cache: its three children and its status."""

    __slots__ = ("network_policy", "service", "statefulset", "status")

    def __init__(
        self,
        statefulset: dict[str, Any],
        service: dict[str, Any],
        network_policy: dict[str, Any],
        status: dict[str, Any],
    ) -> None:
        self.statefulset = statefulset
        self.service = service
        self.network_policy = network_policy
        self.status = status


PROGRESSING_MESSAGE = "waiting for the StatefulSet controller to create PVC {pvc}"


def _status(cache: AIMKVCache, raw: Mapping[str, Any], users: Sequence[str]) -> dict[str, Any]:
    """aimctl's status for a cache whose StatefulSet exists but whose PVC does not (yet): in
    envtest nothing creates it, so every cache stays ``Progressing`` / ``CreatingClaim``."""
    generation = raw["metadata"].get("generation")
    old = (raw.get("status") or {}).get("conditions")
    sts = desired.statefulset_name(cache.name)
    message = PROGRESSING_MESSAGE.format(pvc=desired.pvc_name(cache.name))
    conditions: list[dict[str, Any]] | None = old
    steps: tuple[tuple[str, ConditionStatus], ...] = (
        ("Ready", "False"),
        ("Progressing", "True"),
        ("StorageReady", "False"),
    )
    for type_, value in steps:
        conditions = set_condition(
            conditions, type_, value, "CreatingClaim", message, observed_generation=generation
        )
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "status": "Progressing",
        "conditions": conditions,
        "replicas": 1,
        "readyReplicas": 0,
        "statefulSetName": sts,
        "serviceName": desired.service_name(cache.name),
        "endpoint": desired.endpoint(cache.name),
        "storageSize": quantity.format_quantity(cache.spec.storage.size),
    }
    if users:
        status["users"] = sorted(users)
    return status


def desired_state(raw: Mapping[str, Any], users: Sequence[str] = ()) -> Desired:
    """The children and status of the cache ``raw`` (a decoded AIMKVCache) used by the
    AIMServices ``users``."""
    obj = dict(raw)
    cache = AIMKVCache.model_validate(obj)
    return Desired(
        desired.statefulset(cache, obj),
        desired.service(cache, obj),
        desired.network_policy(cache, obj, sorted(users)),
        _status(cache, obj, users),
    )


def event_body(raw: Mapping[str, Any], message: str, instance: str) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event about ``raw`` (reason ``KVCacheProgressing``), as
    aimctl's recorder writes it when a cache's status first turns ``Progressing``."""
    meta = raw["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{secrets.token_hex(8)}",
            "namespace": meta["namespace"],
        },
        "eventTime": now,
        "reportingController": KVCACHE_CONTROLLER,
        "reportingInstance": instance,
        "action": "Reconcile",
        "reason": "KVCacheProgressing",
        "note": message,
        "type": "Normal",
        "regarding": {
            "apiVersion": raw["apiVersion"],
            "kind": raw["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta.get("resourceVersion", ""),
        },
    }


def in_sync(desired_fields: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Every field we would write already has that value (quantities compared by value)."""
    return live is not None and is_subset(desired_fields, live, leaf_equal=leaf_equal)


def status_apply_body(raw: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """A server-side apply body for the status subresource."""
    meta = raw["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "AIMKVCache",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "status": dict(status),
    }


def cache_path(namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


def children_paths(namespace: str, cache: str) -> tuple[str, str, str]:
    """The paths of a cache's StatefulSet, Service and NetworkPolicy."""
    return (
        f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{desired.statefulset_name(cache)}",
        f"/api/v1/namespaces/{namespace}/services/{desired.service_name(cache)}",
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/"
        f"{desired.network_policy_name(cache)}",
    )
