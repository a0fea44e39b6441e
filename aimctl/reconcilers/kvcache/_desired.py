"""Desired state of a cache's children, as plain JSON dicts (pure functions, no I/O).

Every child carries the guide's labels, so ``kubectl ... -l app.kubernetes.io/name=aimkvcache``
and ``-l app.kubernetes.io/managed-by=aimkvcache-controller`` find them, and a controller owner
reference to the cache, so garbage collection removes them with it.

Children of cache ``<name>``:
- Secret ``<name>-auth``: the Redis password (key ``password``), created once, never
  overwritten (:func:`auth_secret`);
- StatefulSet ``<name>-statefulset`` (one replica: pod ``<name>-statefulset-0``; PVC
  ``redis-data-<name>-statefulset-0`` from the ``redis-data`` volumeClaimTemplate);
- Service ``<name>-svc`` (ClusterIP, 6379), so the endpoint is ``redis://<name>-svc:6379``;
- NetworkPolicy ``<name>-netpol``: only pods of the AIMServices using the cache reach Redis.

The Redis configuration itself (maxmemory, eviction, persistence, the probe command) is
:mod:`._redis`; this module puts it into Kubernetes objects.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any, Final

from aimctl.api import quantity
from aimctl.api.v1alpha1 import AIMKVCache, PodScheduling
from aimctl.objects import controller_reference
from aimctl.reconcilers._common import (
    KVCACHE_CONTROLLER,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    env_vars,
)
from aimctl.reconcilers.kvcache import _redis
from aimctl.reconcilers.kvcache._redis import DATA_DIR, DEFAULT_RESOURCES, REDIS_PORT

__all__ = [
    "AUTH_HASH_ANNOTATION",
    "AUTH_SECRET_KEY",
    "DATA_VOLUME",
    "DEFAULT_EXPORTER_IMAGE",
    "DEFAULT_IMAGE",
    "DEFAULT_RESOURCES",
    "EXPORTER_PASSWORDS_KEY",
    "EXPORTER_REDIS_ADDR",
    "METRICS_PORT",
    "REDIS_PORT",
    "REDIS_UID",
    "SERVICE_LABEL",
    "auth_secret",
    "auth_secret_name",
    "endpoint",
    "labels",
    "network_policy",
    "network_policy_name",
    "new_password",
    "password_hash",
    "pod_scheduling",
    "pvc_name",
    "selector_labels",
    "service",
    "service_name",
    "statefulset",
    "statefulset_name",
]

# Pinned and fully qualified: a cache must not change Redis version because a tag moved, nor
# pull from whatever registry a node's runtime defaults to. 7.2.12 is the newest patch of the
# BSD-licensed 7.2 line; it fixes CVE-2025-49844, -46817, -46818, -46819 and CVE-2025-21605,
# which redis:7.2.4 (the original operator's) has. Bump deliberately.
DEFAULT_IMAGE: Final = "docker.io/library/redis:7.2.12"
DEFAULT_EXPORTER_IMAGE: Final = "docker.io/oliver006/redis_exporter:v1.80.0"
METRICS_PORT: Final = 9121
REDIS_UID: Final = 999  # the redis user and group of the official image
DATA_VOLUME: Final = "redis-data"
_EXPORTER_AUTH_VOLUME: Final = "exporter-auth"
# Pods of AIMServices carry this label (value: the service name); the NetworkPolicy admits them.
SERVICE_LABEL: Final = "aim.silogen.ai/service"

# The password Secret: one key, hex text (URL-safe: consumers put it in a redis:// URL).
AUTH_SECRET_KEY: Final = "password"
# The redis_exporter's password file, in the same Secret (see :func:`_exporter`).
EXPORTER_PASSWORDS_KEY: Final = "redis-exporter-passwords.json"
EXPORTER_REDIS_ADDR: Final = f"redis://localhost:{REDIS_PORT}"
# On the pod templates of Redis and of its consumers: a new password (the Secret deleted and
# re-created) changes it, so both roll and agree on the password again.
AUTH_HASH_ANNOTATION: Final = "aim.silogen.ai/auth-hash"

# Startup: Redis answers -LOADING (the probe fails) until its RDB/AOF is in memory. Budget
# 2 s x 900 = 30 minutes: loading is bounded by the disk, ~50-100 MB/s on a slow network
# volume, so a 48Gi dataset (a 64Gi limit at 75%) loads in 8-16 minutes. Too short a budget
# kills Redis mid-load and loads again: a crash loop; too long only delays the diagnosis of a
# Redis that never answers. The period is short because the kubelet's first check comes up to
# one period after the container starts: on the real node a 10 s period made every start and
# restart ~10 s slower (Quick Start Ready in 17-20 s); the check is one redis-cli exec.
_STARTUP_PERIOD_SECONDS: Final = 2
_STARTUP_FAILURE_THRESHOLD: Final = 900


def statefulset_name(cache: str) -> str:
    return f"{cache}-statefulset"


def service_name(cache: str) -> str:
    return f"{cache}-svc"


def network_policy_name(cache: str) -> str:
    return f"{cache}-netpol"


def auth_secret_name(cache: str) -> str:
    """The cache's password Secret, ``<cache>-auth``."""
    return f"{cache}-auth"


