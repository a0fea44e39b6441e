"""Desired state of an AIMService's children, as plain JSON dicts (pure functions, no I/O).

- ``kvcache-<service>`` (with ``spec.kvCache.type``): an AIMKVCache owned by the service.
- ``<service>-lmcache``: the LMCache config (``lmcache_config.yaml``) whose ``remote_url`` is the
  cache's endpoint, once the cache is Ready.
- Deployment ``<service>`` running ``spec.model.image``; wired to the cache (the ConfigMap mounted
  read-only at ``/lmcache`` and the LMCache environment) once the cache is Ready. A hash of the
  config in the pod template rolls the pods when the endpoint or the config changes.
- Service ``<service>`` (ClusterIP) on ``spec.port``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

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
from aimctl.reconcilers.kvcache._desired import SERVICE_LABEL
from aimctl.reconcilers.service._names import configmap_name

__all__ = [
    "CONFIG_FILE",
    "CONFIG_HASH_ANNOTATION",
    "CONFIG_KEY",
    "CONFIG_MOUNT",
    "CONFIG_VOLUME",
    "auto_cache",
    "deployment",
    "labels",
    "lmcache_config",
    "lmcache_configmap",
    "lmcache_env",
    "service",
]

CONFIG_KEY = "lmcache_config.yaml"
CONFIG_MOUNT = "/lmcache"
CONFIG_FILE = f"{CONFIG_MOUNT}/{CONFIG_KEY}"
CONFIG_VOLUME = "lmcache-config-volume"
CONFIG_HASH_ANNOTATION = "aim.silogen.ai/lmcache-config-hash"
ENGINE_ARGS = "AIM_ENGINE_ARGS"
_KV_TRANSFER = {"kv-transfer-config": {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}}


def labels(service: str) -> dict[str, str]:
    return {
        LABEL_NAME: "aimservice",
        LABEL_INSTANCE: service,
        LABEL_MANAGED_BY: SERVICE_CONTROLLER,
        SERVICE_LABEL: service,  # admitted by its cache's NetworkPolicy
    }


def _selector(service: str) -> dict[str, str]:
    return {LABEL_NAME: "aimservice", LABEL_INSTANCE: service}


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
    for field, value in (("storage", kv.storage), ("image", kv.image), ("resources", kv.resources)):
        if value is not None:
            spec[field] = (
                value
                if isinstance(value, str)
                else value.model_dump(by_alias=True, exclude_none=True, mode="json")
            )
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


def lmcache_env(user_env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The LMCache environment merged with the user's: the user's variables win, except that
    ``AIM_ENGINE_ARGS`` JSON is deep-merged (the user's keys win inside it)."""
    ours = {
        "LMCACHE_USE_EXPERIMENTAL": "True",
        "LMCACHE_CONFIG_FILE": CONFIG_FILE,
        "LMCACHE_LOG_LEVEL": "INFO",
        "PYTHONHASHSEED": "0",
    }
    by_name = {e["name"]: e for e in user_env}
    engine: dict[str, Any] = dict(_KV_TRANSFER)
    user_engine = by_name.get(ENGINE_ARGS, {}).get("value")
    if user_engine:
        try:
            parsed = json.loads(user_engine)
        except ValueError:
            parsed = None
        engine = _deep_merge(engine, parsed) if isinstance(parsed, dict) else None  # type: ignore[assignment]
    merged = [{"name": k, "value": v} for k, v in ours.items() if k not in by_name]
    for e in user_env:
        if e["name"] == ENGINE_ARGS and engine is not None:
            continue
        merged.append(e)
    if engine is not None:
        merged.append({"name": ENGINE_ARGS, "value": json.dumps(engine, sort_keys=True)})
    return sorted(merged, key=lambda e: e["name"])


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def deployment(svc: AIMService, raw: dict[str, Any], config: str | None) -> dict[str, Any]:
    """The inference Deployment; wired to the cache when ``config`` is given."""
    user_env = env_vars(svc.spec.env)
    container: dict[str, Any] = {
        "name": "inference",
        "image": svc.spec.model.image,
        "ports": [{"name": "http", "containerPort": svc.spec.port, "protocol": "TCP"}],
    }
    if svc.spec.resources is not None:
        res = svc.spec.resources.model_dump(by_alias=True, exclude_none=True, mode="json")
        container["resources"] = {
            kind: {k: quantity.format_quantity(v) for k, v in values.items()}
            for kind, values in res.items()
            if isinstance(values, dict)
        }
    pod_meta: dict[str, Any] = {"labels": labels(svc.name)}
    pod_spec: dict[str, Any] = {"containers": [container]}
    if config is not None:
        container["env"] = lmcache_env(user_env)
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
        pod_meta["annotations"] = {
            CONFIG_HASH_ANNOTATION: hashlib.sha256(config.encode()).hexdigest()[:16]
        }
    elif user_env:
        container["env"] = user_env
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
