"""Helpers for the real-node tests: a Redis client pod, commands run in it, and waits on the
real objects (pods, claims, volumes) the kubelet and the provisioner produce.

A client pod is a long-running ``REDIS_CLIENT_IMAGE`` pod (``sleep infinity``) on the real node,
with the consumer environment the operator renders for an inference pod: ``AIM_KVCACHE_PASSWORD``
from the cache's Secret and ``LMCACHE_REMOTE_URL`` embedding it (the kubelet expands
``$(AIM_KVCACHE_PASSWORD)``). Commands run in it with ``kubectl exec ... -- sh -c``, so they
resolve the cache's Service by cluster DNS and reach Redis through kube-proxy, as LMCache would.

Waits poll the API with the harness's in-process client (a GET, no kubectl process), every
:data:`POLL` seconds, and fail with the last observed value.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from aimctl.envtest import REDIS_CLIENT_IMAGE, ApiError, real_pod_scheduling
from aimctl.reconcilers.kvcache._desired import SERVICE_LABEL, endpoint
from aimctl.reconcilers.service._desired import (
    PASSWORD_ENV,
    REMOTE_URL_ENV,
    auth_env,
    remote_url_with_password,
)
from tests.integration.reconcilers.operator_kit import Operator

T = TypeVar("T")

POLL: Final = 0.25
# Every redis-cli the tests run: the consumer's URL, ``redis://:<password>@<cache>-svc:6379``,
# with the empty user spelled ``default``. LMCache reads that URL with redis-py
# (``ConnectionPool.from_url``), which takes an empty username as none, i.e. ``AUTH <password>``,
# the ``default`` user; redis-cli 7.0.15 instead sends ``AUTH "" <password>`` for an empty user
# (redis/redis:src/redis-cli.c parseRedisUri sets config.user to "") and gets WRONGPASS, then
# NOAUTH. Same user, same password, same host and port: only redis-cli's spelling differs.
# ``--no-auth-warning``: no warning about a password on the command line.
REDIS_CLI: Final = (
    f'redis-cli --no-auth-warning -u "redis://default:${{{REMOTE_URL_ENV}#redis://:}}"'
)


def consumer_env(cache: str, namespace: str) -> list[dict[str, Any]]:
    """The env the operator gives an inference pod using ``cache`` with the default LMCache
    config (whose ``remote_url`` is the cache's endpoint), from the operator's own functions."""
    url = remote_url_with_password(f"remote_url: {endpoint(cache)}\n", cache, namespace)
    assert url is not None
    return auth_env(cache, url)


def rendered_consumer_env(deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cache env (password and LMCache URL) of the operator-rendered inference Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    env = [e for c in containers for e in c.get("env") or []]
    wanted = [e for e in env if e["name"] in (PASSWORD_ENV, REMOTE_URL_ENV)]
    assert [e["name"] for e in wanted] == [PASSWORD_ENV, REMOTE_URL_ENV], env
    return wanted


async def api(op: Operator, path: str) -> Any:
    """GET ``path`` (None when it does not exist), in a thread so the operator keeps running."""
    try:
        return await asyncio.to_thread(op.cp.client().request, "GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


async def pod(op: Operator, name: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await api(op, f"/api/v1/namespaces/{op.namespace}/pods/{name}")
    return result


async def until(
    op: Operator, what: str, probe: Callable[[], Awaitable[T | None]], within: float
) -> T:
    """``probe()`` until it returns something truthy (returned); AssertionError after
    ``within`` seconds, or when the operator stopped."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        if op.task.done():
            op.task.result()
            raise AssertionError("the operator stopped")
        found = await probe()
        if found:
            return found
        last = found
        await asyncio.sleep(POLL)
    raise AssertionError(f"timed out after {within}s waiting for {what}; last: {last!r}")


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def wait_pod_ready(
    op: Operator, name: str, *, within: float = 120.0, not_uid: str | None = None
) -> dict[str, Any]:
    """The pod ``name`` once Ready (a pod other than UID ``not_uid``, for a replacement)."""

    async def probe() -> dict[str, Any] | None:
        p = await pod(op, name)
        if p is None or p["metadata"]["uid"] == not_uid or not is_ready(p):
            return None
        return p

    return await until(op, f"pod {name} Ready", probe, within)


async def apply_pod(
    op: Operator,
    name: str,
    env: list[dict[str, Any]],
    command: list[str] | None = None,
    *,
    service: str = "client",
) -> None:
    """A ``REDIS_CLIENT_IMAGE`` pod on the real node with ``env`` (and ``command``, else the
    image's ``sleep infinity``), labelled as a consumer of ``service`` (what the cache's
    NetworkPolicy admits)."""
    container: dict[str, Any] = {
        "name": "client",
        "image": REDIS_CLIENT_IMAGE,
        "imagePullPolicy": "Never",
        "env": env,
    }
    if command is not None:
        container["command"] = command
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": op.namespace, "labels": {SERVICE_LABEL: service}},
        "spec": {
            **real_pod_scheduling(),
            "terminationGracePeriodSeconds": 0,
            "containers": [container],
        },
    }
    await op.k("apply", "-f", "-", input=json.dumps(body))


