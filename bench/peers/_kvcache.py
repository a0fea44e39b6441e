"""What every peer writes for one AIMKVCache, mirroring aimctl's reconciler for a new cache.

aimctl's reconciler (``aimctl.reconcilers.kvcache._reconciler``), for a cache it has not seen,
in this order: adds the finalizer ``aim.silogen.ai/kvcache-protection`` (merge PATCH); creates
the password Secret ``<cache>-auth`` (POST, only when absent) and records a ``PasswordCreated``
Event; server-side applies the NetworkPolicy, then the StatefulSet (its pod template annotated
with the password's hash), then the Service; writes the status once; records one Event for the
transition to ``Progressing``. That is eight writes per cache. The peers make the same writes
in the same order, so the comparison is of the machinery, not of the amount of work. The Secret
and the children come from aimctl's pure builders (``aimctl.reconcilers.kvcache._desired``), so
all peers send the same bodies (byte-identical but for the random password and its hash). The
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
    "PASSWORD_CREATED_MESSAGE",
    "PLURAL",
    "PROGRESSING_MESSAGE",
    "VERSION",
    "Desired",
    "cache_path",
    "children_paths",
    "desired_state",
    "event_body",
    "in_sync",
    "secrets_path",
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
    """The bodies for one cache: its password Secret (a new password, to create when the cache
    has none), its three other children and its status."""

    __slots__ = ("network_policy", "secret", "service", "statefulset", "status")

    def __init__(
        self,
        secret: dict[str, Any],
        statefulset: dict[str, Any],
        service: dict[str, Any],
        network_policy: dict[str, Any],
        status: dict[str, Any],
    ) -> None:
        self.secret = secret
        self.statefulset = statefulset
        self.service = service
        self.network_policy = network_policy
        self.status = status


PROGRESSING_MESSAGE = "waiting for the StatefulSet controller to create PVC {pvc}"
PASSWORD_CREATED_MESSAGE = "created Secret {secret} with a new Redis password"


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


def desired_state(
    raw: Mapping[str, Any], users: Sequence[str] = (), auth_hash: str | None = None
) -> Desired:
    """The children and status of the cache ``raw`` (a decoded AIMKVCache) used by the
    AIMServices ``users``.

    The Secret holds a new password. The StatefulSet's pod template carries ``auth_hash`` (the
    :func:`~aimctl.reconcilers.kvcache._desired.password_hash` of the cache's existing Secret)
    or, when None, the hash of that new Secret, the one to create."""
    obj = dict(raw)
    cache = AIMKVCache.model_validate(obj)
    secret = desired.auth_secret(cache, obj, desired.new_password())
    return Desired(
        secret,
        desired.statefulset(cache, obj, auth_hash=auth_hash or desired.password_hash(secret)),
        desired.service(cache, obj),
        desired.network_policy(cache, obj, sorted(users)),
        _status(cache, obj, users),
    )


def event_body(
    raw: Mapping[str, Any],
    message: str,
    instance: str,
    *,
    reason: str = "KVCacheProgressing",
    action: str = "Reconcile",
) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event about ``raw``, as aimctl's recorder writes it: by default
    the one for a cache's status first turning ``Progressing``; with ``reason``
    ``PasswordCreated`` and ``action`` ``Create``, the one for its new password Secret."""
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
        "action": action,
        "reason": reason,
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


def secrets_path(namespace: str) -> str:
    """The path to POST a cache's password Secret to."""
    return f"/api/v1/namespaces/{namespace}/secrets"


def children_paths(namespace: str, cache: str) -> tuple[str, str, str]:
    """The paths of a cache's NetworkPolicy, StatefulSet and Service, in the order aimctl's
    reconciler applies them (the fence before Redis runs)."""
    return (
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/"
        f"{desired.network_policy_name(cache)}",
        f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{desired.statefulset_name(cache)}",
        f"/api/v1/namespaces/{namespace}/services/{desired.service_name(cache)}",
    )
