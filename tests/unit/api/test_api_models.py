"""The v1alpha1 models: parsing objects from the server, dumping camelCase, defaults, samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

import aimctl.api.v1alpha1 as v1
from aimctl.api.v1alpha1 import (
    AIMKVCACHE_KIND,
    AIMKVCACHE_PLURAL,
    AIMSERVICE_KIND,
    AIMSERVICE_PLURAL,
    API_VERSION,
    GROUP,
    VERSION,
    AccessMode,
    AIMKVCache,
    AIMKVCacheSpec,
    AIMKVCacheStatus,
    AIMService,
    AIMServiceConditionType,
    Condition,
    ConditionStatus,
    CustomResource,
    EnvVar,
    KVCacheStatus,
    KVCacheType,
    ObjectMeta,
    ServiceStatus,
    StorageSpec,
)

SAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "samples"

FROM_SERVER: dict[str, Any] = {
    "apiVersion": "aim.silogen.ai/v1alpha1",
    "kind": "AIMKVCache",
    "metadata": {
        "name": "shared-cache",
        "namespace": "ml-team",
        "uid": "0b6c",
        "generation": 3,
        "resourceVersion": "812",
        "creationTimestamp": "2025-01-02T03:04:05Z",
        "managedFields": [{"manager": "kubectl"}],
        "ownerReferences": [{"kind": "AIMService", "name": "llama-chat", "uid": "1"}],
    },
    "spec": {
        "kvCacheType": "redis",
        "storage": {
            "size": "200Gi",
            "storageClassName": "fast-ssd",
            "accessModes": ["ReadWriteOnce"],
        },
        "fromTheFuture": {"x": 1},
    },
    "status": {
        "status": "Ready",
        "observedGeneration": 3,
        "readyReplicas": 1,
        "replicas": 1,
        "endpoint": "redis://shared-cache-svc:6379",
        "users": ["llama-chat", "llama-completion"],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "StatefulSetReady",
                "message": "StatefulSet and service are ready",
                "lastTransitionTime": "2025-01-02T03:05:00Z",
                "observedGeneration": 3,
            }
        ],
        "somethingNew": True,
    },
}


def test_an_object_from_the_server_parses_and_ignores_unknown_fields() -> None:
    cache = AIMKVCache.model_validate(FROM_SERVER)
    assert (cache.name, cache.namespace, cache.metadata.generation) == (
        "shared-cache",
        "ml-team",
        3,
    )
    assert cache.spec.kv_cache_type is KVCacheType.REDIS
    assert cache.spec.storage.size == "200Gi"
    assert cache.spec.storage.storage_class_name == "fast-ssd"
    assert cache.spec.storage.access_modes == [AccessMode.READ_WRITE_ONCE]
    assert cache.status is not None
    assert cache.status.status is KVCacheStatus.READY
    assert cache.status.ready_replicas == 1
    assert cache.status.users == ["llama-chat", "llama-completion"]
    assert cache.status.conditions[0].status is ConditionStatus.TRUE


def test_dump_is_camel_case_json_and_keeps_metadata_whole() -> None:
    dumped = AIMKVCache.model_validate(FROM_SERVER).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    assert dumped["metadata"] == FROM_SERVER["metadata"]  # round-trip safe, managedFields too
    expected_spec = {k: v for k, v in FROM_SERVER["spec"].items() if k != "fromTheFuture"}
    assert dumped["spec"] == expected_spec
    expected_status = {k: v for k, v in FROM_SERVER["status"].items() if k != "somethingNew"}
    assert dumped["status"] == expected_status


def test_models_build_from_snake_case_and_default_like_the_crd() -> None:
    cache = AIMKVCache(
        metadata=ObjectMeta(name="c", namespace="ns"),
        spec=AIMKVCacheSpec(storage=StorageSpec(size="10Gi", storage_class_name="fast-ssd")),
    )
    assert cache.kind == AIMKVCACHE_KIND
    assert cache.api_version == API_VERSION
    assert cache.model_dump(by_alias=True, exclude_none=True, mode="json") == {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": "c", "namespace": "ns"},
        "spec": {
            "kvCacheType": "redis",
            "storage": {
                "size": "10Gi",
                "storageClassName": "fast-ssd",
                "accessModes": ["ReadWriteOnce"],
            },
        },
    }
    assert StorageSpec().size == "1Gi"
    assert StorageSpec().access_modes == ["ReadWriteOnce"]
    assert StorageSpec().storage_class_name is None


def test_defaults_are_not_shared_between_instances() -> None:
    a, b = StorageSpec(), StorageSpec()
    a.access_modes.append(AccessMode.READ_WRITE_MANY)
    assert b.access_modes == [AccessMode.READ_WRITE_ONCE]


def test_quantities_accept_integers_and_reject_text_that_is_not_one() -> None:
    assert StorageSpec.model_validate({"size": 1073741824}).size == "1073741824"
    with pytest.raises(ValidationError, match="'ten-gigs' is not a Kubernetes quantity"):
        StorageSpec.model_validate({"size": "ten-gigs"})
    with pytest.raises(ValidationError):
        StorageSpec.model_validate({"size": True})


def test_service_names_its_cache() -> None:
    def service(kv: dict[str, Any] | None) -> AIMService:
        spec: dict[str, Any] = {"model": {"image": "img"}}
        if kv is not None:
            spec["kvCache"] = kv
        return AIMService.model_validate({"metadata": {"name": "llama-chat"}, "spec": spec})

    assert service({"type": "redis"}).kv_cache_name() == "kvcache-llama-chat"
    assert service({"name": "shared-cache"}).kv_cache_name() == "shared-cache"
    assert service(None).kv_cache_name() is None
    svc = service({"type": "redis", "lmCacheConfig": "chunk_size: 200\n"})
    assert svc.spec.kv_cache is not None
    assert svc.spec.kv_cache.lm_cache_config == "chunk_size: 200\n"
    assert (svc.spec.replicas, svc.spec.port) == (1, 8000)


def test_service_status_round_trips() -> None:
    status = {
        "status": "Running",
        "observedGeneration": 2,
        "resolvedKVCache": {"name": "shared-cache", "endpoint": "redis://shared-cache-svc:6379"},
        "conditions": [
            {
                "type": "KVCacheReady",
                "status": "True",
                "reason": "KVCacheReady",
                "message": "KV cache is ready",
                "lastTransitionTime": "2025-01-02T03:05:00Z",
            }
        ],
    }
    svc = AIMService.model_validate({"spec": {"model": {"image": "i"}}, "status": status})
    assert svc.status is not None
    assert svc.status.status is ServiceStatus.RUNNING
    assert svc.status.conditions[0].type == AIMServiceConditionType.KV_CACHE_READY
    assert svc.model_dump(by_alias=True, exclude_none=True, mode="json")["status"] == status


def test_condition_and_env_models() -> None:
    c = Condition(
        type="Ready", status=ConditionStatus.FALSE, reason="Pending", last_transition_time="t"
    )
    assert c.model_dump(mode="json", exclude_none=True) == {
        "type": "Ready",
        "status": "False",
        "reason": "Pending",
        "message": "",
        "lastTransitionTime": "t",
    }
    env = EnvVar.model_validate(
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    )
    assert env.value_from is not None
    assert env.value_from.secret_key_ref is not None
    assert env.model_dump(exclude_none=True) == {
        "name": "A",
        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
    }


def test_status_models_start_empty() -> None:
    assert AIMKVCacheStatus().model_dump(exclude_none=True) == {"conditions": [], "users": []}


def test_resource_identity() -> None:
    assert (GROUP, VERSION) == ("aim.silogen.ai", "v1alpha1")
    assert AIMKVCache.resource.plural == AIMKVCACHE_PLURAL == "aimkvcaches"
    assert AIMService.resource.plural == AIMSERVICE_PLURAL == "aimservices"
    assert AIMService.resource.kind == AIMSERVICE_KIND
    assert AIMKVCache.resource.api_version == API_VERSION
    assert AIMKVCache.resource.crd_name == "aimkvcaches.aim.silogen.ai"


def test_exports_are_complete() -> None:
    for name in v1.__all__:
        assert hasattr(v1, name), name
    public = {n for n in dir(v1) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(v1.__all__)


def _sample_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.name}:{doc['metadata']['name']}", doc))
    return docs


@pytest.mark.parametrize(
    ("where", "doc"), _sample_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_sample_parses_and_dumps_back_its_spec(where: str, doc: dict[str, Any]) -> None:
    kinds: dict[str, type[CustomResource]] = {"AIMKVCache": AIMKVCache, "AIMService": AIMService}
    model = kinds[doc["kind"]]
    obj = model.model_validate(doc)
    assert obj.namespace == "ml-team", where
    dumped = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert _is_subset(doc["spec"], dumped["spec"]), where


def _is_subset(small: Any, big: Any) -> bool:
    """Everything in ``small`` is in ``big`` (quantities may turn from int to text)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _is_subset(v, big[k]) for k, v in small.items()
        )
    if isinstance(small, list):
        return (
            isinstance(big, list)
            and len(small) == len(big)
            and all(_is_subset(a, b) for a, b in zip(small, big, strict=True))
        )
    return bool(small == big or str(small) == str(big))


def test_the_samples_index_lists_every_file() -> None:
    index = (SAMPLES / "README.md").read_text()
    files = sorted(p.name for p in SAMPLES.glob("*.yaml"))
    assert len(files) >= 16
    for name in files:
        assert f"`{name}`" in index, name


def test_api_version_and_kind_are_always_dumped() -> None:
    cache = AIMKVCache(metadata=ObjectMeta(name="c"))
    for options in ({"exclude_unset": True}, {"exclude_defaults": True}, {}):
        dumped = cache.model_dump(mode="json", **options)  # type: ignore[arg-type]
        assert dumped["apiVersion"] == API_VERSION
        assert dumped["kind"] == AIMKVCACHE_KIND
    assert cache.model_dump(by_alias=False)["api_version"] == API_VERSION
