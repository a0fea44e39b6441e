"""AIMService: an inference server for one model image, optionally wired to a KV cache.

``spec.kvCache`` takes exactly one of:

- ``type``: the service gets its own cache, the AIMKVCache ``kvcache-<service name>``, created with
  the cache settings given here (``storage``, ``image``, ``env``, ``resources``);
- ``name``: the service uses an existing AIMKVCache of that name in its namespace, typically
  shared; its settings live on the AIMKVCache, so the cache settings are rejected here.

``lmCacheConfig`` (the LMCache configuration file of the inference server) goes with either.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from aimctl.api._resource import PrinterColumn, ResourceInfo
from aimctl.api.v1alpha1._aimkvcache import AIMKVCACHE_MAX_NAME_LENGTH
from aimctl.api.v1alpha1._common import (
    ENV_LIST_SCHEMA,
    EnvVar,
    KVCacheType,
    ResourceRequirements,
    StorageSpec,
)
from aimctl.api.v1alpha1._meta import (
    CONDITIONS_LIST_SCHEMA,
    GROUP,
    VERSION,
    ApiModel,
    Condition,
    CustomResource,
    cel_rules,
)

__all__ = [
    "AIMSERVICE_KIND",
    "AIMSERVICE_PLURAL",
    "AIMSERVICE_SINGULAR",
    "AUTO_KVCACHE_PREFIX",
    "AIMService",
    "AIMServiceConditionType",
    "AIMServiceKVCache",
    "AIMServiceSpec",
    "AIMServiceStatus",
    "ModelSpec",
    "ResolvedKVCache",
    "ServiceStatus",
]

AIMSERVICE_KIND = "AIMService"
AIMSERVICE_PLURAL = "aimservices"
AIMSERVICE_SINGULAR = "aimservice"
# spec.kvCache.type gives the service the cache "kvcache-<service name>".
AUTO_KVCACHE_PREFIX = "kvcache-"
_MAX_NAME_WITH_OWN_CACHE = AIMKVCACHE_MAX_NAME_LENGTH - len(AUTO_KVCACHE_PREFIX)


class ServiceStatus(StrEnum):
    """Summary state of an AIMService (``status.status``)."""

    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    DEGRADED = "Degraded"
    FAILED = "Failed"


class AIMServiceConditionType(StrEnum):
    """Condition types an AIMService reports."""

    READY = "Ready"
    KV_CACHE_READY = "KVCacheReady"


class ModelSpec(ApiModel):
    """The model to serve."""

    image: str = Field(
        description="Container image of the model's inference server, for example "
        "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0.",
        min_length=1,
    )


_CACHE_SETTINGS = "has(self.storage) || has(self.image) || has(self.env) || has(self.resources)"
_KVCACHE_RULES = [
    {
        "rule": "has(self.type) != has(self.name)",
        "message": "kvCache must set exactly one of type (the service creates its own cache) or "
        "name (the service uses an existing AIMKVCache)",
        "messageExpression": "has(self.type)"
        " ? 'kvCache.type and kvCache.name are mutually exclusive: keep type to have the service"
        " create its own cache, or name to use the existing AIMKVCache ' + self.name"
        " : 'kvCache needs type (for example type: redis, to have the service create its own"
        " cache) or name (to use an existing AIMKVCache)'",
    },
    {
        "rule": f"!has(self.name) || !({_CACHE_SETTINGS})",
        "message": "kvCache.storage, image, env and resources only apply to a cache the service "
        "creates (kvCache.type); with kvCache.name set them on the AIMKVCache instead",
        "messageExpression": "'kvCache.storage, image, env and resources only apply to a cache"
        " the service creates (kvCache.type); set them on the AIMKVCache ' + self.name"
        " + ' instead'",
    },
]
_CACHE_NAME_RULES = [
    {
        "rule": f"self.size() <= {AIMKVCACHE_MAX_NAME_LENGTH}"
        " && self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "message": "kvCache.name must be the name of an AIMKVCache: at most "
        f"{AIMKVCACHE_MAX_NAME_LENGTH} lowercase letters, digits and '-', starting with a letter",
    }
]


class AIMServiceKVCache(ApiModel):
    """The KV cache of the service: set type (own cache) or name (existing cache), not both."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*_KVCACHE_RULES))

    type: KVCacheType | None = Field(
        default=None,
        description="Backend of a cache created for this service, named kvcache-<service name>. "
        "Exclusive with name.",
    )
    name: str | None = Field(
        default=None,
        description="Name of an existing AIMKVCache in the service's namespace to use, for "
        "example one shared by several services. Exclusive with type.",
        max_length=253,
        json_schema_extra=cel_rules(*_CACHE_NAME_RULES),
    )
    storage: StorageSpec | None = Field(
        default=None,
        description="Storage of the cache created for this service (with type only). Unset "
        "means size 1Gi, the cluster's default storage class and [ReadWriteOnce].",
    )
    image: str | None = Field(
        default=None,
        description="Container image of the cache created for this service (with type only).",
        min_length=1,
    )
    env: list[EnvVar] | None = Field(
        default=None,
        description="Environment variables of the cache created for this service (with type only).",
        json_schema_extra=ENV_LIST_SCHEMA,
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Compute resources of the cache created for this service (with type only).",
    )
    lm_cache_config: str | None = Field(
        default=None,
        description="Full text of the LMCache configuration file (lmcache_config.yaml) of the "
        "inference server. {SERVICE_URL} is replaced by the cache's URL. Unset means the "
        "operator's default configuration.",
    )

    @model_validator(mode="after")
    def _type_xor_name(self) -> AIMServiceKVCache:
        # Mirrors the CRD's CEL rules, for objects stored before they existed.
        if (self.type is None) == (self.name is None):
            raise ValueError(
                "kvCache needs exactly one of type (own cache) or name (existing cache)"
            )
        if self.name is not None and any(
            v is not None for v in (self.storage, self.image, self.env, self.resources)
        ):
            raise ValueError(
                "kvCache.storage, image, env and resources only apply with kvCache.type"
            )
        return self


