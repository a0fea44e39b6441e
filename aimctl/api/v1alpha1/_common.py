"""Types both AIM kinds use: quantities, environment variables, resources, storage, cache type.

The CEL rules here are part of the API: their messages are what a user reads when
``kubectl apply`` is rejected, so each says what is wrong and what to do instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from aimctl.api import quantity as _quantity
from aimctl.api.v1alpha1._meta import ApiModel, cel_rules

__all__ = [
    "AccessMode",
    "ConfigMapKeySelector",
    "EnvVar",
    "EnvVarSource",
    "KVCacheType",
    "ObjectFieldSelector",
    "OwnCacheStorageSpec",
    "Quantity",
    "ResourceFieldSelector",
    "ResourceRequirements",
    "SecretKeySelector",
    "StorageSpec",
]


def _quantity_text(value: object) -> object:
    """Accept what an int-or-string quantity field may hold; keep the user's spelling."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and not _quantity.is_quantity(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (for example 10Gi or 500m)")
    return value


# The schema controller-gen emits for resource.Quantity, plus a length bound so that the API
# server can estimate the cost of CEL rules that read quantities.
QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "maxLength": 64,
    "pattern": _quantity.QUANTITY_PATTERN,
    "x-kubernetes-int-or-string": True,
}

Quantity = Annotated[str, BeforeValidator(_quantity_text), WithJsonSchema(QUANTITY_SCHEMA)]
"""A Kubernetes quantity such as ``1Gi`` or ``500m``; integers are accepted and kept as text."""


class KVCacheType(StrEnum):
    """The KV-cache backend. Only Redis is supported."""

    REDIS = "redis"


class AccessMode(StrEnum):
    """A PersistentVolume access mode."""

    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_ONLY_MANY = "ReadOnlyMany"
    READ_WRITE_MANY = "ReadWriteMany"
    READ_WRITE_ONCE_POD = "ReadWriteOncePod"


# --- environment variables (a reduced core/v1 EnvVar) -------------------------------------------


class ConfigMapKeySelector(ApiModel):
    """Selects a key of a ConfigMap in the object's namespace."""

    name: str = Field(description="Name of the ConfigMap.", min_length=1)
    key: str = Field(description="The key to select.", min_length=1)
    optional: bool | None = Field(
        default=None, description="Whether the ConfigMap or its key may be missing."
    )


class SecretKeySelector(ApiModel):
    """Selects a key of a Secret in the object's namespace."""

    name: str = Field(description="Name of the Secret.", min_length=1)
    key: str = Field(description="The key of the Secret to select.", min_length=1)
    optional: bool | None = Field(
        default=None, description="Whether the Secret or its key may be missing."
    )


class ObjectFieldSelector(ApiModel):
    """Selects a field of the pod, for example metadata.name or status.podIP."""

    api_version: str | None = Field(
        default=None, description='Version of the schema the fieldPath is written in ("v1").'
    )
    field_path: str = Field(description="Path of the field to select.", min_length=1)


class ResourceFieldSelector(ApiModel):
    """Selects a resource of the container: limits.cpu, limits.memory, requests.cpu, ..."""

    container_name: str | None = Field(default=None, description="Container name.")
    resource: str = Field(description="Required: resource to select.", min_length=1)
    divisor: Quantity | None = Field(
        default=None, description='Output format of the exposed resource, default "1".'
    )


_ONE_SOURCE = (
    "(has(self.configMapKeyRef) ? 1 : 0) + (has(self.secretKeyRef) ? 1 : 0)"
    " + (has(self.fieldRef) ? 1 : 0) + (has(self.resourceFieldRef) ? 1 : 0) == 1"
)


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from. Set exactly one field."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            {
                "rule": _ONE_SOURCE,
                "message": "valueFrom must set exactly one of configMapKeyRef, "
                "secretKeyRef, fieldRef or resourceFieldRef",
            }
        )
    )

    config_map_key_ref: ConfigMapKeySelector | None = Field(
        default=None, description="A key of a ConfigMap."
    )
    secret_key_ref: SecretKeySelector | None = Field(default=None, description="A key of a Secret.")
    field_ref: ObjectFieldSelector | None = Field(default=None, description="A field of the pod.")
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource limit or request of the container."
    )


class EnvVar(ApiModel):
    """An environment variable: a literal value or a reference (valueFrom)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            {
                "rule": "!has(self.value) || !has(self.valueFrom)",
                "message": "an environment variable must set value or valueFrom, not both",
                "messageExpression": "'environment variable ' + self.name"
                " + ' sets both value and valueFrom; keep only one'",
            }
        )
    )

    name: str = Field(description="Name of the environment variable.", min_length=1)
    value: str | None = Field(default=None, description="A literal value.")
    value_from: EnvVarSource | None = Field(
        default=None, description="Take the value from a ConfigMap, Secret, pod field or resource."
    )


# A list of EnvVar is a map keyed by name: one entry per variable, merged by name.
ENV_LIST_SCHEMA: dict[str, Any] = {
    "maxItems": 256,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
}


# --- compute resources --------------------------------------------------------------------------

# Bounds let the API server estimate the cost of the CEL rules (it refuses unbounded ones).
_MAX_RESOURCES = 32

_BOTH_QUANTITIES = (
    "n in self.limits && isQuantity(string(self.requests[n])) && isQuantity(string(self.limits[n]))"
)
_REQUEST_ABOVE_LIMIT = (
    f"{_BOTH_QUANTITIES}"
    " && quantity(string(self.requests[n])).isGreaterThan(quantity(string(self.limits[n])))"
)


class ResourceRequirements(ApiModel):
    """Compute resources of a container: cpu, memory, and extended resources such as amd.com/gpu."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            {
                "rule": "!has(self.requests) || !has(self.limits)"
                f" || !self.requests.exists(n, {_REQUEST_ABOVE_LIMIT})",
                "message": "resources.requests must not exceed resources.limits of the same "
                "resource; lower the request or raise the limit",
            }
        )
    )

    limits: dict[str, Quantity] | None = Field(
        default=None,
        description="Maximum amount of each resource, for example cpu: 4, memory: 16Gi, "
        "amd.com/gpu: 1. Extended resources such as GPUs are set here.",
        json_schema_extra={"maxProperties": _MAX_RESOURCES},
    )
    requests: dict[str, Quantity] | None = Field(
        default=None,
        description="Minimum amount of each resource the scheduler reserves. A request may not "
        "exceed the limit of the same resource.",
        json_schema_extra={"maxProperties": _MAX_RESOURCES},
    )


