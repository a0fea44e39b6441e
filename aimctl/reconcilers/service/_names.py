"""Which cache a service uses, read straight from the object dict (no model parsing), because
both controllers ask it for every service on hot paths (mappers, user lists)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aimctl.api.v1alpha1 import AUTO_KVCACHE_PREFIX

__all__ = ["cache_key", "cache_name_of", "configmap_name", "uses_by_name"]


def cache_name_of(service: Mapping[str, Any]) -> str | None:
    """``spec.kvCache.name``, ``kvcache-<service>`` with ``spec.kvCache.type``, else None."""
    spec = service.get("spec")
    kv = spec.get("kvCache") if isinstance(spec, Mapping) else None
    if not isinstance(kv, Mapping):
        return None  # not requested, or garbage stored before a schema change
    name = kv.get("name")
    if name:
        return str(name)
    return f"{AUTO_KVCACHE_PREFIX}{(service.get('metadata') or {}).get('name', '')}"


def cache_key(service: Mapping[str, Any]) -> tuple[str, ...]:
    """``<namespace>/<cache>`` of the AIMKVCache a service uses: the index function of
    ``SERVICES_BY_CACHE`` (none without ``spec.kvCache``)."""
    name = cache_name_of(service)
    ns = (service.get("metadata") or {}).get("namespace") or ""
    return (f"{ns}/{name}",) if name else ()


def uses_by_name(service: Mapping[str, Any]) -> bool:
    """Whether the service names its cache (``spec.kvCache.name``) rather than owning one."""
    spec = service.get("spec")
    kv = spec.get("kvCache") if isinstance(spec, Mapping) else None
    return isinstance(kv, Mapping) and bool(kv.get("name"))


def configmap_name(service: str) -> str:
    return f"{service}-lmcache"