class AIMServiceSpec(ApiModel):
    """Desired state of an inference service."""

    model: ModelSpec = Field(description="The model to serve.")
    replicas: int = Field(
        default=1,
        description="Number of inference server replicas. Default 1.",
        ge=0,
        json_schema_extra={"format": "int32"},
    )
    port: int = Field(
        default=8000,
        description="Port the inference server listens on (OpenAI-compatible HTTP). Default 8000.",
        ge=1,
        le=65535,
        json_schema_extra={"format": "int32"},
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Compute resources of the inference server, including GPUs, for example "
        "limits: {amd.com/gpu: 1}.",
    )
    env: list[EnvVar] | None = Field(
        default=None,
        description="Environment variables of the inference server.",
        json_schema_extra=ENV_LIST_SCHEMA,
    )
    kv_cache: AIMServiceKVCache | None = Field(
        default=None,
        description="Use a KV cache. Set type to have the service create its own cache, or name "
        "to use an existing (shared) AIMKVCache. Unset means no KV cache.",
    )


class ResolvedKVCache(ApiModel):
    """The AIMKVCache the service uses."""

    name: str = Field(description="Name of the AIMKVCache (in the service's namespace).")
    uid: str | None = Field(default=None, description="UID of the AIMKVCache.")
    endpoint: str | None = Field(default=None, description="The cache's endpoint.")


class AIMServiceStatus(ApiModel):
    """Observed state of an inference service, written by the operator."""

    observed_generation: int | None = Field(
        default=None,
        description="The .metadata.generation this status was computed from.",
        ge=0,
        json_schema_extra={"format": "int64"},
    )
    status: ServiceStatus | None = Field(
        default=None, description="Summary: Pending, Starting, Running, Degraded or Failed."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Conditions, including KVCacheReady.",
        json_schema_extra=CONDITIONS_LIST_SCHEMA,
    )
    resolved_kv_cache: ResolvedKVCache | None = Field(
        default=None,
        alias="resolvedKVCache",
        description="The AIMKVCache in use; unset when there is none (yet).",
    )
    replicas: int | None = Field(
        default=None,
        description="Replicas of the inference server.",
        ge=0,
        json_schema_extra={"format": "int32"},
    )
    ready_replicas: int | None = Field(
        default=None,
        description="Replicas of the inference server that are ready.",
        ge=0,
        json_schema_extra={"format": "int32"},
    )


_SERVICE_RULES = [
    {
        "fieldPath": ".metadata.name",
        "rule": "!has(self.spec.kvCache) || !has(self.spec.kvCache.type)"
        f" || (self.metadata.name.size() <= {_MAX_NAME_WITH_OWN_CACHE}"
        " && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))",
        "message": "with spec.kvCache.type the service creates the AIMKVCache "
        f"{AUTO_KVCACHE_PREFIX}<service name>, so the service name may have at most "
        f"{_MAX_NAME_WITH_OWN_CACHE} characters and no '.'; choose a shorter name, or create an "
        "AIMKVCache and set spec.kvCache.name",
    },
]


class AIMService(CustomResource):
    """An AIM inference service: a model image served with an optional KV cache."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*_SERVICE_RULES))

    resource = ResourceInfo(
        group=GROUP,
        version=VERSION,
        kind=AIMSERVICE_KIND,
        plural=AIMSERVICE_PLURAL,
        singular=AIMSERVICE_SINGULAR,
        short_names=("aimsvc",),
        categories=("aim", "all"),
        printer_columns=(
            PrinterColumn("Status", ".status.status", description="Summary state."),
            PrinterColumn(
                "KVCache", ".status.resolvedKVCache.name", description="The AIMKVCache in use."
            ),
            PrinterColumn("Model", ".spec.model.image", priority=1, description="Model image."),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
        ),
    )

    spec: AIMServiceSpec = Field(description="Desired state.")
    status: AIMServiceStatus | None = Field(default=None, description="Observed state.")

    def kv_cache_name(self) -> str | None:
        """The AIMKVCache this service uses: ``spec.kvCache.name``, ``kvcache-<name>`` for
        ``spec.kvCache.type``, or None without ``spec.kvCache``."""
        kv = self.spec.kv_cache
        if kv is None:
            return None
        return kv.name or f"{AUTO_KVCACHE_PREFIX}{self.name}"
