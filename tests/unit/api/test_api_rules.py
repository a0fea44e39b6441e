"""The models mirror the CRDs' admission rules: names that fit every child, and the changes of an
AIMService's ``spec.kvCache`` that its own AIMKVCache would refuse.

The API server's own verdicts and messages are pinned in
``tests/integration/api/test_api_validation.py``, which also checks that these mirrors say the
same as the server, message for message.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aimctl.api.crd import generate_crds
from aimctl.api.v1alpha1 import (
    AIMKVCACHE_MAX_NAME_LENGTH,
    AIMSERVICE_MAX_NAME_LENGTH,
    AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE,
    AUTO_KVCACHE_PREFIX,
    AIMKVCache,
    AIMService,
)

CACHE_TOO_LONG = (
    "AIMKVCache names may have at most 40 characters: its StatefulSet <name>-statefulset may "
    "have at most 52, so that the controller-revision-hash label of its pods fits in 63; choose "
    "a shorter name"
)
CACHE_NOT_DNS1035 = (
    "AIMKVCache names must be DNS-1035 labels: lowercase letters, digits and '-', starting with "
    "a letter and ending with a letter or digit (its Service <name>-svc is named after it); "
    "choose another name"
)
SERVICE_TOO_LONG = (
    "AIMService names may have at most 63 characters: its Service is named after it and its pods "
    "are labelled with it; choose a shorter name"
)
SERVICE_TOO_LONG_FOR_ITS_CACHE = (
    "with spec.kvCache.type the service creates the AIMKVCache kvcache-<service name>, whose "
    "name may have at most 40 characters, so the service name may have at most 32; choose a "
    "shorter name, or create an AIMKVCache and set spec.kvCache.name"
)
SERVICE_NOT_DNS1035 = (
    "AIMService names must be DNS-1035 labels: lowercase letters, digits and '-', starting with "
    "a letter and ending with a letter or digit (its Deployment and Service are named after it); "
    "choose another name"
)


# -- names ---------------------------------------------------------------------------------------


def test_the_name_limits_leave_room_for_every_child() -> None:
    cache = "c" * AIMKVCACHE_MAX_NAME_LENGTH
    statefulset = f"{cache}-statefulset"
    assert len(f"{statefulset}-0") <= 63  # the pod's hostname and its pod-name label
    assert len(f"{statefulset}-{'h' * 10}") == 63  # its pods' controller-revision-hash label
    assert len(f"{cache}-svc") <= 63  # a Service: a DNS-1035 label
    assert len(f"redis-data-{statefulset}-0") <= 253  # the PVC
    assert len(f"{cache}-netpol") <= 253
    service = "s" * AIMSERVICE_MAX_NAME_LENGTH
    assert len(service) <= 63  # its Service, and the label values on its pods
    assert len(f"{service}-lmcache") <= 253  # the ConfigMap
    own = "s" * AIMSERVICE_MAX_NAME_LENGTH_WITH_OWN_CACHE
    assert len(f"{AUTO_KVCACHE_PREFIX}{own}") == AIMKVCACHE_MAX_NAME_LENGTH


@pytest.mark.parametrize(
    ("name", "errors"),
    [
        ("shared-cache", []),
        ("c" * 40, []),
        ("c", []),
        ("c" * 41, [CACHE_TOO_LONG]),
        ("1cache", [CACHE_NOT_DNS1035]),
        ("shared.cache", [CACHE_NOT_DNS1035]),
        ("cache-", [CACHE_NOT_DNS1035]),
        ("Cache", [CACHE_NOT_DNS1035]),
        ("cache\n", [CACHE_NOT_DNS1035]),
        ("9" * 41, [CACHE_TOO_LONG, CACHE_NOT_DNS1035]),
    ],
)
def test_cache_names(name: str, errors: list[str]) -> None:
    assert AIMKVCache.name_errors(name) == errors
    obj = {"metadata": {"name": name}}
    if errors:
        with pytest.raises(ValidationError, match="AIMKVCache names"):
            AIMKVCache.model_validate(obj)
    else:
        assert AIMKVCache.model_validate(obj).name == name


@pytest.mark.parametrize(
    ("name", "own_cache", "errors"),
    [
        ("llama-chat", True, []),
        ("s" * 32, True, []),
        ("s" * 33, False, []),
        ("s" * 63, False, []),
        ("s" * 33, True, [SERVICE_TOO_LONG_FOR_ITS_CACHE]),
        ("s" * 64, False, [SERVICE_TOO_LONG]),
        ("s" * 64, True, [SERVICE_TOO_LONG]),  # one message per problem
        ("llama.chat", False, [SERVICE_NOT_DNS1035]),
        ("8b-chat", True, [SERVICE_NOT_DNS1035]),
        ("chat-", False, [SERVICE_NOT_DNS1035]),
        ("1" * 70, True, [SERVICE_NOT_DNS1035, SERVICE_TOO_LONG]),
    ],
)
def test_service_names(name: str, own_cache: bool, errors: list[str]) -> None:
    assert AIMService.name_errors(name, own_cache=own_cache) == errors
    kv = {"type": "redis"} if own_cache else {"name": "shared-cache"}
    obj = {"metadata": {"name": name}, "spec": {"model": {"image": "m"}, "kvCache": kv}}
    if errors:
        with pytest.raises(ValidationError) as err:
            AIMService.model_validate(obj)
        assert "; ".join(errors) in str(err.value)
    else:
        assert AIMService.model_validate(obj).name == name


def test_objects_without_a_name_yet_parse() -> None:
    """A model built in code, or an object with only generateName, has no name to check."""
    assert AIMKVCache.model_validate({"metadata": {"generateName": "1."}}).name == ""
    svc = AIMService.model_validate(
        {"metadata": {"generateName": "x" * 50}, "spec": {"model": {"image": "m"}}}
    )
    assert svc.name == ""


# -- changes of the service's own cache ----------------------------------------------------------


def own(storage: dict[str, Any] | None, *, name: str = "llama") -> AIMService:
    kv: dict[str, Any] = {"type": "redis"}
    if storage is not None:
        kv["storage"] = storage
    return AIMService.model_validate(
        {"metadata": {"name": name}, "spec": {"model": {"image": "m"}, "kvCache": kv}}
    )


def shared() -> AIMService:
    return AIMService.model_validate(
        {"metadata": {"name": "llama"}, "spec": {"model": {"image": "m"}, "kvCache": {"name": "c"}}}
    )


RECREATE = "delete and recreate the AIMService to get a new, empty cache"


@pytest.mark.parametrize(
    ("before", "after", "errors"),
    [
        (None, {"size": "1Gi", "accessModes": ["ReadWriteOnce"]}, []),
        (None, {"size": 1073741824}, []),
        (None, {"size": "2Gi"}, []),
        ({"size": "1024Mi"}, None, []),
        ({"size": "512Mi"}, None, []),
        ({"size": "10Gi"}, {"size": "20Gi"}, []),
        (
            {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]},
            {"accessModes": ["ReadOnlyMany", "ReadWriteOnce"]},
            [],
        ),
        (
            {"size": "10Gi"},
            {"size": "1Gi"},
            [
                "AIMKVCache kvcache-llama has 10Gi and can grow but never shrink; set a size of at "
                "least 10Gi, or delete and recreate the AIMService to get a new, smaller cache"
            ],
        ),
        (
            None,
            {"size": "500Mi"},
            [
                "AIMKVCache kvcache-llama has 1Gi and can grow but never shrink; set a size of at "
                "least 1Gi, or delete and recreate the AIMService to get a new, smaller cache"
            ],
        ),
        (
            None,
            {"storageClassName": "fast-ssd"},
            [
                "the storage class of AIMKVCache kvcache-llama cannot change (it was created with "
                f"the cluster default storage class); remove storageClassName, or {RECREATE}"
            ],
        ),
        (
            {"storageClassName": "fast-ssd"},
            None,
            [
                "the storage class of AIMKVCache kvcache-llama cannot change (it was created with "
                f"storage class fast-ssd); set storageClassName: fast-ssd, or {RECREATE}"
            ],
        ),
        (
            {"accessModes": ["ReadWriteMany", "ReadOnlyMany"]},
            None,
            [
                "the access modes of AIMKVCache kvcache-llama cannot change (it was created with "
                "[ReadWriteMany, ReadOnlyMany]); set accessModes: [ReadWriteMany, ReadOnlyMany], "
                f"or {RECREATE}"
            ],
        ),
        (
            {"size": "10Gi", "storageClassName": "fast-ssd"},
            {"size": "1Gi", "accessModes": ["ReadWriteMany"]},
            [  # every problem, in the CRD's rule order
                "the storage class of AIMKVCache kvcache-llama cannot change (it was created with "
                f"storage class fast-ssd); set storageClassName: fast-ssd, or {RECREATE}",
                "the access modes of AIMKVCache kvcache-llama cannot change (it was created with "
                f"[ReadWriteOnce]); set accessModes: [ReadWriteOnce], or {RECREATE}",
                "AIMKVCache kvcache-llama has 10Gi and can grow but never shrink; set a size of at "
                "least 10Gi, or delete and recreate the AIMService to get a new, smaller cache",
            ],
        ),
    ],
)
def test_own_cache_changes_are_checked_against_the_cache(
    before: dict[str, Any] | None, after: dict[str, Any] | None, errors: list[str]
) -> None:
    assert own(after).own_cache_change_errors(own(before)) == errors


def test_changes_that_create_or_delete_the_own_cache_are_free() -> None:
    big = own({"size": "10Gi", "storageClassName": "fast-ssd", "accessModes": ["ReadWriteMany"]})
    none = AIMService.model_validate(
        {"metadata": {"name": "llama"}, "spec": {"model": {"image": "m"}}}
    )
    for old, new in ((big, shared()), (shared(), big), (big, none), (none, big)):
        assert new.own_cache_change_errors(old) == []


# -- the static rules of spec.kvCache are the cache's --------------------------------------------


def _schema(plural: str) -> dict[str, Any]:
    (crd,) = [c for c in generate_crds() if c["spec"]["names"]["plural"] == plural]
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _without(schema: Any, keys: set[str]) -> Any:
    """``schema`` without descriptions, and without the CEL rules that read ``oldSelf``."""
    if isinstance(schema, list):
        return [_without(s, keys) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _without(v, keys) for k, v in schema.items() if k not in keys}
    rules = [r for r in out.pop("x-kubernetes-validations", []) if "oldSelf" not in r["rule"]]
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def test_the_own_cache_settings_have_the_caches_static_rules() -> None:
    """What the AIMKVCache refuses at creation, spec.kvCache refuses too (same fields, bounds,
    patterns, enums and value rules), so a service whose spec passes creates a cache that
    passes; the changes the cache refuses are the root rules tested above."""
    cache = _schema("aimkvcaches")["properties"]["spec"]["properties"]
    kv = _schema("aimservices")["properties"]["spec"]["properties"]["kvCache"]["properties"]
    ignore = {"description", "default"}
    for field in ("image", "env", "resources", "storage"):
        assert _without(kv[field], ignore) == _without(cache[field], ignore), field
    assert kv["type"]["enum"] == cache["kvCacheType"]["enum"]
    # The cache keeps its defaults (the server fills them in); the service's storage has them
    # too, so an unset field there means the same as on the cache.
    assert (
        kv["storage"]["properties"]["size"]["default"]
        == (cache["storage"]["properties"]["size"]["default"])
    )
    assert (
        kv["storage"]["properties"]["accessModes"]["default"]
        == (cache["storage"]["properties"]["accessModes"]["default"])
    )
