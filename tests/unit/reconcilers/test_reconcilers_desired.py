"""Desired-state builders: names, labels, owner references, and the guide's contracts."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, strategies as st

from aimctl.api.v1alpha1 import AIMKVCache, AIMService
from aimctl.objects import is_subset
from aimctl.reconcilers._common import leaf_equal
from aimctl.reconcilers.kvcache import _desired as kv
from aimctl.reconcilers.service import _desired as sv
from aimctl.reconcilers.service._names import cache_name_of

CACHE_RAW: dict[str, Any] = {
    "apiVersion": "aim.silogen.ai/v1alpha1",
    "kind": "AIMKVCache",
    "metadata": {"name": "shared-cache", "namespace": "ml-team", "uid": "u1", "generation": 1},
    "spec": {
        "kvCacheType": "redis",
        "storage": {
            "size": "200Gi",
            "storageClassName": "fast-ssd",
            "accessModes": ["ReadWriteOnce"],
        },
    },
}
SERVICE_RAW: dict[str, Any] = {
    "apiVersion": "aim.silogen.ai/v1alpha1",
    "kind": "AIMService",
    "metadata": {"name": "llama-chat", "namespace": "ml-team", "uid": "s1", "generation": 1},
    "spec": {
        "model": {"image": "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"},
        "kvCache": {"type": "redis"},
    },
}
GUIDE_LABELS = {
    "app.kubernetes.io/name": "aimkvcache",
    "app.kubernetes.io/instance": "shared-cache",
    "app.kubernetes.io/managed-by": "aimkvcache-controller",
}


def cache() -> AIMKVCache:
    return AIMKVCache.model_validate(CACHE_RAW)


def test_statefulset_has_the_guides_names_labels_and_storage() -> None:
    sts = kv.statefulset(cache(), CACHE_RAW)
    assert sts["metadata"]["name"] == "shared-cache-statefulset"
    assert sts["metadata"]["labels"] == GUIDE_LABELS
    assert sts["spec"]["template"]["metadata"]["labels"] == GUIDE_LABELS
    vct = sts["spec"]["volumeClaimTemplates"][0]
    assert vct["metadata"] == {"name": "redis-data", "labels": GUIDE_LABELS}
    assert vct["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "200Gi"}},
        "storageClassName": "fast-ssd",
    }
    assert kv.pvc_name("shared-cache") == "redis-data-shared-cache-statefulset-0"
    ref = sts["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
        "AIMKVCache",
        "shared-cache",
        "u1",
        True,
    )


def test_redis_container_persists_and_probes() -> None:
    c = kv.statefulset(cache(), CACHE_RAW)["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == kv.DEFAULT_IMAGE == "redis:7.2.4"
    assert "--appendonly" in c["args"] and c["args"][c["args"].index("--appendonly") + 1] == "yes"
    assert c["volumeMounts"] == [{"name": "redis-data", "mountPath": "/data"}]
    assert c["livenessProbe"]["tcpSocket"] == {"port": 6379}
    assert "redis-cli" in " ".join(c["readinessProbe"]["exec"]["command"])
    assert c["securityContext"]["runAsNonRoot"] is True
    assert c["resources"] == kv.DEFAULT_RESOURCES


def test_default_class_means_no_storage_class_field() -> None:
    raw = json.loads(json.dumps(CACHE_RAW))
    del raw["spec"]["storage"]["storageClassName"]
    sts = kv.statefulset(AIMKVCache.model_validate(raw), raw)
    assert "storageClassName" not in sts["spec"]["volumeClaimTemplates"][0]["spec"]


def test_quantities_are_canonical_so_the_live_object_compares_equal() -> None:
    raw = json.loads(json.dumps(CACHE_RAW))
    raw["spec"]["storage"]["size"] = "1024Mi"
    raw["spec"]["resources"] = {"requests": {"cpu": "0.5", "memory": "2048Mi"}}
    sts = kv.statefulset(AIMKVCache.model_validate(raw), raw)
    assert (
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    )
    res = sts["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "500m", "memory": "2Gi"}}


def test_service_and_endpoint() -> None:
    svc = kv.service(cache(), CACHE_RAW)
    assert svc["metadata"]["name"] == "shared-cache-svc"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [
        {"name": "redis", "port": 6379, "targetPort": 6379, "protocol": "TCP"}
    ]
    assert kv.endpoint("shared-cache") == "redis://shared-cache-svc:6379"


def test_network_policy_admits_only_users_and_denies_all_without_users() -> None:
    np = kv.network_policy(cache(), CACHE_RAW, ["b", "a"])
    expr = np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]
    assert expr == {"key": kv.SERVICE_LABEL, "operator": "In", "values": ["a", "b"]}
    assert kv.network_policy(cache(), CACHE_RAW, [])["spec"]["ingress"] == []


def test_builders_are_subsets_of_themselves_after_a_json_round_trip() -> None:
    for obj in (kv.statefulset(cache(), CACHE_RAW), kv.service(cache(), CACHE_RAW)):
        assert is_subset(obj, json.loads(json.dumps(obj)), leaf_equal=leaf_equal)


def test_cache_name_of_service() -> None:
    assert cache_name_of(SERVICE_RAW) == "kvcache-llama-chat"
    assert (
        cache_name_of({**SERVICE_RAW, "spec": {"kvCache": {"name": "shared-cache"}}})
        == "shared-cache"
    )
    assert cache_name_of({**SERVICE_RAW, "spec": {}}) is None


def test_auto_cache_is_owned_and_sends_only_what_the_user_set() -> None:
    svc = AIMService.model_validate(SERVICE_RAW)
    c = sv.auto_cache(svc, SERVICE_RAW, "kvcache-llama-chat")
    assert c["spec"] == {"kvCacheType": "redis"}  # the server fills in 1Gi, RWO
    assert c["metadata"]["ownerReferences"][0]["name"] == "llama-chat"


def test_lmcache_config_default_and_service_url_substitution() -> None:
    svc = AIMService.model_validate(SERVICE_RAW)
    text = sv.lmcache_config(svc, "redis://kvcache-llama-chat-svc:6379")
    assert 'remote_url: "redis://kvcache-llama-chat-svc:6379"' in text
    raw = json.loads(json.dumps(SERVICE_RAW))
    raw["spec"]["kvCache"]["lmCacheConfig"] = (
        'chunk_size: 200\nremote_url: "redis://{SERVICE_URL}"\nother: {SERVICE_URL}\n'
    )
    text = sv.lmcache_config(AIMService.model_validate(raw), "redis://x-svc:6379")
    assert text == 'chunk_size: 200\nremote_url: "redis://x-svc:6379"\nother: redis://x-svc:6379\n'


def test_lmcache_env_merges_engine_args_and_lets_the_user_win() -> None:
    env = sv.lmcache_env(
        [
            {"name": "LMCACHE_LOG_LEVEL", "value": "DEBUG"},
            {
                "name": "AIM_ENGINE_ARGS",
                "value": json.dumps(
                    {"max-model-len": 8192, "kv-transfer-config": {"kv_role": "kv_producer"}}
                ),
            },
        ]
    )
    by = {e["name"]: e["value"] for e in env}
    assert by["LMCACHE_LOG_LEVEL"] == "DEBUG"
    assert by["LMCACHE_CONFIG_FILE"] == "/lmcache/lmcache_config.yaml"
    engine = json.loads(by["AIM_ENGINE_ARGS"])
    assert engine == {
        "max-model-len": 8192,
        "kv-transfer-config": {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_producer"},
    }
    assert [e["name"] for e in env] == sorted(e["name"] for e in env)


def test_lmcache_env_keeps_invalid_user_engine_args_verbatim() -> None:
    env = sv.lmcache_env([{"name": "AIM_ENGINE_ARGS", "value": "not json"}])
    assert {"name": "AIM_ENGINE_ARGS", "value": "not json"} in env


def test_deployment_rolls_when_the_config_changes() -> None:
    svc = AIMService.model_validate(SERVICE_RAW)
    a = sv.deployment(svc, SERVICE_RAW, sv.lmcache_config(svc, "redis://a-svc:6379"))
    b = sv.deployment(svc, SERVICE_RAW, sv.lmcache_config(svc, "redis://b-svc:6379"))
    ha = a["spec"]["template"]["metadata"]["annotations"][sv.CONFIG_HASH_ANNOTATION]
    hb = b["spec"]["template"]["metadata"]["annotations"][sv.CONFIG_HASH_ANNOTATION]
    assert ha != hb
    pod = a["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == "llama-chat-lmcache"
    assert pod["containers"][0]["volumeMounts"][0] == {
        "name": "lmcache-config-volume",
        "mountPath": "/lmcache",
        "readOnly": True,
    }
    assert a["spec"]["template"]["metadata"]["labels"][kv.SERVICE_LABEL] == "llama-chat"


@given(st.sampled_from(["1Gi", "1024Mi", "1073741824", "0.5Ti", "100G", "10e9"]))
def test_storage_size_is_canonicalised(size: str) -> None:
    raw = json.loads(json.dumps(CACHE_RAW))
    raw["spec"]["storage"]["size"] = size
    got = kv.statefulset(AIMKVCache.model_validate(raw), raw)["spec"]["volumeClaimTemplates"][0][
        "spec"
    ]["resources"]["requests"]["storage"]
    assert leaf_equal(got, size)
