"""AIMService: an inference server for one model image, optionally wired to a KV cache.

``spec.kvCache`` takes exactly one of:

- ``type``: the service gets its own cache, the AIMKVCache ``kvcache-<service name>``, created with
  the cache settings given here (``storage``, ``image``, ``env``, ``resources``);
- ``name``: the service uses an existing AIMKVCache of that name in its namespace, typically
  shared; its settings live on the AIMKVCache, so the cache settings are rejected here.

``lmCacheConfig`` (the LMCache configuration file of the inference server) goes with either.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from aimctl.api import quantity as _quantity
from aimctl.api._resource import PrinterColumn, ResourceInfo
from aimctl.api.v1alpha1._aimkvcache import AIMKVCACHE_MAX_NAME_LENGTH
from aimctl.api.v1alpha1._common import (
    ENV_LIST_SCHEMA,
    EnvVar,
    KVCacheType,
    OwnCacheStorageSpec,
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
    "AIMSERVICE_KIND",
    "AIMSERVICE_MAX_NAME_LENGTH",
    "AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE",
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
# Children named after a service (reconcilers/service/_desired.py): Deployment and Service
# <service> (a Service name is a DNS-1035 label: at most 63), ConfigMap <service>-lmcache, and the
# labels app.kubernetes.io/instance and aim.silogen.ai/service=<service> on its pods, by which
# the NetworkPolicy of every cache it uses admits them (a label value: at most 63). So a name that
# passes can never break a cache it shares with others.
AIMSERVICE_MAX_NAME_LENGTH = 63
# With spec.kvCache.type the service also creates the AIMKVCache kvcache-<service>.
AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE = AIMKVCACHE_MAX_NAME_LENGTH - len(AUTO_KVCACHE_PREFIX)


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


_CACHE_SETTINGS = (
    "has(self.storage) || has(self.image) || has(self.env) || has(self.resources)"
    " || has(self.imagePullPolicy) || has(self.imagePullSecrets) || has(self.redis)"
    " || has(self.metrics)"
)
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
        "message": "kvCache.storage, image, env, resources, redis and metrics only apply to a "
        "cache the service creates (kvCache.type); with kvCache.name set them on the AIMKVCache "
        "instead",
        "messageExpression": "'kvCache.storage, image, env, resources, redis and metrics only apply"
        " to a cache"
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

    model_config = ConfigDict(json_schema_extra=cel_rules(*_KVCACHE_RULES, *MAX_MEMORY_RULES))

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
    storage: OwnCacheStorageSpec | None = Field(
        default=None,
        description="Storage of the cache created for this service (with type only). Unset "
        "means size 1Gi, the cluster's default storage class and [ReadWriteOnce]. Once the "
        "cache exists, its storage class and access modes are fixed and its size may only grow.",
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
    image_pull_policy: PullPolicy | None = Field(
        default=None,
        description="When to pull the image of the cache created for this service (with type "
        "only).",
    )
    image_pull_secrets: list[LocalObjectReference] | None = Field(
        default=None,
        description="Secrets to pull the image of the cache created for this service (with "
        "type only).",
        max_length=16,
    )
    redis: RedisConfig | None = Field(
        default=None,
        description="Redis settings of the cache created for this service (with type only).",
    )
    metrics: MetricsSpec | None = Field(
        default=None,
        description="Metrics sidecar of the cache created for this service (with type only).",
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
            v is not None
            for v in (
                self.storage,
                self.image,
                self.env,
                self.resources,
                self.image_pull_policy,
                self.image_pull_secrets,
                self.redis,
                self.metrics,
            )
        ):
            raise ValueError(
                "kvCache.storage, image, env, resources, redis and metrics only apply with "
                "kvCache.type"
            )
        return self


class AIMServiceSpec(PodScheduling):
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


_NAME = "self.metadata.name"
_OWN_CACHE = "has(self.spec.kvCache) && has(self.spec.kvCache.type)"
_OWN_CACHE_BEFORE_AND_AFTER = (
    f"{_OWN_CACHE} && has(oldSelf.spec.kvCache) && has(oldSelf.spec.kvCache.type)"
)
# Static messages: a messageExpression quoting the length (string(size())) has no size bound for
# the API server's cost estimate, which then refuses the whole CRD.
_NAME_RULES = [
    {
        "fieldPath": ".metadata.name",
        "rule": f"{_NAME}.matches('{DNS1035_LABEL}')",
        "message": "AIMService names must be DNS-1035 labels: lowercase letters, digits and '-', "
        "starting with a letter and ending with a letter or digit (its Deployment and Service are "
        "named after it); choose another name",
    },
    {
        "fieldPath": ".metadata.name",
        "rule": f"{_NAME}.size() <= {AIMSERVICE_MAX_NAME_LENGTH}",
        "message": f"AIMService names may have at most {AIMSERVICE_MAX_NAME_LENGTH} characters: "
        "its Service is named after it and its pods are labelled with it; choose a shorter name",
    },
    {
        # Past 63 the rule above speaks; one message per problem.
        "fieldPath": ".metadata.name",
        "rule": f"!({_OWN_CACHE}) || {_NAME}.size() <= {AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE}"
        f" || {_NAME}.size() > {AIMSERVICE_MAX_NAME_LENGTH}",
        "message": "with spec.kvCache.type the service creates the AIMKVCache "
        f"{AUTO_KVCACHE_PREFIX}<service name>, whose name may have at most "
        f"{AIMKVCACHE_MAX_NAME_LENGTH} characters, so the service name may have at most "
        f"{AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE}; choose a shorter name, or create an "
        "AIMKVCache and set spec.kvCache.name",
    },
]


def _name_errors(name: str, *, own_cache: bool) -> list[str]:
    errors = []
    if not re.fullmatch(DNS1035_LABEL, name):
        errors.append(_NAME_RULES[0]["message"])
    if len(name) > AIMSERVICE_MAX_NAME_LENGTH:
        errors.append(_NAME_RULES[1]["message"])
    elif own_cache and len(name) > AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE:
        errors.append(_NAME_RULES[2]["message"])
    return errors


# The service's own cache is created from spec.kvCache (reconcilers/service/_desired.py,
# auto_cache) and kept in line with it; an unset storage, or an unset field of it, means the
# AIMKVCache's default there. These rules refuse, on the AIMService, exactly the changes the
# AIMKVCache's transition rules (StorageSpec in _common.py) would refuse on that cache; otherwise
# the service would be accepted and then fail for good. They compare effective values: unset
# storage is the default storage. A switch between type and name is free (the cache is created
# or deleted, not changed).
_OLD_CACHE = f"'{AUTO_KVCACHE_PREFIX}' + {_NAME}"


def _effective(kv: str, field: str, default: str, *, read: str = "{}") -> str:
    """CEL for ``kv.storage.<field>`` (passed through ``read``), or ``default`` when unset."""
    value = read.format(f"{kv}.storage.{field}")
    return f"(has({kv}.storage) && has({kv}.storage.{field}) ? {value} : {default})"


_NEW_KV, _OLD_KV = "self.spec.kvCache", "oldSelf.spec.kvCache"
_CLASS = {kv: _effective(kv, "storageClassName", "''") for kv in (_NEW_KV, _OLD_KV)}
_MODES = {kv: _effective(kv, "accessModes", "['ReadWriteOnce']") for kv in (_NEW_KV, _OLD_KV)}
_SIZE = {kv: _effective(kv, "size", "'1Gi'", read="string({})") for kv in (_NEW_KV, _OLD_KV)}
# join() inside the branch: the API server cannot bound its cost on the conditional list.
_OLD_MODES_TEXT = _effective(_OLD_KV, "accessModes", "'ReadWriteOnce'", read="{}.join(', ')")
_RECREATE = "delete and recreate the AIMService to get a new, empty cache"
_RECREATE_SMALLER = "delete and recreate the AIMService to get a new, smaller cache"
_OWN_CACHE_RULES = [
    {
        "fieldPath": ".spec.kvCache.storage.storageClassName",
        "rule": f"!({_OWN_CACHE_BEFORE_AND_AFTER}) || {_CLASS[_NEW_KV]} == {_CLASS[_OLD_KV]}",
        "message": "the storage class of the service's AIMKVCache cannot change; keep the one it "
        f"was created with, or {_RECREATE}",
        "messageExpression": f"'the storage class of AIMKVCache ' + {_OLD_CACHE}"
        f" + ' cannot change (it was created with ' + ({_CLASS[_OLD_KV]} == ''"
        f" ? 'the cluster default storage class' : 'storage class ' + {_CLASS[_OLD_KV]})"
        f" + '); ' + ({_CLASS[_OLD_KV]} == '' ? 'remove storageClassName'"
        f" : 'set storageClassName: ' + {_CLASS[_OLD_KV]}) + ', or {_RECREATE}'",
    },
    {
        "fieldPath": ".spec.kvCache.storage.accessModes",
        "rule": f"!({_OWN_CACHE_BEFORE_AND_AFTER}) || {_MODES[_NEW_KV]} == {_MODES[_OLD_KV]}",
        "message": "the access modes of the service's AIMKVCache cannot change; keep the ones it "
        f"was created with, or {_RECREATE}",
        "messageExpression": f"'the access modes of AIMKVCache ' + {_OLD_CACHE}"
        f" + ' cannot change (it was created with [' + {_OLD_MODES_TEXT}"
        f" + ']); set accessModes: [' + {_OLD_MODES_TEXT} + '], or {_RECREATE}'",
    },
    {
        "fieldPath": ".spec.kvCache.storage.size",
        "rule": f"!({_OWN_CACHE_BEFORE_AND_AFTER}) || !isQuantity({_SIZE[_NEW_KV]})"
        f" || !isQuantity({_SIZE[_OLD_KV]})"
        f" || quantity({_SIZE[_NEW_KV]}).compareTo(quantity({_SIZE[_OLD_KV]})) >= 0",
        "message": "the service's AIMKVCache can grow but never shrink; keep at least the size it "
        f"has, or {_RECREATE_SMALLER}",
        "messageExpression": f"'AIMKVCache ' + {_OLD_CACHE} + ' has ' + {_SIZE[_OLD_KV]}"
        " + ' and can grow but never shrink; set a size of at least ' + "
        f"{_SIZE[_OLD_KV]} + ', or {_RECREATE_SMALLER}'",
    },
]


def _own_cache_change_errors(name: str, old: StorageSpec, new: StorageSpec) -> list[str]:
    """The messages of ``_OWN_CACHE_RULES`` for a change of the effective storage."""
    cache = f"{AUTO_KVCACHE_PREFIX}{name}"
    errors = []
    if new.storage_class_name != old.storage_class_name:
        was = old.storage_class_name
        errors.append(
            f"the storage class of AIMKVCache {cache} cannot change (it was created with "
            + ("the cluster default storage class" if was is None else f"storage class {was}")
            + "); "
            + ("remove storageClassName" if was is None else f"set storageClassName: {was}")
            + f", or {_RECREATE}"
        )
    if set(new.access_modes) != set(old.access_modes):
        modes = ", ".join(str(m) for m in old.access_modes)
        errors.append(
            f"the access modes of AIMKVCache {cache} cannot change (it was created with "
            f"[{modes}]); set accessModes: [{modes}], or {_RECREATE}"
        )
    if _quantity.compare(new.size, old.size) < 0:
        errors.append(
            f"AIMKVCache {cache} has {old.size} and can grow but never shrink; set a size of at "
            f"least {old.size}, or {_RECREATE_SMALLER}"
        )
    return errors


class AIMService(CustomResource):
    """An AIM inference service: a model image served with an optional KV cache."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*_NAME_RULES, *_OWN_CACHE_RULES))

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

    @staticmethod
    def name_errors(name: str, *, own_cache: bool) -> list[str]:
        """What the API server says about an AIMService named ``name``, rule by rule (the CRD's
        name rules, mirrored); ``own_cache``: with ``spec.kvCache.type``. Empty when fine."""
        return _name_errors(name, own_cache=own_cache)

    def own_cache_change_errors(self, old: AIMService) -> list[str]:
        """What the API server says when this object replaces ``old``: the CRD's rules that
        refuse a change of ``spec.kvCache`` its own AIMKVCache would refuse, mirrored (the
        messages are the same). Empty when the change is fine, or when it does not change that
        cache (either side without ``spec.kvCache.type``)."""
        new_kv, old_kv = self.spec.kv_cache, old.spec.kv_cache
        if new_kv is None or old_kv is None or new_kv.type is None or old_kv.type is None:
            return []
        return _own_cache_change_errors(
            self.name, old_kv.storage or StorageSpec(), new_kv.storage or StorageSpec()
        )

    @model_validator(mode="after")
    def _name_fits_children(self) -> AIMService:
        # Mirrors the CRD's name rules, for objects stored before they existed.
        if self.metadata.name is None:
            return self
        kv = self.spec.kv_cache
        errors = _name_errors(self.name, own_cache=kv is not None and kv.type is not None)
        if errors:
            raise ValueError("; ".join(errors))
        return self
