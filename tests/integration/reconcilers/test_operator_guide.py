"""Every scenario of the user guide (using-kv-cache.md), replayed on the full local cluster, with
the guide's resource names, labels and kubectl commands."""

from __future__ import annotations

import json
import re

from .operator_kit import Operator, storage_class


def rows(table: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in table.strip().splitlines()]


async def test_quick_start_creates_kvcache_named_after_the_service(operator: Operator) -> None:
    await operator.apply_sample("quick-start.yaml")
    cache = await operator.wait_status("aimkvcache", "kvcache-llama-chat", "Ready")
    # "This creates an AIMKVCache resource with default settings (1Gi storage, default storage
    # class, Redis backend)."
    assert cache["spec"]["kvCacheType"] == "redis"
    assert cache["spec"]["storage"] == {"size": "1Gi", "accessModes": ["ReadWriteOnce"]}
    assert cache["metadata"]["ownerReferences"][0]["name"] == "llama-chat"
    status = cache["status"]
    assert status["endpoint"] == "redis://kvcache-llama-chat-svc:6379"
    assert status["statefulSetName"] == "kvcache-llama-chat-statefulset"
    assert status["serviceName"] == "kvcache-llama-chat-svc"
    assert status["readyReplicas"] == 1 and status["replicas"] == 1
    assert status["storageSize"] == "1Gi"
    assert status["users"] == ["llama-chat"]
    assert "lastError" not in status
    pvc = await operator.get("pvc", "redis-data-kvcache-llama-chat-statefulset-0")
    assert pvc is not None and pvc["status"]["phase"] == "Bound"
    sts = await operator.get("statefulset", "kvcache-llama-chat-statefulset")
    assert sts is not None
    assert (
        "storageClassName" not in sts["spec"]["volumeClaimTemplates"][0]["spec"]
    )  # cluster default

    svc = await operator.wait_status("aimservice", "llama-chat", "Running")
    kv = next(c for c in svc["status"]["conditions"] if c["type"] == "KVCacheReady")
    assert (kv["status"], kv["reason"]) == ("True", "KVCacheReady")
    # The inference workload is wired to the cache once it is Ready.
    deploy = await operator.get("deployment", "llama-chat")
    assert deploy is not None
    pod = deploy["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["LMCACHE_CONFIG_FILE"] == "/lmcache/lmcache_config.yaml"
    assert (
        json.loads(env["AIM_ENGINE_ARGS"])["kv-transfer-config"]["kv_connector"]
        == "LMCacheConnectorV1"
    )
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "lmcache-config-volume", "mountPath": "/lmcache", "readOnly": True}
    ]
    cm = await operator.get("configmap", "llama-chat-lmcache")
    assert cm is not None
    assert 'remote_url: "redis://kvcache-llama-chat-svc:6379"' in cm["data"]["lmcache_config.yaml"]


async def test_custom_storage_size_and_sizing_tiers(operator: Operator) -> None:
    for sample in (
        "custom-storage-size.yaml",
        "sizing-small-model.yaml",
        "sizing-medium-model.yaml",
        "sizing-large-model.yaml",
    ):
        await operator.apply_sample(sample)
    caches = json.loads(
        await operator.k("get", "aimkvcache", "-n", operator.namespace, "-o", "json")
    )["items"]
    assert len(caches) == 4
    for c in caches:
        ready = await operator.wait_status("aimkvcache", c["metadata"]["name"], "Ready")
        pvc = await operator.get("pvc", f"redis-data-{c['metadata']['name']}-statefulset-0")
        assert pvc is not None
        assert pvc["spec"]["resources"]["requests"]["storage"] == ready["spec"]["storage"]["size"]
        assert ready["status"]["storageSize"] == ready["spec"]["storage"]["size"]
    sizes = sorted(c["spec"]["storage"]["size"] for c in caches)
    assert sizes == ["100Gi", "100Gi", "10Gi", "50Gi"]


async def test_custom_storage_class_and_access_modes(operator: Operator) -> None:
    storage_class(operator.cp, "fast-ssd")
    await operator.apply_sample("custom-storage-class.yaml")
    await operator.apply_sample("custom-access-modes.yaml")
    caches = json.loads(
        await operator.k("get", "aimkvcache", "-n", operator.namespace, "-o", "json")
    )["items"]
    for c in caches:
        name = c["metadata"]["name"]
        await operator.wait_status("aimkvcache", name, "Ready")
        sts = await operator.get("statefulset", f"{name}-statefulset")
        assert sts is not None
        claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
        assert claim["accessModes"] == ["ReadWriteOnce"]
        if c["spec"]["storage"].get("storageClassName") == "fast-ssd":
            assert claim["storageClassName"] == "fast-ssd"
            pvc = await operator.get("pvc", f"redis-data-{name}-statefulset-0")
            assert pvc is not None and pvc["spec"]["storageClassName"] == "fast-ssd"


