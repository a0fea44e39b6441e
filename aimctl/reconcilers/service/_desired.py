"""Desired state of an AIMService's children, as plain JSON dicts (pure functions, no I/O).

- ``kvcache-<service>`` (with ``spec.kvCache.type``): an AIMKVCache owned by the service.
- ``<service>-lmcache``: the LMCache config (``lmcache_config.yaml``) whose ``remote_url`` is the
  cache's endpoint, once the cache is Ready.
- Deployment ``<service>`` running ``spec.model.image``; wired to the cache (the ConfigMap mounted
  read-only at ``/lmcache``, the LMCache environment and the cache's password) once the cache is
  Ready. Hashes of the config and of the password in the pod template roll the pods when the
  endpoint, the config or the password changes. Hardened so that a namespace enforcing the
  ``restricted`` Pod Security Standard admits it (:data:`POD_SECURITY`,
  :data:`CONTAINER_SECURITY`, no service-account token), probed on ``/health`` (:func:`probes`),
  scheduled by the spec's nodeSelector, tolerations, affinity and priorityClassName.
- Service ``<service>`` (ClusterIP) on ``spec.port``.

How LMCache gets the password (LMCache/LMCache, read December 2026):

- ``lmcache/integration/vllm/utils.py`` ``lmcache_get_or_create_config``: with
  ``LMCACHE_CONFIG_FILE`` set, the file is loaded and then ``update_config_from_env()`` runs, so
  an environment variable overrides the file's key.
- ``lmcache/v1/config.py`` ``_update_config_from_env``: the variable for key ``remote_url`` is
  ``LMCACHE_`` + ``REMOTE_URL`` (``get_env_name``), i.e. :data:`REMOTE_URL_ENV`.
- ``lmcache/v1/storage_backend/connector/redis_adapter.py`` hands the whole URL to
  ``redis_connector.py`` ``RedisConnector``, which builds its pool with
  ``redis.ConnectionPool.from_url(url)``; redis-py takes the password from ``redis://:<pw>@host``.
  There is no other credential input for the plain ``redis://`` connector.

So the pod gets ``AIM_KVCACHE_PASSWORD`` from the cache's Secret (``secretKeyRef``) and
``LMCACHE_REMOTE_URL=redis://:$(AIM_KVCACHE_PASSWORD)@<cache>-svc:6379``, which the kubelet
expands from the earlier entry (k8s.io/kubernetes third_party/forked/golang/expansion: only
variables defined *before* the referencing one are expanded, see :func:`dependency_order`), when
the config's ``remote_url`` is the cache's Redis (:func:`remote_url_with_password`; a custom
``lmCacheConfig`` pointing elsewhere is left alone). The password is in no object the operator
writes: the ConfigMap keeps the password-less URL.
Caveat outside the operator's reach: ``redis_adapter.py`` logs the connector URL at INFO when it
creates the connector, so the inference pod's own log shows it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import yaml

from aimctl.api import quantity
from aimctl.api.v1alpha1 import AIMService
from aimctl.objects import controller_reference
from aimctl.reconcilers._common import (
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    SERVICE_CONTROLLER,
    env_vars,
)
from aimctl.reconcilers.kvcache._desired import (
    AUTH_HASH_ANNOTATION,
    AUTH_SECRET_KEY,
    SERVICE_LABEL,
    auth_secret_name,
    endpoint as cache_endpoint,
    pod_scheduling,
)
from aimctl.reconcilers.service._names import configmap_name

__all__ = [
    "CONFIG_FILE",
    "CONFIG_HASH_ANNOTATION",
    "CONFIG_KEY",
    "CONFIG_MOUNT",
    "CONFIG_VOLUME",
    "CONTAINER_SECURITY",
    "HEALTH_PATH",
    "PASSWORD_ENV",
    "POD_SECURITY",
    "PROGRESS_DEADLINE_SECONDS",
    "REMOTE_URL_ENV",
    "auth_env",
    "auto_cache",
    "dependency_order",
    "deployment",
    "labels",
    "lmcache_config",
    "lmcache_configmap",
    "lmcache_env",
    "pod_selector",
    "probes",
    "remote_url_with_password",
    "service",
]

CONFIG_KEY = "lmcache_config.yaml"
CONFIG_MOUNT = "/lmcache"
CONFIG_FILE = f"{CONFIG_MOUNT}/{CONFIG_KEY}"
CONFIG_VOLUME = "lmcache-config-volume"
CONFIG_HASH_ANNOTATION = "aim.silogen.ai/lmcache-config-hash"
ENGINE_ARGS = "AIM_ENGINE_ARGS"
_KV_TRANSFER = {"kv-transfer-config": {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}}
# The cache's password in the inference container (a secretKeyRef), and the LMCache variable
# that overrides the config file's remote_url with a URL carrying it (module docstring).
PASSWORD_ENV: Final = "AIM_KVCACHE_PASSWORD"
REMOTE_URL_ENV: Final = "LMCACHE_REMOTE_URL"

# The restricted Pod Security Standard (k8s.io/pod-security-admission policy/check_*.go:
# runAsNonRoot, seccompProfile RuntimeDefault|Localhost, allowPrivilegeEscalation false,
# capabilities drop ALL). runAsUser is left to the image: its USER must be a non-root (numeric)
# user, else the kubelet refuses to start it ("image will run as root") rather than run a root
# process.
POD_SECURITY: Final[dict[str, Any]] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY: Final[dict[str, Any]] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
# vLLM's OpenAI server answers GET /health with 200 while the engine is healthy and 503 once it
# is dead (vllm-project/vllm vllm/entrypoints/serve/instrumentator/health.py, earlier in
# vllm/entrypoints/openai/api_server.py); it listens only after the model is loaded, so a
# loading pod refuses the connection (the startup probe's budget covers it).
HEALTH_PATH: Final = "/health"
# Startup budget (see :func:`probes`): 10 s x 180 = 30 minutes to download and load a model.
STARTUP_PERIOD_SECONDS: Final = 10
STARTUP_FAILURE_THRESHOLD: Final = 180
# The Deployment's progressDeadlineSeconds: the startup budget plus 30 minutes for scheduling
# and pulling a multi-gigabyte model image.
PROGRESS_DEADLINE_SECONDS: Final = STARTUP_PERIOD_SECONDS * STARTUP_FAILURE_THRESHOLD + 1800


def labels(service: str) -> dict[str, str]:
    return {
        LABEL_NAME: "aimservice",
        LABEL_INSTANCE: service,
        LABEL_MANAGED_BY: SERVICE_CONTROLLER,
        SERVICE_LABEL: service,  # admitted by its cache's NetworkPolicy
    }


def _selector(service: str) -> dict[str, str]:
    return {LABEL_NAME: "aimservice", LABEL_INSTANCE: service}


def pod_selector(service: str) -> str:
    """The label selector of the service's pods (the Deployment's selector), as a string."""
    return ",".join(f"{k}={v}" for k, v in _selector(service).items())


def auto_cache(
    svc: AIMService, raw: dict[str, Any], name: str, live: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The AIMKVCache a service with ``spec.kvCache.type`` gets, owned by it. Only the fields
    the user set are sent; the API server fills in the defaults.

    The storage size is the larger of the service's and the ``live`` cache's: a cache grown
    directly (``kubectl edit aimkvcache``) is not shrunk back to the service's (possibly
    defaulted) size, which the cache would refuse anyway."""
    kv = svc.spec.kv_cache
    assert kv is not None
    spec: dict[str, Any] = {"kvCacheType": str(kv.type or "redis")}
    fields: tuple[tuple[str, Any], ...] = (
        ("storage", kv.storage),
        ("image", kv.image),
        ("imagePullPolicy", kv.image_pull_policy),
        ("imagePullSecrets", kv.image_pull_secrets),
        ("resources", kv.resources),
        ("redis", kv.redis),
        ("metrics", kv.metrics),
    )
    for field, value in fields:
        if value is not None:
            spec[field] = _json(value)
    live_size = (((live or {}).get("spec") or {}).get("storage") or {}).get("size")
    size = (spec.get("storage") or {}).get("size")
    if (
        size
        and isinstance(live_size, str)
        and quantity.is_quantity(live_size)
        and quantity.compare(live_size, size) > 0
    ):
        spec["storage"]["size"] = live_size
    if kv.env:
        spec["env"] = env_vars(kv.env)
    return {
        "apiVersion": raw["apiVersion"],
        "kind": "AIMKVCache",
        "metadata": {
            "name": name,
            "namespace": svc.namespace,
            "labels": {LABEL_MANAGED_BY: SERVICE_CONTROLLER, SERVICE_LABEL: svc.name},
            "ownerReferences": [controller_reference(raw)],
        },
        "spec": spec,
    }