# --- persistent storage -------------------------------------------------------------------------

_SIZE_IS_QUANTITY = "isQuantity(string(self))"
_SIZE_VALUE_RULES: tuple[dict[str, str], ...] = (
    {
        "rule": _SIZE_IS_QUANTITY,
        "message": "storage.size must be a Kubernetes quantity such as 10Gi or 500Mi",
    },
    {
        "rule": f"!{_SIZE_IS_QUANTITY} || quantity(string(self)).isGreaterThan(quantity('0'))",
        "message": "storage.size must be greater than zero, for example 1Gi",
    },
)
_SIZE_RULES: tuple[dict[str, str], ...] = (
    *_SIZE_VALUE_RULES,
    {
        "rule": f"!{_SIZE_IS_QUANTITY} || !isQuantity(string(oldSelf))"
        " || quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0",
        "message": "storage.size cannot shrink; create a new cache to reduce size",
        "messageExpression": "'storage.size cannot shrink (was ' + string(oldSelf)"
        " + '); create a new cache to reduce size'",
    },
)

_CLASS_RULE: dict[str, str] = {
    "rule": "has(self.storageClassName) == has(oldSelf.storageClassName)"
    " && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",
    "message": "storage.storageClassName is immutable; "
    "create a new cache to use a different storage class",
    "messageExpression": "!has(oldSelf.storageClassName)"
    " ? 'storage.storageClassName cannot be set after creation (the cache uses the cluster"
    " default storage class); create a new cache to use a different storage class'"
    " : 'storage.storageClassName is immutable (was ' + oldSelf.storageClassName"
    " + '); create a new cache to use a different storage class'",
}

_ACCESS_MODES_RULE: dict[str, str] = {
    "rule": "has(self.accessModes) == has(oldSelf.accessModes)"
    " && (!has(self.accessModes) || self.accessModes == oldSelf.accessModes)",
    "message": "storage.accessModes is immutable; create a new cache to use other access modes",
    "messageExpression": "'storage.accessModes is immutable (was ['"
    " + (has(oldSelf.accessModes) ? oldSelf.accessModes.join(', ') : '')"
    " + ']); create a new cache to use other access modes'",
}


class StorageSpec(ApiModel):
    """Persistent storage of the cache backend (one PersistentVolumeClaim).

    The size may grow but never shrink; the storage class and access modes are fixed at creation.
    """

    model_config = ConfigDict(json_schema_extra=cel_rules(_CLASS_RULE, _ACCESS_MODES_RULE))

    size: Quantity = Field(
        default="1Gi",
        description="Capacity of the volume, a Kubernetes quantity such as 10Gi. Default 1Gi, the "
        "minimum recommended for Redis. May grow later, never shrink.",
        json_schema_extra=cel_rules(*_SIZE_RULES),
    )

    @field_validator("size")
    @classmethod
    def _positive(cls, value: str) -> str:
        # Mirrors the CRD's CEL rule, for objects stored before it existed.
        if _quantity.parse_quantity(value) <= 0:
            raise ValueError("storage.size must be greater than zero, for example 1Gi")
        return value

    storage_class_name: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
        description="StorageClass of the volume. Unset means the cluster's default storage "
        "class. Cannot be changed after creation.",
    )
    access_modes: list[AccessMode] = Field(
        default=[AccessMode.READ_WRITE_ONCE],
        description="Access modes of the volume. Default [ReadWriteOnce]. Cannot be changed "
        "after creation.",
        min_length=1,
        max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class OwnCacheStorageSpec(StorageSpec):
    """Storage of the cache an AIMService creates for itself (``spec.kvCache.storage``).

    The fields, defaults and value rules of :class:`StorageSpec`, without its transition rules:
    what matters is whether a change fits the AIMKVCache already created, and an unset
    ``storage`` stands for the defaults there, so the AIMService checks its changes against that
    cache as a whole (``AIMService.own_cache_change_errors``), not field by field.
    """

    model_config = ConfigDict(json_schema_extra=None)

    size: Quantity = Field(
        default="1Gi",
        description="Capacity of the volume, a Kubernetes quantity such as 10Gi. Default 1Gi, the "
        "minimum recommended for Redis. May grow later, never shrink.",
        json_schema_extra=cel_rules(*_SIZE_VALUE_RULES),
    )
