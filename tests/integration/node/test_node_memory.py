"""Memory is enforced on the real node: the operator's maxmemory keeps a full cache inside its
container's memory limit (Redis evicts, the kernel never has to kill it); with eviction turned
off and maxmemory at the limit, the kernel's cgroup limit OOM-kills Redis and the operator's
diagnosis says so.

The writes are ``SETRANGE k<i> 1310709 x``: one value of about a megabyte per command (LMCache
stores chunks of megabytes), zero-filled by Redis itself (``sdsgrowzero``), so the client sends a
few bytes per value. The length is chosen so the string's allocation is exactly jemalloc's
1.25 MiB size class (1310710 bytes + the 9-byte sds header + the terminator = 1310720): Redis
touches every byte it allocates, so the container's memory grows as fast as ``used_memory``.
With a 1 MiB value the same size class is allocated but a fifth of it is never touched:
``used_memory`` then outgrows the resident memory (measured with redis-server 7.0.15: 40 such
keys, used_memory 53.4 MB, RSS 49.6 MB; with 1310709, RSS 60.2 MB), which would hide how close
to its limit the container really is.
"""

from __future__ import annotations

import time

from tests.integration.node import node_kit as kit
from tests.integration.reconcilers.operator_kit import Operator

MIB = 1024 * 1024
LIMIT = "64Mi"
FILL = "SETRANGE k$i 1310709 x"
VALUE = 1310710


async def test_a_full_cache_evicts_and_keeps_running(real_operator: Operator) -> None:
    op = real_operator
    cache = "evicting"
    pod_name = f"{cache}-statefulset-0"
    # The operator's defaults for the rest: allkeys-lru, maxmemory 90% of the limit (no fork
    # without persistence).
    await kit.apply_cache(
        op,
        cache,
        {
            "resources": {"requests": {"memory": LIMIT}, "limits": {"memory": LIMIT}},
            "redis": {"persistence": "None"},
        },
    )
    await kit.wait_cache_ready(op, cache)
    client = await kit.start_client(op, "client", kit.consumer_env(cache, op.namespace))

    # 192 values of 1.25 MiB into a 64Mi container: almost four times its limit.
    out = await kit.sh(op, client, kit.pipe_commands(192, FILL))
    assert out.split() == [str(VALUE)] * 192  # each reply: the value's new length
    stats = kit.info(await kit.redis(op, client, "info"))
    maxmemory = int(stats["maxmemory"])
    assert maxmemory == int(64 * MIB * 0.9)
    assert int(stats["evicted_keys"]) > 0
    # Redis evicts before each write until it is under maxmemory; after the last write it may
    # be over by that one value.
    assert int(stats["used_memory"]) <= maxmemory + 2 * MIB, stats
    print(
        f"\n[measure] evicting 64Mi cache: used_memory {stats['used_memory']}, "
        f"rss {stats['used_memory_rss']}, maxmemory {maxmemory}, evicted {stats['evicted_keys']}"
    )
    assert 0 < int(stats["db0"].split(",")[0].split("=")[1]) < 192

    pod = await kit.pod(op, pod_name)
    assert pod is not None
    redis = kit.container_status(pod)
    assert "running" in redis["state"] and redis["restartCount"] == 0, redis
    assert "lastState" not in redis or not redis["lastState"], redis
    # What the kernel counted against the limit: the peak stayed under it.
    cgroup = kit.cgroup_memory(redis["containerID"])
    assert cgroup["limit"] == 64 * MIB
    assert cgroup["peak"] < cgroup["limit"], cgroup
    print(f"[measure] evicting 64Mi cache: container memory cgroup {cgroup}")
    cache_obj = await op.get("aimkvcache", cache)
    assert cache_obj is not None and cache_obj["status"]["status"] == "Ready"


async def test_without_eviction_the_kernel_oom_kills_and_the_operator_says_so(
    real_operator: Operator,
) -> None:
    op = real_operator
    cache = "no-eviction"
    pod_name = f"{cache}-statefulset-0"
    # Eviction deliberately off, and maxmemory as close to the limit as admission allows
    # (the CRD wants it below the limit): 1 KiB under 64Mi. Redis would refuse writes only
    # once its allocator holds 64Mi - 1Ki of data, but the container's memory (what the
    # cgroup limit counts) is that plus Redis's own footprint outside used_memory (code,
    # stacks, allocator metadata: an empty redis-server 7.0.15 has used_memory 0.9 MB and RSS
    # 6.6 MB), and every value is fully touched (see the module docstring), so the kernel's
    # limit is reached first, every time.
    await kit.apply_cache(
        op,
        cache,
        {
            "resources": {"requests": {"memory": LIMIT}, "limits": {"memory": LIMIT}},
            "redis": {
                "persistence": "None",
                "maxMemoryPolicy": "noeviction",
                "maxMemory": "65535Ki",
            },
        },
    )
    await kit.wait_cache_ready(op, cache)
    first = await kit.pod(op, pod_name)
    assert first is not None

    # A writer that keeps filling: each time Redis is back (empty: no persistence) it is
    # killed again, so the kubelet backs off (CrashLoopBackOff) and the diagnosis is not just
    # a moment between a kill and a restart.
    env = kit.consumer_env(cache, op.namespace)
    fill = kit.pipe_commands(128, FILL)
    await kit.apply_pod(
        op,
        "writer",
        env,
        ["sh", "-c", f"while true; do {fill} >/dev/null 2>&1; sleep 1; done"],
    )

    async def oom_killed() -> dict[str, object] | None:
        pod = await kit.pod(op, pod_name)
        if pod is None or pod["metadata"]["uid"] != first["metadata"]["uid"]:
            return None
        last = (kit.container_status(pod).get("lastState") or {}).get("terminated") or {}
        return last if last.get("reason") == "OOMKilled" else None

    began = time.monotonic()
    terminated = await kit.until(op, "Redis OOMKilled", oom_killed, within=180)
    print(f"\n[measure] writer started -> Redis OOMKilled: {time.monotonic() - began:.1f}s")
    assert terminated["exitCode"] == 137

    async def diagnosed() -> dict[str, object] | None:
        obj = await op.get("aimkvcache", cache)
        ready = kit.ready_condition(obj)
        failed = ((obj or {}).get("status") or {}).get("status") == "Failed"
        return ready if failed and ready.get("reason") == "OOMKilled" else None

    ready = await kit.until(op, "cache Failed: OOMKilled", diagnosed, within=240)
    message = str(ready["message"])
    assert f"container redis of pod {pod_name}" in message
    assert f"its memory limit {LIMIT}" in message and "(OOMKilled)" in message
    assert "spec.redis.maxMemory" in message

    async def warned() -> list[dict[str, object]] | None:
        events = await kit.api(
            op,
            f"/api/v1/namespaces/{op.namespace}/events"
            f"?fieldSelector=involvedObject.name={cache},reason=OOMKilled",
        )
        return [e for e in events["items"] if e["type"] == "Warning"] or None

    await kit.until(op, "an OOMKilled Warning Event", warned, within=60)
