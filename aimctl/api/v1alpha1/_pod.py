"""Pod-level settings both AIM kinds share: image pulling, scheduling, the cache's Redis
configuration and its metrics sidecar.

The shapes are core/v1's (``LocalObjectReference``, ``Toleration``, ``Affinity``) so what a user
already writes in a Deployment works here; ``affinity`` is kept as an opaque object the API
server validates when it reaches the pod template (its schema is large and changes with
Kubernetes versions).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, WithJsonSchema

from aimctl.api.v1alpha1._common import Quantity
from aimctl.api.v1alpha1._meta import ApiModel, cel_rules

__all__ = [
    "AFFINITY_SCHEMA",
    "MAX_MEMORY_RULES",
    "LocalObjectReference",
    "MaxMemoryPolicy",
    "MetricsSpec",
    "Persistence",
    "PodScheduling",
    "PullPolicy",
    "RedisConfig",
    "Toleration",
]


class PullPolicy(StrEnum):
    """When the kubelet pulls the image (core/v1 ``imagePullPolicy``)."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class LocalObjectReference(ApiModel):
    """A Secret in the object's namespace (an image pull secret)."""

    name: str = Field(description="Name of the Secret.", min_length=1, max_length=253)


class Toleration(ApiModel):
    """A core/v1 toleration: lets the pods schedule onto nodes with a matching taint (GPU nodes
    are usually tainted)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            {
                "rule": "!has(self.operator) || self.operator != 'Exists' || !has(self.value)",
                "message": "a toleration with operator Exists must not set value",
            }
        )
    )

    key: str | None = Field(
        default=None,
        description="Taint key the toleration applies to; empty with operator Exists matches "
        "every taint.",
        max_length=316,
    )
    operator: str | None = Field(
        default=None,
        description="Exists or Equal (default Equal).",
        json_schema_extra={"enum": ["Exists", "Equal"]},
    )
    value: str | None = Field(
        default=None, description="Taint value to match (operator Equal).", max_length=63
    )
    effect: str | None = Field(
        default=None,
        description="NoSchedule, PreferNoSchedule or NoExecute; empty matches every effect.",
        json_schema_extra={"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="With effect NoExecute: how long the pod stays bound after the taint appears.",
        json_schema_extra={"format": "int64"},
    )


AFFINITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Pod affinity rules (core/v1 Affinity: nodeAffinity, podAffinity, "
    "podAntiAffinity), copied into the pod template.",
    "x-kubernetes-preserve-unknown-fields": True,
}
Affinity = Annotated[dict[str, Any], WithJsonSchema(AFFINITY_SCHEMA)]


class PodScheduling(ApiModel):
    """Where the pods run: the four core/v1 pod fields, copied into the pod template."""

    node_selector: dict[str, str] | None = Field(
        default=None,
        description="Node labels the pods require, for example "
        "{node.kubernetes.io/instance-type: gpu}.",
        json_schema_extra={"maxProperties": 64},
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        description="Taints the pods tolerate (GPU nodes are often tainted).",
        max_length=64,
    )
    affinity: Affinity | None = Field(default=None)
    priority_class_name: str | None = Field(
        default=None,
        description="PriorityClass of the pods.",
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    )


class MaxMemoryPolicy(StrEnum):
    """What Redis evicts when it reaches maxmemory (redis.conf ``maxmemory-policy``)."""

    ALLKEYS_LRU = "allkeys-lru"
    ALLKEYS_LFU = "allkeys-lfu"
    ALLKEYS_RANDOM = "allkeys-random"
    VOLATILE_LRU = "volatile-lru"
    VOLATILE_LFU = "volatile-lfu"
    VOLATILE_RANDOM = "volatile-random"
    VOLATILE_TTL = "volatile-ttl"
    NOEVICTION = "noeviction"


class Persistence(StrEnum):
    """How Redis keeps the cache across restarts."""

    NONE = "None"
    RDB = "RDB"
    AOF = "AOF"


class RedisConfig(ApiModel):
    """Redis settings of the cache. Unset fields take the operator's defaults, chosen for a KV
    cache: maxmemory below the container's memory limit, allkeys-lru eviction, RDB snapshots."""

    max_memory: Quantity | None = Field(
        default=None,
        description="Memory Redis may use for data before it evicts, for example 1536Mi. Unset "
        "means 75% of the container's memory limit (90% with persistence None), leaving room "
        "for the fork of a snapshot, client buffers and fragmentation.",
    )
    max_memory_policy: MaxMemoryPolicy | None = Field(
        default=None,
        description="What Redis evicts at maxMemory. Unset means allkeys-lru: a KV cache must "
        "evict. noeviction makes writes fail when full; volatile-* evict only keys with a TTL.",
    )
    persistence: Persistence | None = Field(
        default=None,
        description="None (memory only), RDB (periodic snapshots to the volume) or AOF (append "
        "every write). Unset means RDB: a restarted cache comes back warm at little cost.",
    )


class MetricsSpec(ApiModel):
    """A redis_exporter sidecar serving Prometheus metrics on port 9121 (``metrics``)."""

    enabled: bool = Field(default=False, description="Run the exporter. Default false.")
    image: str | None = Field(
        default=None,
        description="Exporter image. Unset means the operator's default redis_exporter.",
        min_length=1,
    )


# spec.redis.maxMemory against the container's memory (limit, else request, else the default
# 1Gi): Redis must reach maxmemory and evict before the kernel OOM-kills the container. Set on the
# object holding both `redis` and `resources` (AIMKVCacheSpec, AIMServiceKVCache).
# Map values are read by index (limits['memory']): with field selection the API server's cost
# estimator treats the value as unbounded and refuses the CRD (measured on kube-apiserver 1.36).
_MEMORY = (
    "(has(self.resources) && has(self.resources.limits) && 'memory' in self.resources.limits"
    " ? string(self.resources.limits['memory'])"
    " : has(self.resources) && has(self.resources.requests) && 'memory' in self.resources.requests"
    " ? string(self.resources.requests['memory']) : '1Gi')"
)
_MAX_MEMORY = "string(self.redis.maxMemory)"
MAX_MEMORY_RULES: tuple[dict[str, str], ...] = (
    {
        "rule": "!has(self.redis) || !has(self.redis.maxMemory)"
        f" || !isQuantity({_MAX_MEMORY}) || !isQuantity({_MEMORY})"
        f" || (quantity({_MAX_MEMORY}).isGreaterThan(quantity('0'))"
        f" && quantity({_MAX_MEMORY}).isLessThan(quantity({_MEMORY})))",
        "message": "redis.maxMemory must be above zero and below the container's memory "
        "(resources.limits.memory, else resources.requests.memory, else 1Gi), or Redis is "
        "OOM-killed before it evicts; lower redis.maxMemory or raise the memory limit",
        "messageExpression": f"'redis.maxMemory ' + {_MAX_MEMORY} + ' must be above zero and "
        f"below the container memory ' + {_MEMORY} + ' (resources.limits.memory, else "
        "resources.requests.memory, else 1Gi), or Redis is OOM-killed before it evicts; lower "
        "redis.maxMemory or raise the memory limit'",
    },
)
