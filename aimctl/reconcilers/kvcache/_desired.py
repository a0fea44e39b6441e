"""Desired state of a cache's children, as plain JSON dicts (pure functions, no I/O).

Every child carries the guide's labels, so ``kubectl ... -l app.kubernetes.io/name=aimkvcache``
and ``-l app.kubernetes.io/managed-by=aimkvcache-controller`` find them, and a controller owner
reference to the cache, so garbage collection removes them with it.

Children of cache ``<name>``:
- StatefulSet ``<name>-statefulset`` (one replica: pod ``<name>-statefulset-0``; PVC
  ``redis-data-<name>-statefulset-0`` from the ``redis-data`` volumeClaimTemplate);
- Service ``<name>-svc`` (ClusterIP, 6379), so the endpoint is ``redis://<name>-svc:6379``;
- NetworkPolicy ``<name>-netpol``: only pods of the AIMServices using the cache reach Redis.
"""

from __future__ import annotations

from typing import Any

from aimctl.api import quantity
from aimctl.api.v1alpha1 import AIMKVCache
from aimctl.objects import controller_reference
from aimctl.reconcilers._common import (
    KVCACHE_CONTROLLER,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    env_vars,
)

__all__ = [
    "DATA_VOLUME",
    "DEFAULT_IMAGE",
    "DEFAULT_RESOURCES",
    "REDIS_PORT",
    "SERVICE_LABEL",
    "endpoint",
    "labels",
    "network_policy",
    "network_policy_name",
    "pvc_name",
    "selector_labels",
    "service",
    "service_name",
    "statefulset",
    "statefulset_name",
]

# Pinned: a cache must not change Redis version because a tag moved. 7.2.x is the line the
# original operator shipped (redis:7.2.4); bump deliberately.
DEFAULT_IMAGE = "redis:7.2.4"
REDIS_PORT = 6379
REDIS_UID = 999  # the redis user of the official image
DATA_VOLUME = "redis-data"
# Requests sized for a small cache; memory limit = request so Redis is OOM-killed predictably
# rather than starving the node; no CPU limit (throttling hurts latency more than it protects).
DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"memory": "1Gi"},
}
# Pods of AIMServices carry this label (value: the service name); the NetworkPolicy admits them.
SERVICE_LABEL = "aim.silogen.ai/service"


def statefulset_name(cache: str) -> str:
    return f"{cache}-statefulset"


def service_name(cache: str) -> str:
    return f"{cache}-svc"


def network_policy_name(cache: str) -> str:
    return f"{cache}-netpol"


def pvc_name(cache: str) -> str:
    return f"{DATA_VOLUME}-{statefulset_name(cache)}-0"


def endpoint(cache: str) -> str:
    return f"redis://{service_name(cache)}:{REDIS_PORT}"


def selector_labels(cache: str) -> dict[str, str]:
    return {LABEL_NAME: "aimkvcache", LABEL_INSTANCE: cache}


def labels(cache: str) -> dict[str, str]:
    return {**selector_labels(cache), LABEL_MANAGED_BY: KVCACHE_CONTROLLER}


def _meta(cache: AIMKVCache, raw: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": cache.namespace,
        "labels": labels(cache.name),
        "ownerReferences": [controller_reference(raw)],
    }


def _resources(cache: AIMKVCache) -> dict[str, Any]:
    if cache.spec.resources is None:
        return DEFAULT_RESOURCES
    res = cache.spec.resources.model_dump(by_alias=True, exclude_none=True, mode="json")
    # Canonical quantities, as the server stores them, so comparing with the live object works.
    return {
        kind: {k: quantity.format_quantity(v) for k, v in values.items()}
        for kind, values in res.items()
        if isinstance(values, dict)
    }


def statefulset(
    cache: AIMKVCache, raw: dict[str, Any], *, storage_size: str | None = None
) -> dict[str, Any]:
    """The Redis StatefulSet. ``storage_size`` overrides the template's size (used to keep a
    live StatefulSet's immutable template while its PVC is being expanded)."""
    name = cache.name
    storage = cache.spec.storage
    container: dict[str, Any] = {
        "name": "redis",
        "image": cache.spec.image or DEFAULT_IMAGE,
        "command": ["redis-server"],
        # AOF on /data so a restarted pod keeps the cache; RDB snapshot every 60 s as well.
        "args": [
            "--dir",
            "/data",
            "--appendonly",
            "yes",
            "--save",
            "60",
            "1",
            "--loglevel",
            "notice",
        ],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "resources": _resources(cache),
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": "/data"}],
        "livenessProbe": {
            "tcpSocket": {"port": REDIS_PORT},
            "initialDelaySeconds": 15,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", "redis-cli -p 6379 ping | grep -q PONG"]},
            "initialDelaySeconds": 5,
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": REDIS_UID,
            "runAsGroup": REDIS_UID,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if cache.spec.env:
        container["env"] = env_vars(cache.spec.env)
    claim_spec: dict[str, Any] = {
        "accessModes": [str(m) for m in storage.access_modes],
        "resources": {
            "requests": {"storage": quantity.format_quantity(storage_size or storage.size)}
        },
    }
    if storage.storage_class_name is not None:
        claim_spec["storageClassName"] = storage.storage_class_name
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(cache, raw, statefulset_name(name)),
        "spec": {
            "replicas": 1,
            "serviceName": service_name(name),
            "podManagementPolicy": "OrderedReady",
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete",
                "whenScaled": "Retain",
            },
            "selector": {"matchLabels": selector_labels(name)},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "securityContext": {"fsGroup": REDIS_UID},
                    "containers": [container],
                },
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": DATA_VOLUME, "labels": labels(name)}, "spec": claim_spec}
            ],
        },
    }


def service(cache: AIMKVCache, raw: dict[str, Any]) -> dict[str, Any]:
    name = cache.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(cache, raw, service_name(name)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [
                {"name": "redis", "port": REDIS_PORT, "targetPort": REDIS_PORT, "protocol": "TCP"}
            ],
        },
    }


def network_policy(cache: AIMKVCache, raw: dict[str, Any], users: list[str]) -> dict[str, Any]:
    """Admit Redis traffic only from pods of the services using the cache (none: deny all)."""
    ingress: list[dict[str, Any]] = []
    if users:
        ingress.append(
            {
                "from": [
                    {
                        "podSelector": {
                            "matchExpressions": [
                                {"key": SERVICE_LABEL, "operator": "In", "values": sorted(users)}
                            ]
                        }
                    }
                ],
                "ports": [{"port": REDIS_PORT, "protocol": "TCP"}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(cache, raw, network_policy_name(cache.name)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(cache.name)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }
