"""Every sample (the guide's YAML) is accepted by a real kube-apiserver, and reading it back shows
the guide's "Default Behavior" table filled in by the API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aimctl.api.v1alpha1 import AIMKVCache, AIMService

from .aim_kubectl import SAMPLES_DIR, Kubectl

SAMPLE_FILES = sorted(SAMPLES_DIR.glob("*.yaml"))


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kept(small: Any, big: Any) -> bool:
    """Everything the sample set is read back unchanged: the CRD schema prunes no field (a
    misspelt or unmodelled field would silently vanish) and defaults only add."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _kept(v, big[k]) for k, v in small.items()
        )
    if isinstance(small, list):
        return (
            isinstance(big, list)
            and len(small) == len(big)
            and all(_kept(a, b) for a, b in zip(small, big, strict=True))
        )
    return bool(small == big)


def _expected_storage(given: dict[str, Any]) -> dict[str, Any]:
    """The guide's defaults: size 1Gi, accessModes [ReadWriteOnce], storageClassName unset."""
    return {"size": "1Gi", "accessModes": ["ReadWriteOnce"], **given}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_sample_is_accepted_and_reads_back_with_defaults(aim: Kubectl, path: Path) -> None:
    docs = _docs(path)
    result = aim.apply(*docs)
    assert result.returncode == 0, result.stderr

    for doc in docs:
        got = aim.get(doc["kind"], doc["metadata"]["name"])
        spec = got["spec"]
        assert _kept(doc["spec"], spec), (doc["metadata"]["name"], spec)
        if doc["kind"] == "AIMKVCache":
            assert spec["kvCacheType"] == doc["spec"].get("kvCacheType", "redis")
            assert spec["storage"] == _expected_storage(doc["spec"].get("storage", {}))
            AIMKVCache.model_validate(got)
        else:
            assert spec["model"] == doc["spec"]["model"]
            assert spec["replicas"] == doc["spec"].get("replicas", 1)
            assert spec["port"] == doc["spec"].get("port", 8000)
            kv = doc["spec"]["kvCache"]
            if "storage" in kv:
                assert spec["kvCache"]["storage"] == _expected_storage(kv["storage"])
            else:
                assert "storage" not in spec["kvCache"]
            AIMService.model_validate(got)


def test_quick_start_cache_reads_back_with_the_guides_defaults(aim: Kubectl) -> None:
    """Quick Start: "This creates an AIMKVCache resource with default settings (1Gi storage,
    default storage class, Redis backend)". The service's cache is created from its kvCache (here
    just the type); the API server fills in the rest."""
    (service,) = _docs(SAMPLES_DIR / "quick-start.yaml")
    assert aim.apply(service).returncode == 0
    svc = AIMService.model_validate(aim.get("aimservice", "llama-chat"))
    assert svc.spec.kv_cache is not None
    assert svc.spec.kv_cache.type is not None
    cache_name = svc.kv_cache_name()
    assert cache_name == "kvcache-llama-chat"

    cache = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": cache_name},
        "spec": {"kvCacheType": svc.spec.kv_cache.type.value},
    }
    assert aim.apply(cache).returncode == 0
    got = aim.get("aimkvcache", cache_name)
    assert got["spec"] == {
        "kvCacheType": "redis",
        "storage": {"size": "1Gi", "accessModes": ["ReadWriteOnce"]},
    }
    assert "storageClassName" not in got["spec"]["storage"]  # the cluster's default class


def test_an_empty_cache_gets_every_default(aim: Kubectl) -> None:
    empty = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": "c"},
    }
    assert aim.apply(empty).returncode == 0
    got = AIMKVCache.model_validate(aim.get("aimkvc", "c"))
    assert got.spec.kv_cache_type == "redis"
    assert (got.spec.storage.size, got.spec.storage.access_modes) == ("1Gi", ["ReadWriteOnce"])
    assert got.spec.storage.storage_class_name is None


def test_models_dump_objects_the_server_accepts(aim: Kubectl) -> None:
    """What a reconciler builds with the models and dumps is valid on the wire."""
    from aimctl.api.v1alpha1 import AIMKVCacheSpec, ObjectMeta, ResourceRequirements, StorageSpec

    cache = AIMKVCache(
        metadata=ObjectMeta(name="built"),
        spec=AIMKVCacheSpec(
            image="redis:7.2.4",
            resources=ResourceRequirements.model_validate(
                {"requests": {"cpu": "1"}, "limits": {"cpu": 2}}
            ),
            storage=StorageSpec.model_validate({"size": 5 * 1024**3, "storageClassName": "fast"}),
        ),
    )
    assert (
        aim.apply(cache.model_dump(by_alias=True, exclude_none=True, mode="json")).returncode == 0
    )
    got = AIMKVCache.model_validate(aim.get("aimkvcache", "built"))
    assert got.spec == cache.spec
