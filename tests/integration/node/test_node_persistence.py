"""Data survives on the real node: keys written through the Service are there after the Redis
pod is deleted and the StatefulSet starts a new one (a real container restart on the same
volume), with RDB (saved on SIGTERM: the cache has save points) and with AOF (the log replayed);
and after the storage is grown."""

from __future__ import annotations

import time

import pytest

from tests.integration.node import node_kit as kit
from tests.integration.reconcilers.operator_kit import Operator

KEYS = 200


@pytest.mark.parametrize("mode", ["RDB", "AOF"])
async def test_keys_survive_a_pod_restart_and_storage_growth(
    real_operator: Operator, mode: str
) -> None:
    op = real_operator
    cache = f"survive-{mode.lower()}"
    pod_name = f"{cache}-statefulset-0"
    await kit.apply_cache(op, cache, {"storage": {"size": "1Gi"}, "redis": {"persistence": mode}})
    await kit.wait_cache_ready(op, cache)
    client = await kit.start_client(op, "client", kit.consumer_env(cache, op.namespace))

    written = await kit.sh(op, client, kit.pipe_commands(KEYS, "SET key:$i value-$i"))
    assert written.split() == ["OK"] * KEYS
    assert await kit.redis(op, client, "dbsize") == str(KEYS)

    before = await kit.pod(op, pod_name)
    assert before is not None
    old_id = kit.container_status(before)["containerID"]
    began = time.monotonic()
    # The kubelet sends SIGTERM: Redis with save points writes its RDB snapshot on shutdown;
    # with AOF it fsyncs the log. No SAVE or BGSAVE from the test.
    await op.k("delete", "pod", pod_name, "-n", op.namespace, "--wait=false")
    after = await kit.wait_pod_ready(op, pod_name, within=180, not_uid=before["metadata"]["uid"])
    restart = time.monotonic() - began
    print(f"\n[measure] {mode}: Redis pod deleted -> replacement Ready: {restart:.1f}s")
    redis = kit.container_status(after)
    assert redis["containerID"].startswith("containerd://") and redis["containerID"] != old_id
    assert redis["restartCount"] == 0

    logs = await op.k("logs", "-n", op.namespace, pod_name, "-c", "redis")
    loaded = "DB loaded from append only file" if mode == "AOF" else "DB loaded from disk"
    assert loaded in logs, logs
    await kit.wait_cache_ready(op, cache, within=120)
    assert await kit.redis(op, client, "dbsize") == str(KEYS)
    values = await kit.redis(op, client, f"mget key:0 key:{KEYS // 2} key:{KEYS - 1}")
    assert values.split() == ["value-0", f"value-{KEYS // 2}", f"value-{KEYS - 1}"]

    directory = await kit.volume_dir(op, pod_name)
    if mode == "AOF":
        assert any(p.stat().st_size > 0 for p in (directory / "appendonlydir").glob("*.aof"))
        return  # growth is the same code path for both modes: once is enough

    assert (directory / "dump.rdb").stat().st_size > 0
    # Grow the storage: local-path is expandable; the claim's capacity follows (kwok's resize
    # stage records it; a directory without a quota has no size to change), the cache is
    # Ready again and Redis still has every key.
    await op.k(
        "patch",
        "aimkvcache",
        cache,
        "-n",
        op.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"storage":{"size":"2Gi"}}}',
    )
    claim = f"/api/v1/namespaces/{op.namespace}/persistentvolumeclaims/redis-data-{pod_name}"

    async def grown() -> str | None:
        pvc = await kit.api(op, claim)
        size = ((pvc or {}).get("status") or {}).get("capacity", {}).get("storage")
        return size if size == "2Gi" else None

    await kit.until(op, "claim capacity 2Gi", grown, within=120)

    async def ready_at_2gi() -> bool:
        obj = await op.get("aimkvcache", cache)
        status = (obj or {}).get("status") or {}
        return status.get("status") == "Ready" and status.get("storageSize") == "2Gi"

    await kit.until(op, "cache Ready with 2Gi", ready_at_2gi, within=120)
    assert await kit.redis(op, client, "dbsize") == str(KEYS)
    assert await kit.redis(op, client, f"get key:{KEYS - 1}") == f"value-{KEYS - 1}"