def _json(value: Any) -> Any:
    """A model (or a list of them, or a plain value) as the JSON the API server stores."""
    if isinstance(value, list):
        return [_json(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return str(value) if isinstance(value, str) else value


def lmcache_config(svc: AIMService, endpoint: str) -> str:
    """``spec.kvCache.lmCacheConfig`` with ``{SERVICE_URL}`` replaced by the endpoint, or the
    default config. ``redis://{SERVICE_URL}`` is accepted too (the original operator's examples
    wrote it; the endpoint already carries the scheme)."""
    kv = svc.spec.kv_cache
    if kv is not None and kv.lm_cache_config:
        text = kv.lm_cache_config.replace("redis://{SERVICE_URL}", endpoint)
        return text.replace("{SERVICE_URL}", endpoint)
    return (
        "local_cpu: true\n"
        "chunk_size: 256\n"
        "max_local_cpu_size: 5.0\n"
        f"remote_url: {json.dumps(endpoint)}\n"
        'remote_serde: "naive"\n'
    )


def lmcache_configmap(svc: AIMService, raw: dict[str, Any], config: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(svc.name),
            "namespace": svc.namespace,
            "labels": labels(svc.name),
            "ownerReferences": [controller_reference(raw)],
        },
        "data": {CONFIG_KEY: config},
    }


def remote_url_with_password(config: str, cache: str, namespace: str) -> str | None:
    """The URL for :data:`REMOTE_URL_ENV`: the LMCache config's ``remote_url`` with
    ``:$(AIM_KVCACHE_PASSWORD)@`` as its userinfo, when that URL is the cache's Redis
    (``redis://<cache>-svc[.<namespace>[.svc...]][:6379][/db]``, no credentials of its own);
    else None.

    Only then does the pod's environment override the config file: a user's ``lmCacheConfig``
    pointing somewhere else (another Redis, ``lm://``, URL credentials of their own, no remote at
    all) is theirs, and overriding it would silently send their KV chunks to our cache, or
    replace their credentials. The default config and any config using ``{SERVICE_URL}`` for
    ``remote_url`` point at the cache."""
    try:
        parsed = yaml.safe_load(config)
    except yaml.YAMLError:
        return None
    url = parsed.get("remote_url") if isinstance(parsed, dict) else None
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    svc = urlsplit(cache_endpoint(cache)).hostname or ""
    qualified = f"{svc}.{namespace}.svc"
    ours = host in (svc, f"{svc}.{namespace}", qualified) or host.startswith(f"{qualified}.")
    if parts.scheme != "redis" or "@" in parts.netloc or not ours or port not in (None, 6379):
        return None
    return urlunsplit(parts._replace(netloc=f":$({PASSWORD_ENV})@{parts.netloc}"))


def auth_env(cache: str, remote_url: str | None) -> list[dict[str, Any]]:
    """The cache's password (``secretKeyRef``) and, with ``remote_url``
    (:func:`remote_url_with_password`), the LMCache URL that embeds it through
    ``$(AIM_KVCACHE_PASSWORD)``, in the order the kubelet needs."""
    env: list[dict[str, Any]] = [
        {
            "name": PASSWORD_ENV,
            "valueFrom": {
                "secretKeyRef": {"name": auth_secret_name(cache), "key": AUTH_SECRET_KEY}
            },
        }
    ]
    if remote_url is not None:
        env.append({"name": REMOTE_URL_ENV, "value": remote_url})
    return env


def lmcache_env(
    user_env: list[dict[str, Any]], auth: Iterable[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The LMCache environment (and the cache's ``auth`` variables) merged with the user's: the
    user's variables win, except that ``AIM_ENGINE_ARGS`` JSON is deep-merged (the user's keys
    win inside it). Sorted by name, except that a variable comes after those it references
    (:func:`dependency_order`)."""
    ours: dict[str, dict[str, Any]] = {
        k: {"name": k, "value": v}
        for k, v in {
            "LMCACHE_USE_EXPERIMENTAL": "True",
            "LMCACHE_CONFIG_FILE": CONFIG_FILE,
            "LMCACHE_LOG_LEVEL": "INFO",
            "PYTHONHASHSEED": "0",
        }.items()
    }
    for var in auth:
        ours[var["name"]] = var
    by_name = {e["name"]: e for e in user_env}
    engine: dict[str, Any] = dict(_KV_TRANSFER)
    user_engine = by_name.get(ENGINE_ARGS, {}).get("value")
    if user_engine:
        try:
            parsed = json.loads(user_engine)
        except ValueError:
            parsed = None
        engine = _deep_merge(engine, parsed) if isinstance(parsed, dict) else None  # type: ignore[assignment]
    merged = [var for k, var in ours.items() if k not in by_name]
    for e in user_env:
        if e["name"] == ENGINE_ARGS and engine is not None:
            continue
        merged.append(e)
    if engine is not None:
        merged.append({"name": ENGINE_ARGS, "value": json.dumps(engine, sort_keys=True)})
    return dependency_order(sorted(merged, key=lambda e: e["name"]))


# $(NAME) references, and $$ (an escaped "$", never a reference): the kubelet's syntax
# (k8s.io/kubernetes third_party/forked/golang/expansion/expand.go).
_REFERENCE = re.compile(r"\$\$|\$\(([^)]*)\)")


def _references(var: dict[str, Any]) -> set[str]:
    value = var.get("value")
    if not isinstance(value, str):
        return set()
    return {m.group(1) for m in _REFERENCE.finditer(value) if m.group(1)} - {var.get("name")}


def dependency_order(env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``env`` reordered so each variable comes after the variables of ``env`` it references
    with ``$(NAME)``, keeping the given order otherwise (a stable topological sort).

    The kubelet expands ``$(NAME)`` only from variables defined earlier in the list (later ones
    and unknown names stay literal text), so sorting by name alone would break
    ``LMCACHE_REMOTE_URL=...$(AIM_KVCACHE_PASSWORD)...``, and any user variable referencing a
    later one. A cycle cannot be satisfied; its members keep the given order."""
    names = {e["name"] for e in env}
    pending = list(env)
    placed: set[str] = set()
    out: list[dict[str, Any]] = []
    while pending:
        # The first placeable variable; in a cycle nothing is, and the first is taken as given.
        i = next((j for j, v in enumerate(pending) if (_references(v) & names) <= placed), 0)
        var = pending.pop(i)
        out.append(var)
        if not any(e["name"] == var["name"] for e in pending):
            placed.add(var["name"])
    return out


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def probes(port: str = "http") -> dict[str, dict[str, Any]]:
    """Startup, readiness and liveness probes on ``GET /health`` (:data:`HEALTH_PATH`).

    - startup: every 10 s, up to 180 failures: 30 minutes to download and load a model before
      the kubelet gives up and restarts the container; liveness and readiness wait for it.
    - readiness: every 10 s, 3 failures (30 s) take the pod out of the Service, so traffic goes
      only to a loaded model.
    - liveness: conservative, every 30 s with a 10 s timeout, 5 failures: 2.5 minutes without
      an answer before a restart, because a restart reloads the whole model and a busy engine
      can answer slowly.
    """

    def http(period: int, timeout: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": HEALTH_PATH, "port": port},
            "periodSeconds": period,
            "timeoutSeconds": timeout,
            "failureThreshold": failures,
        }

    return {
        "startupProbe": http(STARTUP_PERIOD_SECONDS, 5, STARTUP_FAILURE_THRESHOLD),
        "readinessProbe": http(10, 5, 3),
        "livenessProbe": http(30, 10, 5),
    }


def deployment(
    svc: AIMService,
    raw: dict[str, Any],
    config: str | None,
    *,
    cache: str | None = None,
    auth_hash: str | None = None,
) -> dict[str, Any]:
    """The inference Deployment; wired to the cache when ``config`` is given.

    With ``cache`` (the cache's name) the pod also gets the cache's password
    (:func:`auth_env`; the URL override only when ``config``'s ``remote_url`` is the cache's
    Redis, :func:`remote_url_with_password`), and ``auth_hash`` (the Secret's
    ``password_hash``) in the pod template, so a new password rolls the pods."""
    user_env = env_vars(svc.spec.env)
    container: dict[str, Any] = {
        "name": "inference",
        "image": svc.spec.model.image,
        "ports": [{"name": "http", "containerPort": svc.spec.port, "protocol": "TCP"}],
        **probes("http"),
        "securityContext": copy.deepcopy(CONTAINER_SECURITY),
    }
    if svc.spec.resources is not None:
        res = svc.spec.resources.model_dump(by_alias=True, exclude_none=True, mode="json")
        container["resources"] = {
            kind: {k: quantity.format_quantity(v) for k, v in values.items()}
            for kind, values in res.items()
            if isinstance(values, dict)
        }
    pod_meta: dict[str, Any] = {"labels": labels(svc.name)}
    pod_spec: dict[str, Any] = {
        # The model server never calls the Kubernetes API: no token to steal.
        "automountServiceAccountToken": False,
        "securityContext": copy.deepcopy(POD_SECURITY),
        **pod_scheduling(svc.spec),
        "containers": [container],
    }
    if config is not None:
        auth = (
            auth_env(cache, remote_url_with_password(config, cache, svc.namespace))
            if cache is not None
            else []
        )
        container["env"] = lmcache_env(user_env, auth)
        container["volumeMounts"] = [
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_MOUNT, "readOnly": True}
        ]
        pod_spec["volumes"] = [
            {
                "name": CONFIG_VOLUME,
                "configMap": {
                    "name": configmap_name(svc.name),
                    "items": [{"key": CONFIG_KEY, "path": CONFIG_KEY}],
                },
            }
        ]
        annotations = {CONFIG_HASH_ANNOTATION: hashlib.sha256(config.encode()).hexdigest()[:16]}
        if auth_hash is not None:
            annotations[AUTH_HASH_ANNOTATION] = auth_hash
        pod_meta["annotations"] = annotations
    elif user_env:
        container["env"] = dependency_order(user_env)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": svc.name,
            "namespace": svc.namespace,
            "labels": labels(svc.name),
            "ownerReferences": [controller_reference(raw)],
        },
        "spec": {
            "replicas": svc.spec.replicas,
            # Longer than the startup probe's 30 minutes plus the pull of a large image: the
            # default 600 s would report ProgressDeadlineExceeded for a model still loading.
            "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            "selector": {"matchLabels": _selector(svc.name)},
            "template": {"metadata": pod_meta, "spec": pod_spec},
        },
    }


def service(svc: AIMService, raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": svc.name,
            "namespace": svc.namespace,
            "labels": labels(svc.name),
            "ownerReferences": [controller_reference(raw)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(svc.name),
            "ports": [
                {"name": "http", "port": svc.spec.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
