"""AIMKVCache: a KV-cache backend (one Redis StatefulSet with a volume, and a Service).

Defaults are filled in by the API server (the CRD's ``default:``), so an object read back shows
them: an empty spec becomes ``kvCacheType: redis`` with ``storage: {size: 1Gi, accessModes:
[ReadWriteOnce]}``. The Python defaults are the same values, so a model built in code matches
what the server would store.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from aimctl.api._resource import PrinterColumn, ResourceInfo
from aimctl.api.v1alpha1._common import (
    ENV_LIST_SCHEMA,
    EnvVar,
    KVCacheType,
    ResourceRequirements,
    StorageSpec,
)
from aimctl.api.v1alpha1._meta import (
    CONDITIONS_LIST_SCHEMA,
    DNS1035_LABEL,
    GROUP,
    VERSION,
    ApiModel,
    Condition,
    CustomResource,
    cel_rules,
)
from aimctl.api.v1alpha1._pod import (
    MAX_MEMORY_RULES,
    LocalObjectReference,
    MetricsSpec,
    PodScheduling,
    PullPolicy,
    RedisConfig,
)

__all__ = [
    "AIMKVCACHE_KIND",
    "AIMKVCACHE_MAX_NAME_LENGTH",
    "AIMKVCACHE_PLURAL",
    "AIMKVCACHE_SINGULAR",
    "AIMKVCache",
    "AIMKVCacheConditionType",
    "AIMKVCacheSpec",
    "AIMKVCacheStatus",
    "KVCacheStatus",
]

AIMKVCACHE_KIND = "AIMKVCache"
AIMKVCACHE_PLURAL = "aimkvcaches"
AIMKVCACHE_SINGULAR = "aimkvcache"
# Children named after a cache (reconcilers/kvcache/_desired.py): StatefulSet <cache>-statefulset,
# its pod <cache>-statefulset-0, PVC redis-data-<cache>-statefulset-0, Service <cache>-svc,
# NetworkPolicy <cache>-netpol, and the label app.kubernetes.io/instance=<cache>. The tightest is
# the StatefulSet: at most 52 characters, because its pods carry the controller-revision-hash
# label "<statefulset>-<hash of up to 10 chars>", a label value of at most 63.
AIMKVCACHE_MAX_NAME_LENGTH = 52 - len("-statefulset")


class KVCacheStatus(StrEnum):
    """Summary state of an AIMKVCache (``status.status``)."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    FAILED = "Failed"


class AIMKVCacheConditionType(StrEnum):
    """Condition types an AIMKVCache reports."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    STORAGE_READY = "StorageReady"


class AIMKVCacheSpec(PodScheduling):
    """Desired state of a KV cache."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*MAX_MEMORY_RULES))

    kv_cache_type: KVCacheType = Field(
        default=KVCacheType.REDIS,
        alias="kvCacheType",
        description="Backend of the cache. Only redis is supported. Default redis.",
    )
    image: str | None = Field(
        default=None,
        description="Container image of the backend. Unset means the operator's default Redis "
        "image (a patched Redis 7.2 from docker.io/library).",
        min_length=1,
    )
    image_pull_policy: PullPolicy | None = Field(
        default=None,
        description="When to pull the image: Always, IfNotPresent or Never. Unset means the "
        "Kubernetes default (Always for :latest, else IfNotPresent).",
    )
    image_pull_secrets: list[LocalObjectReference] | None = Field(
        default=None,
        description="Secrets in the namespace used to pull the images (a private registry or "
        "mirror).",
        max_length=16,
    )
    redis: RedisConfig | None = Field(
        default=None,
        description="Redis memory bound, eviction policy and persistence. Unset means the "
        "defaults: maxmemory 75% of the memory limit, allkeys-lru, RDB snapshots.",
    )
    metrics: MetricsSpec | None = Field(
        default=None,
        description="Prometheus metrics of Redis through a redis_exporter sidecar.",
    )
    env: list[EnvVar] | None = Field(
        default=None,
        description="Environment variables of the backend container.",
        json_schema_extra=ENV_LIST_SCHEMA,
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Compute resources of the backend container. Unset means requests cpu "
        "500m and memory 1Gi, limit memory 1Gi (no cpu limit); set without memory, memory 1Gi is "
        "added as request and limit. Redis's maxmemory is derived from the memory limit.",
    )
    storage: StorageSpec = Field(
        default_factory=StorageSpec,
        description="Persistent storage of the backend. Defaults: size 1Gi, the cluster's "
        "default storage class, access modes [ReadWriteOnce].",
        json_schema_extra={"default": {}},
    )


