"""The AIMService's Deployment as desired: the cache's password by reference, the LMCache URL
that embeds it after it, hardening for a ``restricted`` namespace, probes and scheduling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aimctl.api.v1alpha1 import AIMService
from aimctl.reconcilers.kvcache import _desired as kv
from aimctl.reconcilers.service import _desired as sv

RAW: dict[str, Any] = {
    "apiVersion": "aim.silogen.ai/v1alpha1",
    "kind": "AIMService",
    "metadata": {"name": "llama-chat", "namespace": "ml-team", "uid": "s1", "generation": 1},
    "spec": {
        "model": {"image": "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"},
        "kvCache": {"type": "redis"},
    },
}
CACHE = "kvcache-llama-chat"
ENDPOINT = "redis://kvcache-llama-chat-svc:6379"


def service(**spec: Any) -> tuple[AIMService, dict[str, Any]]:
    raw = json.loads(json.dumps(RAW))
    raw["spec"].update(spec)
    return AIMService.model_validate(raw), raw


def wired(svc: AIMService, raw: dict[str, Any], auth_hash: str | None = "h1") -> dict[str, Any]:
    config = sv.lmcache_config(svc, ENDPOINT)
    return sv.deployment(svc, raw, config, cache=CACHE, auth_hash=auth_hash)


def pod(deploy: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deploy["spec"]["template"]["spec"]
    return spec


def env_of(deploy: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = pod(deploy)["containers"][0]["env"]
    return env


def names(env: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in env]


# -- the password -------------------------------------------------------------------------------


def test_consumer_gets_the_password_by_reference_then_the_url_that_expands_it() -> None:
    svc, raw = service()
    env = env_of(wired(svc, raw))
    by = {e["name"]: e for e in env}
    assert by[sv.PASSWORD_ENV] == {
        "name": "AIM_KVCACHE_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "kvcache-llama-chat-auth", "key": "password"}},
    }
    assert by[sv.REMOTE_URL_ENV]["value"] == (
        "redis://:$(AIM_KVCACHE_PASSWORD)@kvcache-llama-chat-svc:6379"
    )
    # The kubelet expands $(VAR) only from entries before it: the password must come first,
    # although "AIM_KVCACHE_PASSWORD" < "LMCACHE_REMOTE_URL" would hold anyway; the order is
    # by dependency, not by luck of the alphabet (see the renamed case below).
    assert names(env).index("AIM_KVCACHE_PASSWORD") < names(env).index("LMCACHE_REMOTE_URL")


def test_dependent_variables_come_after_what_they_reference_whatever_their_names() -> None:
    env = sv.lmcache_env(
        [
            {"name": "A_URL", "value": "http://$(Z_HOST):$(Z_PORT)/x"},
            {"name": "Z_HOST", "value": "h"},
            {"name": "Z_PORT", "value": "1"},
        ],
        sv.auth_env(CACHE, "redis://:$(AIM_KVCACHE_PASSWORD)@kvcache-llama-chat-svc:6379"),
    )
    order = names(env)
    assert order.index("Z_HOST") < order.index("A_URL")
    assert order.index("Z_PORT") < order.index("A_URL")
    assert order.index("AIM_KVCACHE_PASSWORD") < order.index("LMCACHE_REMOTE_URL")
    # Everything else stays sorted by name.
    rest = [n for n in order if n != "A_URL"]
    assert rest == sorted(rest)


def test_dependency_order_ignores_escapes_self_references_and_unknown_names_and_keeps_cycles() -> (
    None
):
    env: list[dict[str, Any]] = [
        {"name": "A", "value": "$$(B) is literal"},
        {"name": "B", "value": "x"},
        {"name": "C", "value": "$(C)$(UNKNOWN)"},
        {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    assert sv.dependency_order(env) == env
    cycle: list[dict[str, Any]] = [{"name": "P", "value": "$(Q)"}, {"name": "Q", "value": "$(P)"}]
    assert sv.dependency_order(cycle) == cycle


def test_the_configmap_keeps_the_password_less_url() -> None:
    svc, raw = service()
    config = sv.lmcache_config(svc, ENDPOINT)
    cm = sv.lmcache_configmap(svc, raw, config)
    assert f'remote_url: "{ENDPOINT}"' in cm["data"][sv.CONFIG_KEY]
    assert "$(" not in json.dumps(cm) and "secretKeyRef" not in json.dumps(cm)


PASSWORD_URL = "redis://:$(AIM_KVCACHE_PASSWORD)@kvcache-llama-chat-svc"


@pytest.mark.parametrize(
    ("config", "override"),
    [
        ('remote_url: "{SERVICE_URL}"\nchunk_size: 256\n', f"{PASSWORD_URL}:6379"),
        ('remote_url: "redis://{SERVICE_URL}"\n', f"{PASSWORD_URL}:6379"),
        ("remote_url: redis://kvcache-llama-chat-svc:6379\n", f"{PASSWORD_URL}:6379"),
        ('remote_url: "{SERVICE_URL}/2"\n', f"{PASSWORD_URL}:6379/2"),  # another db
        (
            "remote_url: redis://kvcache-llama-chat-svc.ml-team.svc.cluster.local\n",
            "redis://:$(AIM_KVCACHE_PASSWORD)@kvcache-llama-chat-svc.ml-team.svc.cluster.local",
        ),
        ('remote_url: "redis://elsewhere:6379"\n', None),
        ('remote_url: "redis://kvcache-llama-chat-svc.other-team:6379"\n', None),
        ('remote_url: "redis://kvcache-llama-chat-svc:6380"\n', None),
        ('remote_url: "redis://:theirs@kvcache-llama-chat-svc:6379"\n', None),  # their password
        ('remote_url: "lm://{SERVICE_URL}/x"\n', None),
        ("local_cpu: true\n", None),  # no remote at all: the user's choice
        ("remote_url: [unclosed\n", None),  # not YAML: LMCache will say so, not us
    ],
)
def test_the_url_override_only_replaces_a_remote_url_that_is_the_cache(
    config: str, override: str | None
) -> None:
    svc, raw = service(kvCache={"type": "redis", "lmCacheConfig": config})
    env = {e["name"]: e for e in env_of(wired(svc, raw))}
    assert env.get("LMCACHE_REMOTE_URL", {}).get("value") == override
    assert "AIM_KVCACHE_PASSWORD" in env  # the password is the consumer's in every case


def test_a_user_remote_url_wins_and_may_use_the_password() -> None:
    mine = "redis://:$(AIM_KVCACHE_PASSWORD)@kvcache-llama-chat-svc:6379/2"
    svc, raw = service(env=[{"name": "LMCACHE_REMOTE_URL", "value": mine}])
    env = env_of(wired(svc, raw))
    assert [e for e in env if e["name"] == "LMCACHE_REMOTE_URL"] == [
        {"name": "LMCACHE_REMOTE_URL", "value": mine}
    ]
    assert names(env).index("AIM_KVCACHE_PASSWORD") < names(env).index("LMCACHE_REMOTE_URL")


def test_a_new_password_changes_the_pod_template() -> None:
    svc, raw = service()
    a, b = wired(svc, raw, "h1"), wired(svc, raw, "h2")
    annotations = a["spec"]["template"]["metadata"]["annotations"]
    assert annotations[kv.AUTH_HASH_ANNOTATION] == "h1"
    assert a["spec"]["template"] != b["spec"]["template"]
    none = wired(svc, raw, None)
    assert kv.AUTH_HASH_ANNOTATION not in none["spec"]["template"]["metadata"]["annotations"]


def test_without_a_cache_nothing_of_the_cache_is_rendered() -> None:
    svc, raw = service(kvCache=None, env=[{"name": "X", "value": "1"}])
    deploy = sv.deployment(svc, raw, None)
    assert env_of(deploy) == [{"name": "X", "value": "1"}]
    assert "annotations" not in deploy["spec"]["template"]["metadata"]


# -- hardening, probes, scheduling -----------------------------------------------------------------


def test_the_pod_meets_the_restricted_pod_security_standard_and_mounts_no_token() -> None:
    svc, raw = service()
    for deploy in (wired(svc, raw), sv.deployment(svc, raw, None)):
        spec = pod(deploy)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        (container,) = spec["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        assert "privileged" not in json.dumps(spec) and "hostPath" not in json.dumps(spec)


def test_probes_give_a_model_thirty_minutes_to_load_then_check_health() -> None:
    svc, raw = service()
    deploy = sv.deployment(svc, raw, None)
    (container,) = pod(deploy)["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 30 * 60
    # The Deployment does not call a loading model "no progress" (the default is 600 s).
    assert deploy["spec"]["progressDeadlineSeconds"] > 30 * 60
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 120  # conservative


def test_scheduling_is_copied_from_the_spec() -> None:
    svc, raw = service(
        nodeSelector={"amd.com/gpu.product-name": "MI300X"},
        tolerations=[{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
        priorityClassName="inference-high",
    )
    spec = pod(sv.deployment(svc, raw, None))
    assert spec["nodeSelector"] == {"amd.com/gpu.product-name": "MI300X"}
    assert spec["tolerations"] == [
        {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert spec["affinity"] == raw["spec"]["affinity"]
    assert spec["priorityClassName"] == "inference-high"
    bare = pod(sv.deployment(*service(), None))
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName"} & set(bare)


def test_the_deployment_does_not_share_mutable_state_between_renders() -> None:
    svc, raw = service()
    a = sv.deployment(svc, raw, None)
    pod(a)["securityContext"]["runAsNonRoot"] = False
    pod(a)["containers"][0]["securityContext"]["capabilities"]["drop"].append("X")
    b = sv.deployment(svc, raw, None)
    assert pod(b)["securityContext"]["runAsNonRoot"] is True
    assert pod(b)["containers"][0]["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_auto_cache_passes_redis_pull_and_metrics_settings_to_the_owned_cache() -> None:
    kv_spec = {
        "type": "redis",
        "imagePullPolicy": "Always",
        "imagePullSecrets": [{"name": "registry"}],
        "redis": {"maxMemory": "1536Mi", "maxMemoryPolicy": "allkeys-lfu", "persistence": "AOF"},
        "metrics": {"enabled": True},
    }
    svc, raw = service(kvCache=kv_spec)
    spec = sv.auto_cache(svc, raw, CACHE)["spec"]
    assert spec["imagePullPolicy"] == "Always"
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["redis"] == {
        "maxMemory": "1536Mi",
        "maxMemoryPolicy": "allkeys-lfu",
        "persistence": "AOF",
    }
    assert spec["metrics"] == {"enabled": True}
    # Only what the user set: the rest is the cache's defaults.
    assert sv.auto_cache(*service(), CACHE)["spec"] == {"kvCacheType": "redis"}
