"""Small accessors on object dicts (``metadata`` fields) shared by every other helper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["api_group", "key_of", "labels_of", "meta", "name_of", "namespace_of", "uid_of"]


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    # dict first: cached objects are dict subclasses, for which the Mapping check alone takes
    # the slower ABCMeta path (this runs for every object every reconcile reads).
    return m if isinstance(m, (dict, Mapping)) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace", "") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid", ""))


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels = meta(obj).get("labels")
    return labels if isinstance(labels, (dict, Mapping)) else {}


def key_of(obj: Mapping[str, Any]) -> str:
    """The cache key: ``namespace/name``, or ``name`` for cluster-scoped objects."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def api_group(api_version: str) -> str:
    """The group of an apiVersion: ``""`` for ``v1``, ``apps`` for ``apps/v1``."""
    return api_version.rpartition("/")[0]
