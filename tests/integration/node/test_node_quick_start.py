"""The guide's Quick Start on the real node: Redis runs under the kubelet, is Ready through its
real probes, logs, answers a consumer by DNS through its Service with the password the operator
gives consumers (and refuses one without it), and snapshots onto its provisioned volume."""

from __future__ import annotations

import time
from pathlib import Path

from aimctl.envtest import REAL_NODE_NAME, ControlPlane
from tests.integration.node import node_kit as kit
from tests.integration.reconcilers.operator_kit import Operator

CACHE = "kvcache-llama-chat"
POD = f"{CACHE}-statefulset-0"


async def test_quick_start_redis_runs_on_the_real_node(
    real_cluster: ControlPlane, real_operator: Operator
) -> None:
    op = real_operator
    began = time.monotonic()
    await op.apply_sample("quick-start.yaml")
    await kit.wait_cache_ready(op, CACHE)
    ready_after = time.monotonic() - began
    print(f"\n[measure] quick-start apply -> cache Ready with a real pod: {ready_after:.1f}s")

    # The pod runs on the kubelet, in a real container, Ready through its exec probes.
    pod = await kit.pod(op, POD)
    assert pod is not None
    assert pod["spec"]["nodeName"] == REAL_NODE_NAME
    assert kit.is_ready(pod)
    created = kit.parse_time(pod["metadata"]["creationTimestamp"])
    steps = {
        c["type"]: (kit.parse_time(c["lastTransitionTime"]) - created).total_seconds()
        for c in pod["status"]["conditions"]
    }
    started = kit.container_status(pod)["state"]["running"]["startedAt"]
    steps["redis started"] = (kit.parse_time(started) - created).total_seconds()
    print(f"[measure] Redis pod created -> condition (s, 1 s resolution): {steps}")
    redis = kit.container_status(pod)
    assert redis["ready"] is True and redis["started"] is True
    assert redis["containerID"].startswith("containerd://")
    assert "running" in redis["state"]
    assert pod["status"]["podIP"].startswith("10.244.1.")
    probes = next(c for c in pod["spec"]["containers"] if c["name"] == "redis")
    assert "exec" in probes["readinessProbe"] and "exec" in probes["startupProbe"]

    logs = await op.k("logs", "-n", op.namespace, POD, "-c", "redis")
    assert "Ready to accept connections" in logs

    # A consumer, with exactly the cache env the operator rendered into the inference pod.
    deployments = (await kit.api(op, f"/apis/apps/v1/namespaces/{op.namespace}/deployments"))[
        "items"
    ]
    assert len(deployments) == 1, [d["metadata"]["name"] for d in deployments]
    env = kit.rendered_consumer_env(deployments[0])
    client = await kit.start_client(op, "consumer", env, service="llama-chat")
    url = await kit.sh(op, client, 'echo "$LMCACHE_REMOTE_URL"')
    assert url.strip().startswith("redis://:") and url.strip().endswith(f"@{CACHE}-svc:6379")
    assert await kit.redis(op, client, "ping") == "PONG"
    # That was the short name through the pod's DNS search path (redis-cli resolves with glibc)
    # and the Service's ClusterIP through kube-proxy. CoreDNS answers the Service's name with
    # that ClusterIP (busybox nslookup takes no search path: the full name; it exits 1 when the
    # AAAA query finds nothing, hence no check).
    svc = await kit.api(op, f"/api/v1/namespaces/{op.namespace}/services/{CACHE}-svc")
    resolv = await kit.sh(op, client, "cat /etc/resolv.conf")
    assert "nameserver 10.0.0.10" in resolv and f"search {op.namespace}.svc" in resolv
    fqdn = f"{CACHE}-svc.{op.namespace}.svc.cluster.local"
    lookup = await kit.sh(op, client, f"nslookup {fqdn}", check=False)
    assert svc["spec"]["clusterIP"] in lookup, lookup
    # Without the password Redis refuses the client.
    refused = await kit.sh(op, client, f"redis-cli -h {CACHE}-svc ping", check=False)
    assert "NOAUTH" in refused

    # RDB (the default persistence): a SAVE writes dump.rdb into the claim's directory, a
    # directory local-path-provisioner made under the node's volumes directory.
    assert await kit.redis(op, client, "set quick-start hello") == "OK"
    assert await kit.redis(op, client, "save") == "OK"
    directory = await kit.volume_dir(op, POD)
    assert directory.is_relative_to(Path(real_cluster.work_dir) / "node" / "volumes")
    dump = directory / "dump.rdb"
    assert dump.is_file() and dump.stat().st_size > 0
    assert b"quick-start" in dump.read_bytes()