async def start_client(
    op: Operator, name: str, env: list[dict[str, Any]], *, service: str = "client"
) -> str:
    """A Ready client pod (:func:`apply_pod`, ``sleep infinity``) to exec commands in; its
    name."""
    await apply_pod(op, name, env, service=service)
    await wait_pod_ready(op, name)
    return name


async def sh(op: Operator, pod_name: str, script: str, *, check: bool = True) -> str:
    """Run ``script`` with ``sh -c`` in the pod's first container; its stdout."""
    result = await asyncio.to_thread(
        op.cp.kubectl,
        "exec",
        "-n",
        op.namespace,
        pod_name,
        "--",
        "sh",
        "-c",
        script,
        check=check,
        timeout=300.0,
    )
    return result.stdout


async def redis(op: Operator, client: str, command: str) -> str:
    """One redis-cli command through the cache's Service, authenticated as a consumer."""
    return (await sh(op, client, f"{REDIS_CLI} {command}")).strip()


def pipe_commands(count: int, command: str) -> str:
    """A shell pipeline feeding ``count`` redis commands to one redis-cli connection;
    ``command`` may use ``$i`` (0..count-1)."""
    return f'i=0; while [ "$i" -lt {count} ]; do echo "{command}"; i=$((i+1)); done | {REDIS_CLI}'


def info(text: str) -> dict[str, str]:
    """``INFO`` output as a dict."""
    fields = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in fields}


async def volume_dir(op: Operator, pod_name: str) -> Path:
    """The host directory behind the pod's data claim (the hostPath of its bound PV)."""
    p = await pod(op, pod_name)
    assert p is not None
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in p["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert len(claims) == 1, p["spec"]["volumes"]
    pvc = await api(op, f"/api/v1/namespaces/{op.namespace}/persistentvolumeclaims/{claims[0]}")
    pv = await api(op, f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
    source = pv["spec"].get("hostPath") or pv["spec"].get("local")
    assert source, pv["spec"]
    return Path(source["path"])


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def container_status(p: Mapping[str, Any], name: str = "redis") -> dict[str, Any]:
    statuses = (p.get("status") or {}).get("containerStatuses") or []
    found = [s for s in statuses if s["name"] == name]
    assert found, statuses
    status: dict[str, Any] = found[0]
    return status


async def apply_cache(op: Operator, name: str, spec: Mapping[str, Any]) -> None:
    """Apply an AIMKVCache ``name`` with ``spec`` (on top of ``kvCacheType: redis``)."""
    body = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": name, "namespace": op.namespace},
        "spec": {"kvCacheType": "redis", **spec},
    }
    await op.k("apply", "-f", "-", input=json.dumps(body))


def ready_condition(cache: Mapping[str, Any] | None) -> dict[str, Any]:
    conditions = ((cache or {}).get("status") or {}).get("conditions") or []
    found: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
    return found


def cgroup_memory(container_id: str) -> dict[str, int]:
    """The container's memory cgroup as the kernel accounts it (the test runs on the node's
    host): ``limit``, ``peak`` usage and ``failcnt`` (times usage hit the limit, cgroup v1;
    v2's ``max`` events). The kubelet's cgroup root is its own, so search the hierarchy."""
    cid = container_id.removeprefix("containerd://")
    v1 = list(Path("/sys/fs/cgroup/memory").glob(f"**/{cid}"))
    if v1:
        return {
            key: int((v1[0] / f"memory.{name}").read_text())
            for key, name in (
                ("limit", "limit_in_bytes"),
                ("peak", "max_usage_in_bytes"),
                ("failcnt", "failcnt"),
            )
        }
    v2 = [p for p in Path("/sys/fs/cgroup").glob(f"**/*{cid}*") if (p / "memory.max").exists()]
    assert v2, f"no memory cgroup for container {cid}"
    d = v2[0]
    events = dict(line.split() for line in (d / "memory.events").read_text().splitlines())
    return {
        "limit": int((d / "memory.max").read_text()),
        "peak": int((d / "memory.peak").read_text()),
        "failcnt": int(events["max"]),
    }


async def describe(op: Operator) -> str:
    """What the namespace looks like (caches, pods, claims, events), for a failure message."""
    ns = op.namespace
    parts = [
        await op.k("get", "aimkvcache", "-n", ns, "-o", "jsonpath={.items[*].status}", check=False),
        await op.k("get", "pods,pvc", "-n", ns, "-o", "wide", check=False),
        await op.k("get", "events", "-n", ns, "--sort-by=.lastTimestamp", check=False),
        await op.k("get", "pv,pods", "-A", "-o", "wide", check=False),
    ]
    return "\n".join(parts)


async def wait_cache_ready(op: Operator, name: str, *, within: float = 180.0) -> dict[str, Any]:
    """The AIMKVCache ``name`` once its status is Ready; on timeout the error says what the
    namespace looked like."""

    async def probe() -> dict[str, Any] | None:
        obj = await op.get("aimkvcache", name)
        return obj if ((obj or {}).get("status") or {}).get("status") == "Ready" else None

    try:
        return await until(op, f"aimkvcache/{name} Ready", probe, within)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await describe(op)}") from None