async def test_shared_cache_with_two_services_and_the_monitoring_commands(
    operator: Operator,
) -> None:
    ns = operator.namespace
    storage_class(operator.cp, "fast-ssd")
    await operator.apply_sample("shared-cache.yaml")
    await operator.apply_sample("shared-cache-services.yaml")
    await operator.wait_status("aimkvcache", "shared-cache", "Ready")
    for svc in ("llama-chat", "llama-completion"):
        s = await operator.wait_status("aimservice", svc, "Running")
        assert s["status"]["resolvedKVCache"]["name"] == "shared-cache"
        cm = await operator.get("configmap", f"{svc}-lmcache")
        assert (
            cm is not None and "redis://shared-cache-svc:6379" in cm["data"]["lmcache_config.yaml"]
        )
    # The shared cache is not owned by either service and lists both as users.
    shared = await operator.get("aimkvcache", "shared-cache")
    assert shared is not None
    assert not shared["metadata"].get("ownerReferences")
    assert shared["status"]["users"] == ["llama-chat", "llama-completion"]
    # Only the services' pods may reach Redis.
    netpol = await operator.get("networkpolicy", "shared-cache-netpol")
    assert netpol is not None
    selector = netpol["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]
    assert selector["values"] == ["llama-chat", "llama-completion"]

    # kubectl get aimkvcache -n ml-team: NAME TYPE STATUS READY AGE
    table = rows(await operator.k("get", "aimkvcache", "-n", ns))
    assert table[0] == ["NAME", "TYPE", "STATUS", "READY", "AGE"]
    assert table[1][:4] == ["shared-cache", "redis", "Ready", "1"]
    # -o wide adds ENDPOINT
    wide = rows(await operator.k("get", "aimkvcache", "-n", ns, "-o", "wide"))
    assert wide[0] == ["NAME", "TYPE", "STATUS", "READY", "ENDPOINT", "AGE"]
    assert wide[1][:5] == ["shared-cache", "redis", "Ready", "1", "redis://shared-cache-svc:6379"]
    # kubectl describe: ready replicas, storage size, endpoint, conditions and events
    describe = await operator.k("describe", "aimkvcache", "shared-cache", "-n", ns)
    for needle in (
        r"Ready Replicas:\s+1\n",
        r"\n\s+Replicas:\s+1\n",
        r"Storage Size:\s+200Gi",
        r"Endpoint:\s+redis://shared-cache-svc:6379",
        r"Type:\s+Ready\n",
        r"Type:\s+StorageReady",
        r"Normal\s+KVCacheReady\s+.*KVCache is ready with 1/1 replicas",
    ):
        assert re.search(needle, describe), f"{needle!r} not in describe output:\n{describe}"
    assert "Last Error" not in describe
    # kubectl get pvc -l app.kubernetes.io/managed-by=aimkvcache-controller
    pvcs = await operator.k(
        "get",
        "pvc",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/managed-by=aimkvcache-controller",
        "-o",
        "name",
    )
    assert pvcs.split() == ["persistentvolumeclaim/redis-data-shared-cache-statefulset-0"]
    # kubectl get pods -l app.kubernetes.io/name=aimkvcache
    pods = await operator.k(
        "get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=aimkvcache", "-o", "name"
    )
    assert pods.split() == ["pod/shared-cache-statefulset-0"]
    # kubectl get svc -l app.kubernetes.io/name=aimkvcache
    svcs = await operator.k(
        "get", "svc", "-n", ns, "-l", "app.kubernetes.io/name=aimkvcache", "-o", "name"
    )
    assert svcs.split() == ["service/shared-cache-svc"]
    # the KVCacheReady jsonpath
    kv = json.loads(
        await operator.k(
            "get",
            "aimservice",
            "llama-chat",
            "-n",
            ns,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="KVCacheReady")]}',
        )
    )
    assert (kv["type"], kv["status"], kv["reason"]) == ("KVCacheReady", "True", "KVCacheReady")
    # kubectl get aimkvcache <name> -o jsonpath='{.status.conditions}'
    conds = json.loads(
        await operator.k(
            "get", "aimkvcache", "shared-cache", "-n", ns, "-o", "jsonpath={.status.conditions}"
        )
    )
    assert {c["type"] for c in conds} == {"Ready", "Progressing", "StorageReady"}
    # kubectl logs <cache>-statefulset-0 finds the pod the guide names (kwok has no log server,
    # so only its existence is checked here).
    assert await operator.get("pod", "shared-cache-statefulset-0") is not None
