"""Invalid objects are rejected by a real kube-apiserver with a message a user can act on.

Each case is submitted with ``kubectl apply --validate=strict`` (field validation Strict) and
the test asserts the exact error kubectl prints. Transition cases apply a valid object first.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aimctl.api.v1alpha1 import AIMService
from aimctl.reconcilers._common import SERVICE_CONTROLLER
from aimctl.reconcilers.service._desired import auto_cache

from .aim_kubectl import Kubectl, rejection

API = "aim.silogen.ai/v1alpha1"
MODEL = {"image": "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"}
QUANTITY_RE = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
NOT_CHECKED = (
    "<nil>: Invalid value: null: some validation rules were not checked because the object was "
    "invalid; correct the existing errors to complete validation"
)


def cache(spec: dict[str, Any] | None = None, name: str = "cache") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": API, "kind": "AIMKVCache", "metadata": {"name": name}}
    if spec is not None:
        obj["spec"] = spec
    return obj


def service(spec: dict[str, Any] | None, name: str = "svc") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": API, "kind": "AIMService", "metadata": {"name": name}}
    if spec is not None:
        obj["spec"] = spec
    return obj


def storage(**fields: Any) -> dict[str, Any]:
    return {"storage": fields}


# Ends an expected list whose further lines come from the API server's type checker.
MORE: Any = ...

# (id, object, the exact errors kubectl prints)
INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "unknown-cache-type",
        cache({"kvCacheType": "memcached"}),
        [
            'spec.kvCacheType: Unsupported value: "memcached": supported values: "redis"',
            NOT_CHECKED,
        ],
    ),
    (
        "size-not-a-quantity",
        cache(storage(size="ten-gigs")),
        [
            f'spec.storage.size: Invalid value: "ten-gigs": spec.storage.size in body should '
            f"match '{QUANTITY_RE}'",
            'spec.storage.size: Invalid value: "ten-gigs": storage.size must be a Kubernetes '
            "quantity such as 10Gi or 500Mi",
        ],
    ),
    (
        "size-fractional-exponent",
        cache(storage(size="1e1.5")),
        [
            'spec.storage.size: Invalid value: "1e1.5": storage.size must be a Kubernetes '
            "quantity such as 10Gi or 500Mi"
        ],
    ),
    (
        "size-negative",
        cache(storage(size="-1Gi")),
        [
            'spec.storage.size: Invalid value: "-1Gi": storage.size must be greater than zero, '
            "for example 1Gi"
        ],
    ),
    (
        "size-zero-integer",
        cache(storage(size=0)),
        [
            "spec.storage.size: Invalid value: 0: storage.size must be greater than zero, "
            "for example 1Gi"
        ],
    ),
    (
        "size-float",
        cache(storage(size=1.5)),
        [
            'spec.storage.size: Invalid value: "number": spec.storage.size in body must be of '
            'type integer,string: "number"',
            MORE,
        ],
    ),
    (
        "bad-access-mode",
        cache(storage(accessModes=["ReadWriteSometimes"])),
        [
            'spec.storage.accessModes[0]: Unsupported value: "ReadWriteSometimes": supported '
            'values: "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"',
            NOT_CHECKED,
        ],
    ),
    (
        "no-access-modes",
        cache(storage(accessModes=[])),
        [
            "spec.storage.accessModes: Invalid value: 0: spec.storage.accessModes in body should "
            "have at least 1 items"
        ],
    ),
    (
        "duplicate-access-mode",
        cache(storage(accessModes=["ReadWriteOnce", "ReadWriteOnce"])),
        ['spec.storage.accessModes[1]: Duplicate value: "ReadWriteOnce"'],
    ),
    (
        "storage-not-an-object",
        cache({"storage": "10Gi"}),
        [
            'spec.storage: Invalid value: "string": spec.storage in body must be of type object: '
            '"string"',
            NOT_CHECKED,
        ],
    ),
    (
        "image-not-a-string",
        cache({"image": 123}),
        [
            'spec.image: Invalid value: "integer": spec.image in body must be of type string: '
            '"integer"',
            NOT_CHECKED,
        ],
    ),
    ("unknown-field", cache({"storge": {"size": "1Gi"}}), ['unknown field "spec.storge"']),
    ("cache-has-no-replicas", cache({"replicas": 3}), ['unknown field "spec.replicas"']),
    (
        "env-without-name",
        cache({"env": [{"value": "x"}]}),
        ["spec.env[0].name: Required value", NOT_CHECKED],
    ),
    (
        "env-value-and-value-from",
        cache(
            {"env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "a"}}}]}
        ),
        [
            "spec.env[0]: Invalid value: environment variable A sets both value and valueFrom; "
            "keep only one"
        ],
    ),
    (
        "env-value-from-empty",
        cache({"env": [{"name": "A", "valueFrom": {}}]}),
        [
            "spec.env[0].valueFrom: Invalid value: valueFrom must set exactly one of "
            "configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef"
        ],
    ),
    (
        "env-duplicate-name",
        cache({"env": [{"name": "A", "value": "x"}, {"name": "A", "value": "y"}]}),
        ['spec.env[1]: Duplicate value: {"name":"A"}'],
    ),
    (
        "resource-not-a-quantity",
        cache({"resources": {"requests": {"cpu": "lots"}}}),
        [
            'spec.resources.requests.cpu: Invalid value: "lots": spec.resources.requests.cpu in '
            f"body should match '{QUANTITY_RE}'"
        ],
    ),
    (
        "request-above-limit",
        cache({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}),
        [
            "spec.resources: Invalid value: resources.requests must not exceed resources.limits "
            "of the same resource; lower the request or raise the limit"
        ],
    ),
    (
        "cache-name-too-long",
        cache({}, name="c" * 41),
        [
            "metadata.name: Invalid value: AIMKVCache names may have at most 40 characters: its "
            "StatefulSet <name>-statefulset may have at most 52, so that the "
            "controller-revision-hash label of its pods fits in 63; choose a shorter name"
        ],
    ),
    (
        "cache-name-starts-with-digit",
        cache({}, name="1cache"),
        [
            "metadata.name: Invalid value: AIMKVCache names must be DNS-1035 labels: lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit "
            "(its Service <name>-svc is named after it); choose another name"
        ],
    ),
    (
        "cache-name-with-a-dot",
        cache({}, name="shared.cache"),
        [
            "metadata.name: Invalid value: AIMKVCache names must be DNS-1035 labels: lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit "
            "(its Service <name>-svc is named after it); choose another name"
        ],
    ),
    (
        "kvcache-type-and-name",
        service({"model": MODEL, "kvCache": {"type": "redis", "name": "shared-cache"}}),
        [
            "spec.kvCache: Invalid value: kvCache.type and kvCache.name are mutually exclusive: "
            "keep type to have the service create its own cache, or name to use the existing "
            "AIMKVCache shared-cache"
        ],
    ),
    (
        "kvcache-neither-type-nor-name",
        service({"model": MODEL, "kvCache": {}}),
        [
            "spec.kvCache: Invalid value: kvCache needs type (for example type: redis, to have the "
            "service create its own cache) or name (to use an existing AIMKVCache)"
        ],
    ),
    (
        "kvcache-unknown-type",
        service({"model": MODEL, "kvCache": {"type": "memcached"}}),
        [
            'spec.kvCache.type: Unsupported value: "memcached": supported values: "redis"',
            NOT_CHECKED,
        ],
    ),
    (
        "kvcache-name-with-cache-settings",
        service({"model": MODEL, "kvCache": {"name": "shared-cache", "storage": {"size": "1Gi"}}}),
        [
            "spec.kvCache: Invalid value: kvCache.storage, image, env, resources, redis and "
            "metrics only apply to a cache the service creates (kvCache.type); set them on the "
            "AIMKVCache shared-cache instead"
        ],
    ),
    (
        "kvcache-name-with-redis-settings",
        service(
            {
                "model": MODEL,
                "kvCache": {"name": "shared-cache", "redis": {"persistence": "None"}},
            }
        ),
        [
            "spec.kvCache: Invalid value: kvCache.storage, image, env, resources, redis and "
            "metrics only apply to a cache the service creates (kvCache.type); set them on the "
            "AIMKVCache shared-cache instead"
        ],
    ),
    (
        "redis-unknown-eviction-policy",
        cache({"redis": {"maxMemoryPolicy": "lru"}}),
        [
            'spec.redis.maxMemoryPolicy: Unsupported value: "lru": supported values: '
            '"allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", '
            '"volatile-random", "volatile-ttl", "noeviction"',
            NOT_CHECKED,
        ],
    ),
    (
        "redis-unknown-persistence",
        cache({"redis": {"persistence": "rdb"}}),
        [
            'spec.redis.persistence: Unsupported value: "rdb": supported values: "None", "RDB", '
            '"AOF"',
            NOT_CHECKED,
        ],
    ),
    (
        "redis-maxmemory-not-a-quantity",
        cache({"redis": {"maxMemory": "1.5 gigs"}}),
        [
            f'spec.redis.maxMemory: Invalid value: "1.5 gigs": spec.redis.maxMemory in body '
            f"should match '{QUANTITY_RE}'"
        ],
    ),
    (
        "redis-maxmemory-above-limit",
        cache({"resources": {"limits": {"memory": "2Gi"}}, "redis": {"maxMemory": "3Gi"}}),
        [
            "spec: Invalid value: redis.maxMemory 3Gi must be above zero and below the container "
            "memory 2Gi (resources.limits.memory, else resources.requests.memory, else 1Gi), or "
            "Redis is OOM-killed before it evicts; lower redis.maxMemory or raise the memory limit"
        ],
    ),
    (
        "redis-maxmemory-default-limit",
        cache({"redis": {"maxMemory": "1Gi"}}),
        [
            "spec: Invalid value: redis.maxMemory 1Gi must be above zero and below the container "
            "memory 1Gi (resources.limits.memory, else resources.requests.memory, else 1Gi), or "
            "Redis is OOM-killed before it evicts; lower redis.maxMemory or raise the memory limit"
        ],
    ),
    (
        "own-cache-maxmemory-above-request",
        service(
            {
                "model": MODEL,
                "kvCache": {
                    "type": "redis",
                    "resources": {"requests": {"memory": "512Mi"}},
                    "redis": {"maxMemory": "600Mi"},
                },
            }
        ),
        [
            "spec.kvCache: Invalid value: redis.maxMemory 600Mi must be above zero and below the "
            "container memory 512Mi (resources.limits.memory, else resources.requests.memory, "
            "else 1Gi), or Redis is OOM-killed before it evicts; lower redis.maxMemory or raise "
            "the memory limit"
        ],
    ),
    (
        "pull-policy-unknown",
        cache({"imagePullPolicy": "Sometimes"}),
        [
            'spec.imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
            '"IfNotPresent", "Never"',
            NOT_CHECKED,
        ],
    ),
    (
        "toleration-exists-with-value",
        cache({"tolerations": [{"key": "gpu", "operator": "Exists", "value": "true"}]}),
        [
            "spec.tolerations[0]: Invalid value: a toleration with operator Exists must not "
            "set value"
        ],
    ),
    (
        "service-toleration-unknown-effect",
        service({"model": MODEL, "tolerations": [{"key": "gpu", "effect": "NoRun"}]}),
        [
            'spec.tolerations[0].effect: Unsupported value: "NoRun": supported values: '
            '"NoSchedule", "PreferNoSchedule", "NoExecute"',
            NOT_CHECKED,
        ],
    ),
    (
        "kvcache-name-invalid",
        service({"model": MODEL, "kvCache": {"name": "Shared_Cache"}}),
        [
            'spec.kvCache.name: Invalid value: "Shared_Cache": kvCache.name must be the name of an '
            "AIMKVCache: at most 40 lowercase letters, digits and '-', starting with a letter"
        ],
    ),
    (
        "kvcache-storage-size-negative",
        service({"model": MODEL, "kvCache": {"type": "redis", "storage": {"size": "-5Gi"}}}),
        [
            'spec.kvCache.storage.size: Invalid value: "-5Gi": storage.size must be greater than '
            "zero, for example 1Gi"
        ],
    ),
    (
        "service-name-too-long-for-its-cache",
        service({"model": MODEL, "kvCache": {"type": "redis"}}, name="s" * 33),
        [
            "metadata.name: Invalid value: with spec.kvCache.type the service creates the "
            "AIMKVCache kvcache-<service name>, whose name may have at most 40 characters, so the "
            "service name may have at most 32; choose a shorter name, or create an AIMKVCache and "
            "set spec.kvCache.name"
        ],
    ),
    (
        "service-name-too-long",
        service({"model": MODEL}, name="s" * 64),
        [
            "metadata.name: Invalid value: AIMService names may have at most 63 characters: its "
            "Service is named after it and its pods are labelled with it; choose a shorter name"
        ],
    ),
    (
        # One message per problem: past 63 the own-cache limit does not speak as well.
        "service-name-too-long-with-its-own-cache",
        service({"model": MODEL, "kvCache": {"type": "redis"}}, name="s" * 64),
        [
            "metadata.name: Invalid value: AIMService names may have at most 63 characters: its "
            "Service is named after it and its pods are labelled with it; choose a shorter name"
        ],
    ),
    (
        "service-name-with-a-dot",
        service({"model": MODEL}, name="llama.chat"),
        [
            "metadata.name: Invalid value: AIMService names must be DNS-1035 labels: lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit "
            "(its Deployment and Service are named after it); choose another name"
        ],
    ),
    (
        # Its name would be a value of the shared cache's NetworkPolicy selector.
        "service-name-with-a-dot-using-a-shared-cache",
        service({"model": MODEL, "kvCache": {"name": "shared-cache"}}, name="llama.chat"),
        [
            "metadata.name: Invalid value: AIMService names must be DNS-1035 labels: lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit "
            "(its Deployment and Service are named after it); choose another name"
        ],
    ),
    (
        "service-name-starts-with-digit",
        service({"model": MODEL, "kvCache": {"type": "redis"}}, name="8b-chat"),
        [
            "metadata.name: Invalid value: AIMService names must be DNS-1035 labels: lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit "
            "(its Deployment and Service are named after it); choose another name"
        ],
    ),
    ("service-without-spec", service(None), ["spec: Required value", NOT_CHECKED]),
    (
        "service-without-model",
        service({"kvCache": {"type": "redis"}}),
        ["spec.model: Required value", NOT_CHECKED],
    ),
    (
        "service-empty-image",
        service({"model": {"image": ""}}),
        [
            'spec.model.image: Invalid value: "": spec.model.image in body should be at least 1 '
            "chars long"
        ],
    ),
    (
        "service-negative-replicas",
        service({"model": MODEL, "replicas": -1}),
        [
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or "
            "equal to 0"
        ],
    ),
    (
        "service-replicas-not-a-number",
        service({"model": MODEL, "replicas": "two"}),
        [
            'spec.replicas: Invalid value: "string": spec.replicas in body must be of type '
            'integer: "string"',
            NOT_CHECKED,
        ],
    ),
    (
        "service-port-out-of-range",
        service({"model": MODEL, "port": 70000}),
        [
            "spec.port: Invalid value: 70000: spec.port in body should be less than or equal "
            "to 65535"
        ],
    ),
    (
        "service-field-miscased",
        service({"model": MODEL, "kvcache": {"type": "redis"}}),
        ['unknown field "spec.kvcache"'],
    ),
    (
        "service-gpu-request-above-limit",
        service(
            {
                "model": MODEL,
                "resources": {"requests": {"amd.com/gpu": 2}, "limits": {"amd.com/gpu": 1}},
            }
        ),
        [
            "spec.resources: Invalid value: resources.requests must not exceed resources.limits "
            "of the same resource; lower the request or raise the limit"
        ],
    ),
]


@pytest.mark.parametrize(("obj", "errors"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_object_is_rejected_with_an_actionable_message(
    aim: Kubectl, obj: dict[str, Any], errors: list[str]
) -> None:
    got = rejection(aim.apply(obj))
    if errors[-1] is MORE:  # kubectl's own follow-up lines are not ours to pin down
        assert got[: len(errors) - 1] == errors[:-1]
    else:
        assert got == errors


def own(storage: dict[str, Any] | None, name: str = "svc") -> dict[str, Any]:
    """A service with its own cache (``kvCache.type``), its storage set when not None."""
    kv: dict[str, Any] = {"type": "redis"}
    if storage is not None:
        kv["storage"] = storage
    return service({"model": MODEL, "kvCache": kv}, name)


_RECREATE = "delete and recreate the AIMService to get a new, empty cache"
_SMALLER = "delete and recreate the AIMService to get a new, smaller cache"

# Changes of spec.kvCache.storage that the service's own AIMKVCache (kvcache-svc) would refuse:
# (id, storage before, storage after (None: unset), the exact error kubectl prints).
OWN_CACHE_REFUSED: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None, str]] = [
    (
        "service-cache-size-shrinks",
        {"size": "10Gi"},
        {"size": "1Gi"},
        "spec.kvCache.storage.size: Invalid value: AIMKVCache kvcache-svc has 10Gi and can grow "
        f"but never shrink; set a size of at least 10Gi, or {_SMALLER}",
    ),
    (
        "service-cache-storage-removed-after-growing",
        {"size": "5Gi"},
        None,
        "spec.kvCache.storage.size: Invalid value: AIMKVCache kvcache-svc has 5Gi and can grow "
        f"but never shrink; set a size of at least 5Gi, or {_SMALLER}",
    ),
    (
        "service-cache-storage-added-below-the-default",
        None,
        {"size": "500Mi"},
        "spec.kvCache.storage.size: Invalid value: AIMKVCache kvcache-svc has 1Gi and can grow "
        f"but never shrink; set a size of at least 1Gi, or {_SMALLER}",
    ),
    (
        "service-cache-storage-class-set-later",
        None,
        {"storageClassName": "fast-ssd"},
        "spec.kvCache.storage.storageClassName: Invalid value: the storage class of AIMKVCache "
        "kvcache-svc cannot change (it was created with the cluster default storage class); "
        f"remove storageClassName, or {_RECREATE}",
    ),
    (
        "service-cache-storage-class-set-later-beside-the-size",
        {"size": "2Gi"},
        {"size": "2Gi", "storageClassName": "fast-ssd"},
        "spec.kvCache.storage.storageClassName: Invalid value: the storage class of AIMKVCache "
        "kvcache-svc cannot change (it was created with the cluster default storage class); "
        f"remove storageClassName, or {_RECREATE}",
    ),
    (
        "service-cache-storage-class-changes",
        {"storageClassName": "fast-ssd"},
        {"storageClassName": "slow-hdd"},
        "spec.kvCache.storage.storageClassName: Invalid value: the storage class of AIMKVCache "
        "kvcache-svc cannot change (it was created with storage class fast-ssd); set "
        f"storageClassName: fast-ssd, or {_RECREATE}",
    ),
    (
        "service-cache-storage-removed-with-its-class",
        {"storageClassName": "fast-ssd"},
        None,
        "spec.kvCache.storage.storageClassName: Invalid value: the storage class of AIMKVCache "
        "kvcache-svc cannot change (it was created with storage class fast-ssd); set "
        f"storageClassName: fast-ssd, or {_RECREATE}",
    ),
    (
        "service-cache-access-modes-set-later",
        None,
        {"accessModes": ["ReadWriteMany"]},
        "spec.kvCache.storage.accessModes: Invalid value: the access modes of AIMKVCache "
        "kvcache-svc cannot change (it was created with [ReadWriteOnce]); set accessModes: "
        f"[ReadWriteOnce], or {_RECREATE}",
    ),
    (
        "service-cache-access-modes-change",
        {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]},
        {"accessModes": ["ReadWriteOnce"]},
        "spec.kvCache.storage.accessModes: Invalid value: the access modes of AIMKVCache "
        "kvcache-svc cannot change (it was created with [ReadWriteOnce, ReadOnlyMany]); set "
        f"accessModes: [ReadWriteOnce, ReadOnlyMany], or {_RECREATE}",
    ),
    (
        "service-cache-storage-removed-with-its-access-modes",
        {"accessModes": ["ReadWriteMany"]},
        None,
        "spec.kvCache.storage.accessModes: Invalid value: the access modes of AIMKVCache "
        "kvcache-svc cannot change (it was created with [ReadWriteMany]); set accessModes: "
        f"[ReadWriteMany], or {_RECREATE}",
    ),
]

# Changes of spec.kvCache.storage the service's own cache takes: (id, before, after).
OWN_CACHE_ACCEPTED: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [
    ("service-cache-storage-added-with-the-defaults", None, {"size": "1Gi"}),
    ("service-cache-storage-added-spelled-out", None, {"accessModes": ["ReadWriteOnce"]}),
    ("service-cache-storage-added-larger", None, {"size": "2Gi"}),
    ("service-cache-storage-removed-at-the-default-size", {"size": "1024Mi"}, None),
    ("service-cache-storage-removed-below-the-default", {"size": "512Mi"}, None),
    ("service-cache-grows", {"size": "10Gi"}, {"size": "20Gi"}),
    (
        "service-cache-access-modes-reordered",
        {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]},
        {"accessModes": ["ReadOnlyMany", "ReadWriteOnce"]},
    ),
    (
        "service-cache-class-kept-and-grows",
        {"storageClassName": "fast-ssd"},
        {"storageClassName": "fast-ssd", "size": "2Gi"},
    ),
]


# (id, valid object, invalid update of it, the exact error kubectl prints)
TRANSITIONS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        "size-shrinks",
        cache(storage(size="10Gi")),
        cache(storage(size="5Gi")),
        'spec.storage.size: Invalid value: "5Gi": storage.size cannot shrink (was 10Gi); create '
        "a new cache to reduce size",
    ),
    (
        "size-shrinks-across-int-and-string",
        cache(storage(size=1073741824)),
        cache(storage(size="1Mi")),
        'spec.storage.size: Invalid value: "1Mi": storage.size cannot shrink (was 1073741824); '
        "create a new cache to reduce size",
    ),
    (
        "storage-class-changes",
        cache(storage(storageClassName="fast-ssd")),
        cache(storage(storageClassName="slow-hdd")),
        "spec.storage: Invalid value: storage.storageClassName is immutable (was fast-ssd); "
        "create a new cache to use a different storage class",
    ),
    (
        "storage-class-is-set-later",
        cache(storage(size="1Gi")),
        cache(storage(size="1Gi", storageClassName="fast-ssd")),
        "spec.storage: Invalid value: storage.storageClassName cannot be set after creation (the "
        "cache uses the cluster default storage class); create a new cache to use a different "
        "storage class",
    ),
    (
        "storage-class-is-removed",
        cache(storage(storageClassName="fast-ssd")),
        cache(storage()),
        "spec.storage: Invalid value: storage.storageClassName is immutable (was fast-ssd); "
        "create a new cache to use a different storage class",
    ),
    (
        "access-modes-change",
        cache(storage(accessModes=["ReadWriteOnce"])),
        cache(storage(accessModes=["ReadWriteMany"])),
        "spec.storage: Invalid value: storage.accessModes is immutable (was [ReadWriteOnce]); "
        "create a new cache to use other access modes",
    ),
    (
        "service-name-too-long-to-get-its-own-cache",
        service({"model": MODEL, "kvCache": {"name": "shared-cache"}}, name="s" * 40),
        service({"model": MODEL, "kvCache": {"type": "redis"}}, name="s" * 40),
        "metadata.name: Invalid value: with spec.kvCache.type the service creates the AIMKVCache "
        "kvcache-<service name>, whose name may have at most 40 characters, so the service name "
        "may have at most 32; choose a shorter name, or create an AIMKVCache and set "
        "spec.kvCache.name",
    ),
    *[(case, own(before), own(after), error) for case, before, after, error in OWN_CACHE_REFUSED],
]


@pytest.mark.parametrize(
    ("before", "after", "error"), [t[1:] for t in TRANSITIONS], ids=[t[0] for t in TRANSITIONS]
)
def test_invalid_change_is_rejected_with_an_actionable_message(
    aim: Kubectl, before: dict[str, Any], after: dict[str, Any], error: str
) -> None:
    created = aim.apply(before)
    assert created.returncode == 0, created.stderr
    assert rejection(aim.apply(after)) == [error]


ALLOWED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("size-grows", cache(storage(size="10Gi")), cache(storage(size="20Gi"))),
    ("size-respelled", cache(storage(size="1Gi")), cache(storage(size=1073741824))),
    (
        "access-modes-reordered",  # a set: order is free
        cache(storage(accessModes=["ReadWriteOnce", "ReadOnlyMany"])),
        cache(storage(accessModes=["ReadOnlyMany", "ReadWriteOnce"])),
    ),
    (
        "class-kept",
        cache(storage(storageClassName="fast-ssd")),
        cache(storage(storageClassName="fast-ssd", size="2Gi")),
    ),
    (
        "type-to-name",  # the service's own cache is deleted, not changed
        own({"size": "10Gi", "storageClassName": "fast-ssd"}),
        service({"model": MODEL, "kvCache": {"name": "shared-cache"}}),
    ),
    (
        "name-to-type",  # a new cache: any storage
        service({"model": MODEL, "kvCache": {"name": "shared-cache"}}),
        own({"size": "500Mi", "storageClassName": "fast-ssd", "accessModes": ["ReadWriteMany"]}),
    ),
    (
        "kvcache-removed",
        own({"size": "10Gi", "storageClassName": "fast-ssd"}),
        service({"model": MODEL}),
    ),
    (
        "redis-settings-changed",  # all of spec.redis may change: the pod rolls
        cache({"resources": {"limits": {"memory": "2Gi"}}, "redis": {"maxMemory": "1536Mi"}}),
        cache(
            {
                "resources": {"limits": {"memory": "4Gi"}},
                "redis": {
                    "maxMemory": "3Gi",
                    "maxMemoryPolicy": "allkeys-lfu",
                    "persistence": "AOF",
                },
                "metrics": {"enabled": True},
                "imagePullPolicy": "Always",
                "imagePullSecrets": [{"name": "mirror"}],
                "nodeSelector": {"pool": "cache"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {}},
                "priorityClassName": "high",
            }
        ),
    ),
    ("longest-names", service({"model": MODEL}, "s" * 63), service({"model": MODEL}, "s" * 63)),
    ("longest-name-with-own-cache", own(None, "s" * 32), own({"size": "2Gi"}, "s" * 32)),
    (
        "long-name-with-shared-cache",
        service({"model": MODEL, "kvCache": {"name": "c" * 40}}, "s" * 63),
        service({"model": MODEL, "kvCache": {"name": "c" * 40}}, "s" * 63),
    ),
    ("longest-cache-name", cache({}, "c" * 40), cache(storage(size="2Gi"), "c" * 40)),
    *[(case, own(before), own(after)) for case, before, after in OWN_CACHE_ACCEPTED],
]


@pytest.mark.parametrize(("before", "after"), [a[1:] for a in ALLOWED], ids=[a[0] for a in ALLOWED])
def test_allowed_change_is_accepted(
    aim: Kubectl, before: dict[str, Any], after: dict[str, Any]
) -> None:
    created = aim.apply(before)
    assert created.returncode == 0, created.stderr
    result = aim.apply(after)
    assert result.returncode == 0, result.stderr


# -- the service's rules on spec.kvCache mirror its own cache's ---------------------------------

MIRRORED = [(c, before, after) for c, before, after, _ in OWN_CACHE_REFUSED] + OWN_CACHE_ACCEPTED


@pytest.mark.parametrize(
    ("before", "after"), [m[1:] for m in MIRRORED], ids=[m[0] for m in MIRRORED]
)
def test_the_service_refuses_exactly_what_its_own_cache_would(
    aim: Kubectl, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    """The AIMKVCache the operator derives from each version of the service (``auto_cache``,
    applied as the service controller does: server-side, its field manager) takes the change
    exactly when the AIMService did, and the model's mirror of the rules says the same."""
    assert aim.apply(own(before)).returncode == 0
    old = aim.get("aimservice", "svc")
    service_said = aim.apply(own(after))
    new = aim.get("aimservice", "svc") if service_said.returncode == 0 else None

    def apply_cache(svc: dict[str, Any] | None) -> Any:
        # The refused service never reaches the operator: derive the cache from what was sent.
        raw = svc or {**own(after), "metadata": old["metadata"]}
        cache_obj = auto_cache(AIMService.model_validate(raw), raw, "kvcache-svc")
        return aim(
            "apply", "--server-side", f"--field-manager={SERVICE_CONTROLLER}", "-f", "-",
            input=json.dumps(cache_obj),
        )  # fmt: skip

    assert apply_cache(old).returncode == 0
    cache_said = apply_cache(new)
    assert (service_said.returncode == 0) == (cache_said.returncode == 0), (
        service_said.stderr,
        cache_said.stderr,
    )
    mirror = AIMService.model_validate({**own(after), "metadata": old["metadata"]})
    errors = mirror.own_cache_change_errors(AIMService.model_validate(old))
    if service_said.returncode == 0:
        assert errors == []
    else:
        assert [e.split(": Invalid value: ", 1)[1] for e in rejection(service_said)] == errors


def test_the_table_is_big_enough() -> None:
    assert len(INVALID) + len(TRANSITIONS) >= 45
    assert len(MIRRORED) >= 18