def pvc_name(cache: str) -> str:
    return f"{DATA_VOLUME}-{statefulset_name(cache)}-0"


def endpoint(cache: str) -> str:
    """The password-less URL (status, ConfigMaps); consumers add the password from the Secret."""
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


# --- the password ----------------------------------------------------------------------------


def new_password() -> str:
    """A new Redis password: 32 random bytes as 64 hex characters (URL-safe, no quoting in a
    ``redis://:<password>@host`` URL or a redis.conf line)."""
    return secrets.token_hex(32)


def password_hash(secret: Mapping[str, Any] | None) -> str | None:
    """The first 16 hex digits of the sha256 of the Secret's password (the value of
    :data:`AUTH_HASH_ANNOTATION`), or None when the Secret, its key or a decodable value is
    missing. Only the hash leaves the Secret: it identifies the password, it does not reveal it."""
    data = (secret or {}).get("data") or {}
    value = data.get(AUTH_SECRET_KEY) if isinstance(data, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(decoded).hexdigest()[:16]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def auth_secret(cache: AIMKVCache, raw: dict[str, Any], password: str) -> dict[str, Any]:
    """The cache's password Secret (``type: Opaque``, owned by the cache, its labels).

    ``data`` (base64), not ``stringData``: the server stores only ``data``, so the object read
    back compares equal to this one. Two keys, both from ``password``:
    :data:`AUTH_SECRET_KEY` (Redis, probes and consumers) and :data:`EXPORTER_PASSWORDS_KEY`
    (the exporter's password file, which scopes the password to this Redis). Create it only
    when absent; never apply it over an existing one (that would change the password under a
    running Redis)."""
    passwords = json.dumps({EXPORTER_REDIS_ADDR: password}, separators=(",", ":"))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(cache, raw, auth_secret_name(cache.name)),
        "type": "Opaque",
        "data": {AUTH_SECRET_KEY: _b64(password), EXPORTER_PASSWORDS_KEY: _b64(passwords)},
    }


def _password_env(name: str, cache: str) -> dict[str, Any]:
    return {
        "name": name,
        "valueFrom": {"secretKeyRef": {"name": auth_secret_name(cache), "key": AUTH_SECRET_KEY}},
    }


# --- the pod ---------------------------------------------------------------------------------


