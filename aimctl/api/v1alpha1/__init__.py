"""The AIM API, ``aim.silogen.ai/v1alpha1``: AIMKVCache and AIMService as pydantic models.

Field names are camelCase on the wire and snake_case in Python::

    cache = AIMKVCache.model_validate(obj)          # an object as read from the API server
    cache.spec.storage.size                         # "1Gi"
    cache.model_dump(by_alias=True, exclude_none=True, mode="json")   # back to a JSON-ready dict

Models ignore unknown fields when parsing; the CRDs generated from them (``aimctl.api.crd``)
reject unknown fields.
"""

from aimctl.api._resource import PrinterColumn as PrinterColumn, ResourceInfo as ResourceInfo
from aimctl.api.v1alpha1._aimkvcache import (
    AIMKVCACHE_KIND as AIMKVCACHE_KIND,
    AIMKVCACHE_MAX_NAME_LENGTH as AIMKVCACHE_MAX_NAME_LENGTH,
    AIMKVCACHE_PLURAL as AIMKVCACHE_PLURAL,
    AIMKVCACHE_SINGULAR as AIMKVCACHE_SINGULAR,
    AIMKVCache as AIMKVCache,
    AIMKVCacheConditionType as AIMKVCacheConditionType,
    AIMKVCacheSpec as AIMKVCacheSpec,
    AIMKVCacheStatus as AIMKVCacheStatus,
    KVCacheStatus as KVCacheStatus,
)
from aimctl.api.v1alpha1._aimservice import (
    AIMSERVICE_KIND as AIMSERVICE_KIND,
    AIMSERVICE_MAX_NAME_LENGTH as AIMSERVICE_MAX_NAME_LENGTH,
    AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE as AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE,
    AIMSERVICE_PLURAL as AIMSERVICE_PLURAL,
    AIMSERVICE_SINGULAR as AIMSERVICE_SINGULAR,
    AUTO_KVCACHE_PREFIX as AUTO_KVCACHE_PREFIX,
    AIMService as AIMService,
    AIMServiceConditionType as AIMServiceConditionType,
    AIMServiceKVCache as AIMServiceKVCache,
    AIMServiceSpec as AIMServiceSpec,
    AIMServiceStatus as AIMServiceStatus,
    ModelSpec as ModelSpec,
    ResolvedKVCache as ResolvedKVCache,
    ServiceStatus as ServiceStatus,
)
from aimctl.api.v1alpha1._common import (
    AccessMode as AccessMode,
    ConfigMapKeySelector as ConfigMapKeySelector,
    EnvVar as EnvVar,
    EnvVarSource as EnvVarSource,
    KVCacheType as KVCacheType,
    ObjectFieldSelector as ObjectFieldSelector,
    OwnCacheStorageSpec as OwnCacheStorageSpec,
    Quantity as Quantity,
    ResourceFieldSelector as ResourceFieldSelector,
    ResourceRequirements as ResourceRequirements,
    SecretKeySelector as SecretKeySelector,
    StorageSpec as StorageSpec,
)
from aimctl.api.v1alpha1._meta import (
    API_VERSION as API_VERSION,
    DNS1035_LABEL as DNS1035_LABEL,
    GROUP as GROUP,
    VERSION as VERSION,
    Condition as Condition,
    ConditionStatus as ConditionStatus,
    CustomResource as CustomResource,
    ObjectMeta as ObjectMeta,
)
from aimctl.api.v1alpha1._pod import (
    LocalObjectReference as LocalObjectReference,
    MaxMemoryPolicy as MaxMemoryPolicy,
    MetricsSpec as MetricsSpec,
    Persistence as Persistence,
    PodScheduling as PodScheduling,
    PullPolicy as PullPolicy,
    RedisConfig as RedisConfig,
    Toleration as Toleration,
)

KINDS: tuple[type[CustomResource], ...] = (AIMKVCache, AIMService)
"""Every kind of this version, in CRD order."""

__all__ = [
    "AIMKVCACHE_KIND",
    "AIMKVCACHE_MAX_NAME_LENGTH",
    "AIMKVCACHE_PLURAL",
    "AIMKVCACHE_SINGULAR",
    "AIMSERVICE_KIND",
    "AIMSERVICE_MAX_NAME_LENGTH",
    "AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE",
    "AIMSERVICE_PLURAL",
    "AIMSERVICE_SINGULAR",
    "API_VERSION",
    "AUTO_KVCACHE_PREFIX",
    "DNS1035_LABEL",
    "GROUP",
    "KINDS",
    "VERSION",
    "AIMKVCache",
    "AIMKVCacheConditionType",
    "AIMKVCacheSpec",
    "AIMKVCacheStatus",
    "AIMService",
    "AIMServiceConditionType",
    "AIMServiceKVCache",
    "AIMServiceSpec",
    "AIMServiceStatus",
    "AccessMode",
    "Condition",
    "ConditionStatus",
    "ConfigMapKeySelector",
    "CustomResource",
    "EnvVar",
    "EnvVarSource",
    "KVCacheStatus",
    "KVCacheType",
    "LocalObjectReference",
    "MaxMemoryPolicy",
    "MetricsSpec",
    "ModelSpec",
    "ObjectFieldSelector",
    "ObjectMeta",
    "OwnCacheStorageSpec",
    "Persistence",
    "PodScheduling",
    "PrinterColumn",
    "PullPolicy",
    "Quantity",
    "RedisConfig",
    "ResolvedKVCache",
    "ResourceFieldSelector",
    "ResourceInfo",
    "ResourceRequirements",
    "SecretKeySelector",
    "ServiceStatus",
    "StorageSpec",
    "Toleration",
]
