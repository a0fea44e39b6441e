"""The runtime against a real kube-apiserver: a sample reconciler driven by informer events."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aimctl.client import GVK, ClusterConfig, RestClient, load_kubeconfig
from aimctl.controller import Request, Result, TerminalError
from aimctl.envtest import ControlPlane
from aimctl.manager import CacheSyncError, Manager
from aimctl.workqueue import ItemExponentialRateLimiter

from .manager_kit import wait_for

CONFIGMAP = GVK("", "v1", "ConfigMap")


@contextlib.asynccontextmanager
async def running(mgr: Manager) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(mgr.run())
    try:
        yield task
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


def manager(config: ClusterConfig, namespace: str, **kw: Any) -> Manager:
    kw.setdefault("metrics_bind_address", "127.0.0.1:0")
    kw.setdefault("health_probe_bind_address", "127.0.0.1:0")
    return Manager(config, namespaces=[namespace], **kw)


async def put_configmap(rest: RestClient, ns: str, name: str, data: dict[str, str]) -> None:
    await rest.request(
        "PATCH",
        f"/api/v1/namespaces/{ns}/configmaps/{name}",
        params={"fieldManager": "test", "force": "true"},
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data},
        content_type="application/apply-patch+yaml",
    )


async def test_sample_reconciler_converges_children(
    config: ClusterConfig, rest: RestClient, namespace: str
) -> None:
    """Each ConfigMap labelled mirror=yes gets an owned copy ``<name>-mirror`` (applied)."""
    mgr = manager(config, namespace)
    client = mgr.client("mirror-controller")

    async def reconcile(req: Request) -> None:
        src = await client.get(CONFIGMAP, req.name, req.namespace)
        if src is None or src["metadata"].get("labels", {}).get("mirror") != "yes":
            return
        await client.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"{req.name}-mirror",
                    "namespace": req.namespace,
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "name": req.name,
                            "uid": src["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "data": dict(src.get("data") or {}),
            }
        )

    mgr.controller().named("mirror").for_(CONFIGMAP).complete(reconcile)
    async with running(mgr):
        for i in range(5):
            await rest.request(
                "POST",
                f"/api/v1/namespaces/{namespace}/configmaps",
                body={
                    "metadata": {"name": f"src-{i}", "labels": {"mirror": "yes"}},
                    "data": {"i": str(i)},
                },
            )

        async def mirrored() -> int:
            items = (await rest.request("GET", f"/api/v1/namespaces/{namespace}/configmaps"))[
                "items"
            ]
            return sum(1 for cm in items if cm["metadata"]["name"].endswith("-mirror"))

        deadline = time.monotonic() + 15
        while await mirrored() < 5:
            assert time.monotonic() < deadline, "children not created"
            await asyncio.sleep(0.05)
        got = await rest.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/src-3-mirror")
        assert got["data"] == {"i": "3"}


async def test_a_burst_of_updates_collapses_while_reconciling(
    config: ClusterConfig, rest: RestClient, namespace: str
) -> None:
    mgr = manager(config, namespace)
    release = asyncio.Event()
    calls: list[str] = []

    async def reconcile(req: Request) -> None:
        if req.name != "burst":
            return
        calls.append(req.name)
        if len(calls) == 1:
            await release.wait()

    mgr.controller().named("burst").for_(CONFIGMAP).complete(reconcile)
    async with running(mgr):
        await put_configmap(rest, namespace, "burst", {"n": "0"})
        await wait_for(lambda: len(calls) == 1)
        for n in range(1, 21):
            await put_configmap(rest, namespace, "burst", {"n": str(n)})
        informer = (await mgr.informers_for(CONFIGMAP))[0]
        await wait_for(
            lambda: (
                (informer.store.get_by_name(namespace, "burst") or {}).get("data", {}).get("n")
                == "20"
            )
        )
        release.set()
        await wait_for(lambda: len(calls) == 2)
        await asyncio.sleep(0.5)
    assert len(calls) == 2  # the in-flight reconcile, then one for all 20 updates


async def test_one_key_never_runs_concurrently_with_many_workers(
    config: ClusterConfig, rest: RestClient, namespace: str
) -> None:
    mgr = manager(config, namespace)
    active: set[str] = set()
    overlaps: list[str] = []
    done: list[str] = []

    async def reconcile(req: Request) -> None:
        if req.name in active:
            overlaps.append(req.name)
        active.add(req.name)
        await asyncio.sleep(0.01)
        active.discard(req.name)
        done.append(req.name)

    mgr.controller().named("conc").for_(CONFIGMAP).with_options(
        max_concurrent_reconciles=4
    ).complete(reconcile)
    async with running(mgr):
        for n in range(40):
            await put_configmap(rest, namespace, f"k{n % 3}", {"n": str(n)})
        await wait_for(lambda: {"k0", "k1", "k2"} <= set(done))
        await asyncio.sleep(0.3)
    assert overlaps == []


async def test_errors_back_off_exponentially_and_terminal_errors_are_not_retried(
    config: ClusterConfig, rest: RestClient, namespace: str
) -> None:
    mgr = manager(config, namespace)
    times: dict[str, list[float]] = {"flaky": [], "terminal": []}

    async def reconcile(req: Request) -> None:
        if req.name not in times:
            return
        times[req.name].append(time.monotonic())
        if req.name == "terminal":
            raise TerminalError("cannot succeed")
        if len(times["flaky"]) <= 5:
            raise RuntimeError("transient")

    (
        mgr.controller()
        .named("backoff")
        .for_(CONFIGMAP)
        .with_options(rate_limiter=ItemExponentialRateLimiter(0.05, 10))
        .complete(reconcile)
    )
    async with running(mgr):
        await put_configmap(rest, namespace, "flaky", {})
        await put_configmap(rest, namespace, "terminal", {})
        await wait_for(lambda: len(times["flaky"]) == 6)
        await asyncio.sleep(0.5)
    gaps = [b - a for a, b in itertools.pairwise(times["flaky"])]
    print("retry gaps (s):", [round(g, 3) for g in gaps])
    for gap, nominal in zip(gaps, [0.05, 0.1, 0.2, 0.4, 0.8], strict=True):
        assert gap >= nominal * 0.9, gaps
    assert gaps[4] > 2 * gaps[0]  # lower bounds above prove the schedule; load only adds
    assert len(times["terminal"]) == 1


async def test_requeue_after_is_honoured(
    config: ClusterConfig, rest: RestClient, namespace: str
) -> None:
    mgr = manager(config, namespace)
    times: list[float] = []

    async def reconcile(req: Request) -> Result | None:
        if req.name != "poll":
            return None
        times.append(time.monotonic())
        return Result(requeue_after=0.3)

    mgr.controller().named("poll").for_(CONFIGMAP).complete(reconcile)
    async with running(mgr):
        await put_configmap(rest, namespace, "poll", {})
        await wait_for(lambda: len(times) >= 3)
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(times))


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def test_readyz_is_503_until_caches_sync_and_metrics_are_controller_runtimes(
    control_plane_factory: Callable[..., ControlPlane],
) -> None:
    cp = control_plane_factory()
    config = await load_kubeconfig(str(cp.kubeconfig))
    ns = cp.create_namespace(prefix="readyz-")
    mgr = manager(config, ns)

    async def reconcile(req: Request) -> None:
        return None

    mgr.controller().named("probe").for_(CONFIGMAP).complete(reconcile)
    await mgr.mapper.resource_for(CONFIGMAP)  # discovery done; the informer will have to wait
    await asyncio.to_thread(cp.kill_apiserver)
    async with running(mgr):
        await wait_for(lambda: mgr.probe_server is not None and mgr.probe_server.port != 0)
        assert mgr.probe_server is not None and mgr.metrics_server is not None
        base = f"http://127.0.0.1:{mgr.probe_server.port}"
        status, body = await fetch(f"{base}/readyz?verbose")
        assert status == 503, body
        assert "[-]informers-synced failed: waiting for" in body
        assert (await fetch(f"{base}/healthz"))[0] == 200
        await asyncio.to_thread(cp.start_apiserver)
        deadline = time.monotonic() + 60
        while (await fetch(f"{base}/readyz"))[0] != 200:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)

        text = (await fetch(f"http://127.0.0.1:{mgr.metrics_server.port}/metrics"))[1]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected = {
        "controller_runtime_reconcile": ("counter", {"controller", "result"}),
        "controller_runtime_reconcile_errors": ("counter", {"controller"}),
        "controller_runtime_terminal_reconcile_errors": ("counter", {"controller"}),
        "controller_runtime_reconcile_panics": ("counter", {"controller"}),
        "controller_runtime_reconcile_timeouts": ("counter", {"controller"}),
        "controller_runtime_reconcile_time_seconds": ("histogram", {"controller"}),
        "controller_runtime_max_concurrent_reconciles": ("gauge", {"controller"}),
        "controller_runtime_active_workers": ("gauge", {"controller"}),
        "workqueue_depth": ("gauge", {"name", "controller", "priority"}),
        "workqueue_adds": ("counter", {"name", "controller"}),
        "workqueue_queue_duration_seconds": ("histogram", {"name", "controller"}),
        "workqueue_work_duration_seconds": ("histogram", {"name", "controller"}),
        "workqueue_unfinished_work_seconds": ("gauge", {"name", "controller"}),
        "workqueue_longest_running_processor_seconds": ("gauge", {"name", "controller"}),
        "workqueue_retries": ("counter", {"name", "controller"}),
        "rest_client_requests": ("counter", {"code", "method", "host"}),
    }
    for name, (kind, labels) in expected.items():
        assert name in families, f"{name} missing from /metrics"
        fam = families[name]
        assert fam.type == kind, (name, fam.type)
        assert fam.samples, f"{name} has no samples"
        sample_labels = set(fam.samples[0].labels) - {"le"}
        assert sample_labels == labels, (name, sample_labels)
    results = {s.labels["result"] for s in families["controller_runtime_reconcile"].samples}
    assert results >= {"success", "error", "requeue", "requeue_after"}
    buckets = [
        s.labels["le"]
        for s in families["workqueue_queue_duration_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert buckets[:3] == ["1e-08", "1e-07", "1e-06"] and buckets[-2:] == ["1000.0", "+Inf"]


async def test_wait_for_sync_fails_naming_the_kind_and_the_403(
    control_plane: ControlPlane, namespace: str
) -> None:
    user = control_plane.add_user("too-few-permissions")
    config = await load_kubeconfig(str(user.kubeconfig))
    mgr = manager(config, namespace, cache_sync_timeout=30)

    async def reconcile(req: Request) -> None:
        return None

    mgr.controller().named("rbac").for_(CONFIGMAP).complete(reconcile)
    t0 = time.monotonic()
    with pytest.raises(CacheSyncError) as err:
        await mgr.run()
    message = str(err.value)
    print("sync error:", message)
    assert "ConfigMap" in message or "configmaps" in message
    assert "403" in message or "forbidden" in message.lower()
    assert time.monotonic() - t0 < 25, "a 403 must fail fast, not at the sync timeout"


Runner = Callable[[Manager], Awaitable[None]]