def _container_security() -> dict[str, Any]:
    # Restricted Pod Security Standard (k8s.io/pod-security-admission policy/
    # check_allowPrivilegeEscalation.go, check_capabilities_restricted.go,
    # check_runAsNonRoot.go, check_seccompProfile_restricted.go), plus a read-only root:
    # Redis writes only /data (its volume); the exporter writes nothing.
    return {
        "runAsNonRoot": True,
        "runAsUser": REDIS_UID,
        "runAsGroup": REDIS_UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_scheduling(spec: PodScheduling) -> dict[str, Any]:
    """The pod-spec fields of ``spec``'s scheduling settings, only those set (nodeSelector,
    tolerations, affinity, priorityClassName), in the server's shape."""
    out: dict[str, Any] = {}
    if spec.node_selector:
        out["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        out["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in spec.tolerations
        ]
    if spec.affinity:
        out["affinity"] = copy.deepcopy(spec.affinity)  # the caller may not mutate the spec
    if spec.priority_class_name:
        out["priorityClassName"] = spec.priority_class_name
    return out


def _probe_exec() -> dict[str, Any]:
    return {"exec": {"command": list(_redis.PROBE_COMMAND)}}


def _redis_container(cache: AIMKVCache) -> dict[str, Any]:
    name = cache.name
    reserved = {_redis.PASSWORD_ENV, "REDISCLI_AUTH"}
    # The password first; the user's env may not replace it (the Secret is the one source of
    # the password Redis, probes and consumers agree on), and duplicate names would make the
    # server-side apply fail (env is a list map keyed by name).
    env = [
        _password_env(_redis.PASSWORD_ENV, name),
        # redis-cli (the probes) reads its password from REDISCLI_AUTH: exec probes run with no
        # shell and are not $(VAR)-expanded, so it cannot be an argument.
        _password_env("REDISCLI_AUTH", name),
        *(e for e in env_vars(cache.spec.env) if e["name"] not in reserved),
    ]
    container: dict[str, Any] = {
        "name": "redis",
        "image": cache.spec.image or DEFAULT_IMAGE,
        "command": ["redis-server"],
        "args": _redis.redis_args(cache),
        "env": env,
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "resources": _redis.container_resources(cache),
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": DATA_DIR}],
        "startupProbe": {
            **_probe_exec(),
            "periodSeconds": _STARTUP_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": _STARTUP_FAILURE_THRESHOLD,
        },
        # Ready = answers PING authenticated and has loaded its data.
        "readinessProbe": {
            **_probe_exec(),
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        # Alive = the port accepts connections. Deliberately weaker than readiness: a Redis
        # busy with a slow command or a fork must not be killed (a restart of a persistent
        # cache reloads everything), only a process that stopped listening.
        "livenessProbe": {
            "tcpSocket": {"port": REDIS_PORT},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "securityContext": _container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if cache.spec.image_pull_policy is not None:
        container["imagePullPolicy"] = str(cache.spec.image_pull_policy)
    return container


def _exporter(cache: AIMKVCache) -> dict[str, Any]:
    """The redis_exporter sidecar.

    The password reaches it as a password *file* mapping only ``redis://localhost:6379`` to it,
    not as ``REDIS_PASSWORD``: the exporter's ``/scrape?target=<any host>`` endpoint connects
    with a copy of its options, ``Password`` included (oliver006/redis_exporter:
    exporter/http.go ``scrapeHandler``, exporter/redis.go ``configureOptions``), so with the
    env var anyone reaching port 9121 could make it send the password to a host of their
    choosing. A password-file entry is used only for its own address.

    No readiness probe: a pod is Ready only when all its containers are, and an exporter that
    hangs must not take the cache out of its Service (one that crashes does, while it is down:
    the kubelet counts a container that is not running as not ready).
    """
    metrics = cache.spec.metrics
    container: dict[str, Any] = {
        "name": "metrics",
        "image": (metrics.image if metrics else None) or DEFAULT_EXPORTER_IMAGE,
        "env": [
            {"name": "REDIS_ADDR", "value": EXPORTER_REDIS_ADDR},
            {"name": "REDIS_PASSWORD_FILE", "value": "/etc/redis-exporter/passwords.json"},
        ],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"memory": "64Mi"},
        },
        "volumeMounts": [
            {"name": _EXPORTER_AUTH_VOLUME, "mountPath": "/etc/redis-exporter", "readOnly": True}
        ],
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": METRICS_PORT},
            "periodSeconds": 30,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": _container_security(),
    }
    if cache.spec.image_pull_policy is not None:
        container["imagePullPolicy"] = str(cache.spec.image_pull_policy)
    return container


def _metrics_enabled(cache: AIMKVCache) -> bool:
    return cache.spec.metrics is not None and cache.spec.metrics.enabled


def statefulset(
    cache: AIMKVCache,
    raw: dict[str, Any],
    *,
    storage_size: str | None = None,
    auth_hash: str | None = None,
) -> dict[str, Any]:
    """The Redis StatefulSet.

    ``storage_size`` overrides the template's size (used to keep a live StatefulSet's immutable
    template while its PVC is being expanded). ``auth_hash`` (:func:`password_hash` of the
    Secret) goes on the pod template as :data:`AUTH_HASH_ANNOTATION`, so a new password rolls
    the pod; None leaves the annotation out.

    ``podManagementPolicy: Parallel``: with OrderedReady a pod that never becomes Ready (bad
    image, OOM loop) blocks the rolling update that would fix it (kubernetes/kubernetes#67250;
    pkg/controller/statefulset/stateful_set_control.go waits for every pod to be Running and
    Ready before it deletes one for update). The field is immutable: an existing OrderedReady
    StatefulSet must be re-created (orphaning its pod and PVC), which the reconciler does.
    """
    name = cache.name
    storage = cache.spec.storage
    claim_spec: dict[str, Any] = {
        "accessModes": [str(m) for m in storage.access_modes],
        "resources": {
            "requests": {"storage": quantity.format_quantity(storage_size or storage.size)}
        },
    }
    if storage.storage_class_name is not None:
        claim_spec["storageClassName"] = storage.storage_class_name
    containers = [_redis_container(cache)]
    volumes: list[dict[str, Any]] = []
    if _metrics_enabled(cache):
        containers.append(_exporter(cache))
        volumes.append(
            {
                "name": _EXPORTER_AUTH_VOLUME,
                "secret": {
                    "secretName": auth_secret_name(name),
                    "items": [{"key": EXPORTER_PASSWORDS_KEY, "path": "passwords.json"}],
                    "defaultMode": 0o440,  # owner and fsGroup (999) read, nobody else
                },
            }
        )
    pod: dict[str, Any] = {
        # Nothing in the pod talks to the Kubernetes API: no token to steal.
        "automountServiceAccountToken": False,
        # Nothing reads the <SERVICE>_HOST/_PORT variables; a namespace with many Services
        # would otherwise fill the environment (and REDIS_* names are the exporter's).
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": REDIS_UID,
            "runAsGroup": REDIS_UID,
            "fsGroup": REDIS_UID,  # the volume becomes writable by the redis group
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
        **pod_scheduling(cache.spec),
    }
    if volumes:
        pod["volumes"] = volumes
    if cache.spec.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s.name} for s in cache.spec.image_pull_secrets]
    template_meta: dict[str, Any] = {"labels": labels(name)}
    if auth_hash is not None:
        template_meta["annotations"] = {AUTH_HASH_ANNOTATION: auth_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(cache, raw, statefulset_name(name)),
        "spec": {
            "replicas": 1,
            "serviceName": service_name(name),
            "podManagementPolicy": "Parallel",
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete",
                "whenScaled": "Retain",
            },
            "selector": {"matchLabels": selector_labels(name)},
            "template": {"metadata": template_meta, "spec": pod},
            "volumeClaimTemplates": [
                {"metadata": {"name": DATA_VOLUME, "labels": labels(name)}, "spec": claim_spec}
            ],
        },
    }