class AIMKVCacheStatus(ApiModel):
    """Observed state of a KV cache, written by the operator."""

    observed_generation: int | None = Field(
        default=None,
        description="The .metadata.generation this status was computed from.",
        ge=0,
        json_schema_extra={"format": "int64"},
    )
    status: KVCacheStatus | None = Field(
        default=None, description="Summary: Pending, Progressing, Ready or Failed."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing and StorageReady, with reasons and messages.",
        json_schema_extra=CONDITIONS_LIST_SCHEMA,
    )
    replicas: int | None = Field(
        default=None,
        description="Replicas of the backend StatefulSet.",
        ge=0,
        json_schema_extra={"format": "int32"},
    )
    ready_replicas: int | None = Field(
        default=None,
        description="Replicas of the backend that are ready.",
        ge=0,
        json_schema_extra={"format": "int32"},
    )
    endpoint: str | None = Field(
        default=None,
        description="Where clients connect, for example redis://shared-cache-svc:6379.",
    )
    stateful_set_name: str | None = Field(
        default=None, description="Name of the backend's StatefulSet."
    )
    service_name: str | None = Field(default=None, description="Name of the backend's Service.")
    storage_size: str | None = Field(
        default=None, description="Size of the volume the backend was given, for example 1Gi."
    )
    last_error: str | None = Field(
        default=None, description="The last reconcile error; empty once a reconcile succeeds."
    )
    users: list[str] = Field(
        default_factory=list,
        description="Names of the AIMServices in this namespace that use this cache.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


_NAME_RULES = [
    {
        "rule": f"self.metadata.name.size() <= {AIMKVCACHE_MAX_NAME_LENGTH}",
        "fieldPath": ".metadata.name",
        "message": f"AIMKVCache names may have at most {AIMKVCACHE_MAX_NAME_LENGTH} characters: "
        "its StatefulSet <name>-statefulset may have at most 52, so that the "
        "controller-revision-hash label of its pods fits in 63; choose a shorter name",
    },
    {
        "rule": f"self.metadata.name.matches('{DNS1035_LABEL}')",
        "fieldPath": ".metadata.name",
        "message": "AIMKVCache names must be DNS-1035 labels: lowercase letters, digits and '-', "
        "starting with a letter and ending with a letter or digit (its Service <name>-svc is "
        "named after it); choose another name",
    },
]


def _name_errors(name: str) -> list[str]:
    errors = []
    if len(name) > AIMKVCACHE_MAX_NAME_LENGTH:
        errors.append(_NAME_RULES[0]["message"])
    if not re.fullmatch(DNS1035_LABEL, name):
        errors.append(_NAME_RULES[1]["message"])
    return errors


class AIMKVCache(CustomResource):
    """A KV cache for AIM inference services: a Redis server with persistent storage.

    Services use it through spec.kvCache.name (shared) or get their own through
    spec.kvCache.type.
    """

    model_config = ConfigDict(json_schema_extra=cel_rules(*_NAME_RULES))

    resource = ResourceInfo(
        group=GROUP,
        version=VERSION,
        kind=AIMKVCACHE_KIND,
        plural=AIMKVCACHE_PLURAL,
        singular=AIMKVCACHE_SINGULAR,
        short_names=("aimkvc",),
        categories=("aim", "all"),
        printer_columns=(
            PrinterColumn("Type", ".spec.kvCacheType", description="Cache backend."),
            PrinterColumn("Status", ".status.status", description="Summary state."),
            PrinterColumn("Ready", ".status.readyReplicas", "integer", description="Ready pods."),
            PrinterColumn("Endpoint", ".status.endpoint", priority=1, description="Client URL."),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
        ),
    )

    spec: AIMKVCacheSpec = Field(
        default_factory=AIMKVCacheSpec,
        description="Desired state. May be empty: every field has a default.",
        json_schema_extra={"default": {}},
    )
    status: AIMKVCacheStatus | None = Field(default=None, description="Observed state.")

    @staticmethod
    def name_errors(name: str) -> list[str]:
        """What the API server says about an AIMKVCache named ``name``, rule by rule (the CRD's
        name rules, mirrored); empty when the name is fine."""
        return _name_errors(name)

    @model_validator(mode="after")
    def _name_fits_children(self) -> AIMKVCache:
        # Mirrors the CRD's name rules, for objects stored before they existed.
        errors = _name_errors(self.name) if self.metadata.name is not None else []
        if errors:
            raise ValueError("; ".join(errors))
        return self
