"""Desired-state builders: names, labels, owner references, and the guide's contracts."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
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
    assert c["image"] == kv.DEFAULT_IMAGE == "docker.io/library/redis:7.2.12"
    # RDB by default: snapshots on /data, no AOF.
    assert c["args"][c["args"].index("--appendonly") + 1] == "no"
    assert c["args"][c["args"].index("--save") + 1 :][:2] == ["300", "1"]
    assert c["volumeMounts"] == [{"name": "redis-data", "mountPath": "/data"}]
    assert c["livenessProbe"]["tcpSocket"] == {"port": 6379}
    assert c["readinessProbe"]["exec"]["command"] == ["redis-cli", "-e", "ping"]
    assert c["startupProbe"]["exec"]["command"] == ["redis-cli", "-e", "ping"]
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


# --- issue 15: a hardened, authenticated Redis ------------------------------------------------


def cache_with(**spec: Any) -> tuple[AIMKVCache, dict[str, Any]]:
    raw = json.loads(json.dumps(CACHE_RAW))
    raw["spec"].update(spec)
    return AIMKVCache.model_validate(raw), raw


def pod_of(sts: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = sts["spec"]["template"]["spec"]
    return pod


def probes(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c[kind]
        for c in pod["containers"]
        for kind in ("livenessProbe", "readinessProbe", "startupProbe")
        if kind in c
    ]


# Volume sources the restricted profile admits (policy/check_restrictedVolumes.go).
_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the ``restricted`` Pod Security Standard refuses in ``pod`` (a pod spec), one entry
    per rule broken. The rules of k8s.io/pod-security-admission policy/ (kubernetes/
    pod-security-admission at 8f84a87c): check_hostNamespaces, check_privileged,
    check_capabilities_restricted, check_hostPathVolumes + check_restrictedVolumes,
    check_hostPorts, check_appArmorProfile, check_seLinuxOptions, check_procMount_restricted,
    check_seccompProfile_restricted, check_sysctls (the oldest safe subset, a lower bound),
    check_allowPrivilegeEscalation, check_runAsNonRoot, check_runAsUser,
    check_hostProbesAndhostLifecycle, check_windowsHostProcess."""
    bad: list[str] = []
    psc = pod.get("securityContext", {})
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            bad.append(field)
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            bad.append(f"volume {v['name']}: {kinds - _RESTRICTED_VOLUMES}")
    if psc.get("runAsUser") == 0:
        bad.append("pod runAsUser 0")
    if psc.get("seccompProfile", {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
        bad.append("pod seccompProfile")
    if any(s["name"] not in _SAFE_SYSCTLS for s in psc.get("sysctls", [])):
        bad.append("sysctls")
    if psc.get("windowsOptions", {}).get("hostProcess"):
        bad.append("pod hostProcess")
    for opts in (psc.get("seLinuxOptions"),):
        if opts and (opts.get("user") or opts.get("role")):
            bad.append("pod seLinuxOptions")
    for c in containers:
        sc = c.get("securityContext", {})
        n = c["name"]
        if sc.get("privileged"):
            bad.append(f"{n}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{n}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad.append(f"{n}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            bad.append(f"{n}: capabilities.add")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append(f"{n}: runAsNonRoot")
        if sc.get("runAsUser") == 0:
            bad.append(f"{n}: runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{n}: seccompProfile")
        if sc.get("procMount", "Default") != "Default":
            bad.append(f"{n}: procMount")
        if sc.get("windowsOptions", {}).get("hostProcess"):
            bad.append(f"{n}: hostProcess")
        if sc.get("appArmorProfile", {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            bad.append(f"{n}: appArmorProfile")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("user") or selinux.get("role"):
            bad.append(f"{n}: seLinuxOptions")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            bad.append(f"{n}: hostPort")
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            handler = c.get(kind, {})
            if handler.get("httpGet", {}).get("host") or handler.get("tcpSocket", {}).get("host"):
                bad.append(f"{n}: {kind} host")
    return bad


def test_the_restricted_checker_catches_what_it_claims() -> None:
    # The checker itself: a pod breaking rules is reported, so a pass below means something.
    pod = {
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [
            {
                "name": "c",
                "ports": [{"containerPort": 1, "hostPort": 1}],
                "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}},
                "readinessProbe": {"tcpSocket": {"port": 1, "host": "10.0.0.1"}},
            }
        ],
    }
    got = restricted_violations(pod)
    for want in (
        "hostNetwork",
        "volume h",
        "allowPrivilegeEscalation",
        "drop ALL",
        "capabilities.add",
        "runAsNonRoot",
        "seccompProfile",
        "hostPort",
        "readinessProbe host",
    ):
        assert any(want in g for g in got), (want, got)


@pytest.mark.parametrize("metrics", [False, True])
def test_redis_pod_is_admitted_by_the_restricted_profile(metrics: bool) -> None:
    c, raw = cache_with(metrics={"enabled": metrics})
    pod = pod_of(kv.statefulset(c, raw, auth_hash="0123456789abcdef"))
    assert restricted_violations(pod) == []
    assert len(pod["containers"]) == (2 if metrics else 1)


def test_pod_mounts_no_token_and_has_a_read_only_root() -> None:
    c, raw = cache_with(metrics={"enabled": True})
    pod = pod_of(kv.statefulset(c, raw))
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 999,
        "runAsGroup": 999,
        "fsGroup": 999,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # Redis writes only /data, its volume.
    redis = pod["containers"][0]
    assert [m["mountPath"] for m in redis["volumeMounts"]] == ["/data"]
    assert "--dir" in redis["args"] and redis["args"][redis["args"].index("--dir") + 1] == "/data"


def test_no_probe_needs_a_shell() -> None:
    c, raw = cache_with(metrics={"enabled": True})
    for probe in probes(pod_of(kv.statefulset(c, raw))):
        command = probe.get("exec", {}).get("command", [])
        assert not {"sh", "bash", "/bin/sh", "-c"} & set(command), command
    redis = pod_of(kv.statefulset(c, raw))["containers"][0]
    assert redis["readinessProbe"]["exec"]["command"][0] == "redis-cli"


def test_startup_probe_allows_a_big_snapshot_to_load() -> None:
    redis = pod_of(kv.statefulset(cache(), CACHE_RAW))["containers"][0]
    startup = redis["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60


def test_password_comes_only_from_the_secret() -> None:
    c, raw = cache_with(
        env=[{"name": "REDIS_PASSWORD", "value": "mine"}, {"name": "TZ", "value": "UTC"}]
    )
    sts = kv.statefulset(c, raw)
    redis = pod_of(sts)["containers"][0]
    ref = {"secretKeyRef": {"name": "shared-cache-auth", "key": "password"}}
    assert redis["env"] == [
        {"name": "REDIS_PASSWORD", "valueFrom": ref},
        {"name": "REDISCLI_AUTH", "valueFrom": ref},
        {"name": "TZ", "value": "UTC"},
    ]
    args = redis["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    # No literal password anywhere in the object.
    assert "mine" not in json.dumps(sts)


def test_pod_template_carries_the_auth_hash() -> None:
    with_hash = kv.statefulset(cache(), CACHE_RAW, auth_hash="abc")
    assert with_hash["spec"]["template"]["metadata"]["annotations"] == {
        "aim.silogen.ai/auth-hash": "abc"
    }
    assert "annotations" not in kv.statefulset(cache(), CACHE_RAW)["spec"]["template"]["metadata"]


def test_pods_are_managed_in_parallel() -> None:
    assert kv.statefulset(cache(), CACHE_RAW)["spec"]["podManagementPolicy"] == "Parallel"


def test_auth_secret_and_password_hash() -> None:
    password = kv.new_password()
    assert len(password) == 64 and int(password, 16) >= 0
    assert kv.new_password() != password
    secret = kv.auth_secret(cache(), CACHE_RAW, password)
    assert secret["metadata"]["name"] == kv.auth_secret_name("shared-cache") == "shared-cache-auth"
    assert secret["metadata"]["labels"] == GUIDE_LABELS
    assert secret["metadata"]["ownerReferences"][0]["controller"] is True
    assert secret["type"] == "Opaque" and "stringData" not in secret
    assert base64.b64decode(secret["data"]["password"]).decode() == password
    exporter = json.loads(base64.b64decode(secret["data"][kv.EXPORTER_PASSWORDS_KEY]))
    assert exporter == {"redis://localhost:6379": password}
    digest = hashlib.sha256(password.encode()).hexdigest()[:16]
    assert kv.password_hash(secret) == digest
    assert kv.password_hash(None) is None
    assert kv.password_hash({"data": {}}) is None
    assert kv.password_hash({"data": {"password": "!!not base64"}}) is None
    assert kv.password_hash({"data": None}) is None
    assert kv.password_hash({"data": {"password": 3}}) is None


def test_image_pull_settings() -> None:
    c, raw = cache_with(
        image="registry.example/redis:7.2.12",
        imagePullPolicy="Always",
        imagePullSecrets=[{"name": "regcred"}],
        metrics={"enabled": True, "image": "registry.example/redis_exporter:v1.80.0"},
    )
    pod = pod_of(kv.statefulset(c, raw))
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    redis, exporter = pod["containers"]
    assert (redis["image"], redis["imagePullPolicy"]) == ("registry.example/redis:7.2.12", "Always")
    assert exporter["image"] == "registry.example/redis_exporter:v1.80.0"
    assert exporter["imagePullPolicy"] == "Always"
    plain = pod_of(kv.statefulset(cache(), CACHE_RAW))
    assert "imagePullSecrets" not in plain and "imagePullPolicy" not in plain["containers"][0]


def test_scheduling_is_passed_through() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    c, raw = cache_with(
        nodeSelector={"pool": "cache"},
        tolerations=[
            {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "x", "value": "y", "effect": "NoExecute", "tolerationSeconds": 30},
        ],
        affinity=affinity,
        priorityClassName="high",
    )
    pod = pod_of(kv.statefulset(c, raw))
    assert pod["nodeSelector"] == {"pool": "cache"}
    assert pod["tolerations"] == [
        {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "x", "value": "y", "effect": "NoExecute", "tolerationSeconds": 30},
    ]
    assert pod["affinity"] == affinity
    assert pod["priorityClassName"] == "high"
    plain = pod_of(kv.statefulset(cache(), CACHE_RAW))
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName"} & set(plain)


def test_metrics_sidecar_service_port_and_policy() -> None:
    c, raw = cache_with(metrics={"enabled": True})
    pod = pod_of(kv.statefulset(c, raw))
    exporter = pod["containers"][1]
    assert exporter["image"] == kv.DEFAULT_EXPORTER_IMAGE
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9121, "protocol": "TCP"}]
    env = {e["name"]: e for e in exporter["env"]}
    assert env["REDIS_ADDR"]["value"] == "redis://localhost:6379"
    # Not REDIS_PASSWORD: the exporter's /scrape?target= would send it to any host.
    assert "REDIS_PASSWORD" not in env
    path = env["REDIS_PASSWORD_FILE"]["value"]
    mount = exporter["volumeMounts"][0]
    assert path.startswith(mount["mountPath"] + "/") and mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "shared-cache-auth"
    assert volume["secret"]["items"] == [
        {"key": kv.EXPORTER_PASSWORDS_KEY, "path": path.rsplit("/", 1)[1]}
    ]
    assert "readinessProbe" not in exporter and exporter["resources"]["limits"]["memory"]
    svc = kv.service(c, raw)
    assert {"name": "metrics", "port": 9121, "targetPort": 9121, "protocol": "TCP"} in svc["spec"][
        "ports"
    ]
    np = kv.network_policy(c, raw, [])
    assert np["spec"]["ingress"] == [{"ports": [{"port": 9121, "protocol": "TCP"}]}]
    np = kv.network_policy(c, raw, ["a"])
    assert np["spec"]["ingress"][0]["ports"] == [{"port": 6379, "protocol": "TCP"}]
    # Off (the default): no sidecar, no port, no rule.
    assert len(pod_of(kv.statefulset(cache(), CACHE_RAW))["containers"]) == 1
    assert [p["name"] for p in kv.service(cache(), CACHE_RAW)["spec"]["ports"]] == ["redis"]
    off, off_raw = cache_with(metrics={"enabled": False})
    assert kv.network_policy(off, off_raw, [])["spec"]["ingress"] == []


def test_memory_bound_and_policy_in_the_rendered_args() -> None:
    c, raw = cache_with(resources={"limits": {"memory": "2Gi"}})
    args = pod_of(kv.statefulset(c, raw))["containers"][0]["args"]
    assert args[args.index("--maxmemory") + 1] == "1610612736"  # 0.75 x 2Gi < 2Gi
    assert args[args.index("--maxmemory-policy") + 1] == "allkeys-lru"


def test_resources_without_memory_get_the_default_memory() -> None:
    c, raw = cache_with(resources={"requests": {"cpu": "2"}})
    res = pod_of(kv.statefulset(c, raw))["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