def service(cache: AIMKVCache, raw: dict[str, Any]) -> dict[str, Any]:
    """The cache's ClusterIP Service: Redis on 6379, and the exporter's ``metrics`` port 9121
    when metrics are enabled (what a ServiceMonitor selects)."""
    name = cache.name
    ports = [{"name": "redis", "port": REDIS_PORT, "targetPort": REDIS_PORT, "protocol": "TCP"}]
    if _metrics_enabled(cache):
        ports.append(
            {"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT, "protocol": "TCP"}
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(cache, raw, service_name(name)),
        "spec": {"type": "ClusterIP", "selector": selector_labels(name), "ports": ports},
    }


def network_policy(cache: AIMKVCache, raw: dict[str, Any], users: list[str]) -> dict[str, Any]:
    """Admit Redis traffic only from pods of the services using the cache (none: deny all).

    With metrics enabled, port 9121 is admitted from anywhere (no ``from``: Prometheus usually
    runs in another namespace, or on the host network). The exporter there holds no usable
    password for other hosts (see :func:`_exporter`). The label fence is weak (any pod that
    may set labels can claim one) and needs a policy-enforcing CNI: the password is the fence.
    """
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
    if _metrics_enabled(cache):
        ingress.append({"ports": [{"port": METRICS_PORT, "protocol": "TCP"}]})
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
