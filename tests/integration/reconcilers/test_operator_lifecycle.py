"""Drift, idempotence, storage growth, deletion and sharing, on the full local cluster."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aimctl.controller import Request
from aimctl.envtest import ControlPlane
from aimctl.informers import FuncHandler
from aimctl.reconcilers._common import AIMKVCACHE
from aimctl.reconcilers.kvcache import _desired as desired

from .operator_kit import Operator, start_operator, storage_class


async def test_drifted_or_deleted_children_are_restored(operator: Operator) -> None:
    op = operator
    await op.apply_sample("quick-start.yaml")
    await op.wait_status("aimkvcache", "kvcache-llama-chat", "Ready")
    sts = "kvcache-llama-chat-statefulset"
    await op.k("set", "image", f"statefulset/{sts}", "redis=redis:6", "-n", op.namespace)
    await op.k(
        "label",
        "service",
        "kvcache-llama-chat-svc",
        "app.kubernetes.io/name=hacked",
        "--overwrite",
        "-n",
        op.namespace,
    )
    await op.k("delete", "networkpolicy", "kvcache-llama-chat-netpol", "-n", op.namespace)

    async def restored() -> bool:
        s = await op.get("statefulset", sts)
        svc = await op.get("service", "kvcache-llama-chat-svc")
        np = await op.get("networkpolicy", "kvcache-llama-chat-netpol")
        return bool(
            s
            and s["spec"]["template"]["spec"]["containers"][0]["image"] == desired.DEFAULT_IMAGE
            and svc
            and svc["metadata"]["labels"]["app.kubernetes.io/name"] == "aimkvcache"
            and np
        )

    await op.wait("children restored", restored)
    await op.k("delete", "service", "kvcache-llama-chat-svc", "-n", op.namespace, "--wait=false")

    async def recreated() -> bool:
        return await op.get("service", "kvcache-llama-chat-svc") is not None

    await op.wait("service re-created", recreated)


async def test_in_sync_reconciles_make_no_api_requests(operator: Operator) -> None:
    op = operator
    await op.apply_sample("quick-start.yaml")
    await op.wait_status("aimkvcache", "kvcache-llama-chat", "Ready")
    await op.wait_status("aimservice", "llama-chat", "Running")
    await asyncio.sleep(2)  # let the last status writes come back through the watch
    rest = op.mgr.rest
    before = dict(rest.stats.requests)
    # Force a reconcile of every object, as a resync would.
    for c in op.mgr.controllers:
        kind = "AIMKVCache" if c.name == "aimkvcache-controller" else "AIMService"
        for inf in op.mgr.informers.informers:
            if inf.kind.endswith(kind):
                for obj in inf.store.list():
                    c.queue.add(Request(obj["metadata"]["namespace"], obj["metadata"]["name"]))
    await asyncio.sleep(2)
    after = dict(rest.stats.requests)
    print(
        "requests during the forced resync:", {k: after.get(k, 0) - before.get(k, 0) for k in after}
    )
    assert after == before, "a reconcile in sync made API requests"


async def test_growing_storage_expands_the_pvc_and_keeps_pod_and_data(operator: Operator) -> None:
    op = operator
    klass = f"{op.namespace}-grow"
    storage_class(op.cp, klass, expandable=True)
    body = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": "grow"},
        "spec": {"storage": {"size": "10Gi", "storageClassName": klass}},
    }
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(body))
    await op.wait_status("aimkvcache", "grow", "Ready")
    pvc_before = await op.get("pvc", "redis-data-grow-statefulset-0")
    pod_before = await op.get("pod", "grow-statefulset-0")
    sts_before = await op.get("statefulset", "grow-statefulset")
    assert pvc_before and pod_before and sts_before
    # Every status the cache shows while growing: it keeps serving, so it stays Ready.
    seen: list[str] = []

    def record(_: object, new: dict[str, Any]) -> None:
        if (new.get("metadata") or {}).get("name") == "grow":
            seen.append(str((new.get("status") or {}).get("status")))

    for informer in await op.mgr.informers_for(AIMKVCACHE):
        informer.add_handler(FuncHandler(update=record))
    body["spec"]["storage"]["size"] = "20Gi"  # type: ignore[index]
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(body))

    async def grown() -> bool:
        sts = await op.get("statefulset", "grow-statefulset")
        pvc = await op.get("pvc", "redis-data-grow-statefulset-0")
        return bool(
            sts
            and sts["metadata"]["uid"] != sts_before["metadata"]["uid"]
            and sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
            == "20Gi"
            and pvc
            and pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
        )

    await op.wait("StatefulSet re-created with 20Gi and PVC expanded", grown)
    pvc_after = await op.get("pvc", "redis-data-grow-statefulset-0")
    pod_after = await op.get("pod", "grow-statefulset-0")
    assert pvc_after and pod_after
    assert pvc_after["metadata"]["uid"] == pvc_before["metadata"]["uid"], (
        "the PVC (the data) was replaced"
    )
    assert pod_after["metadata"]["uid"] == pod_before["metadata"]["uid"], "the pod was restarted"
    describe = await op.k("describe", "aimkvcache", "grow", "-n", op.namespace)
    assert "ExpandingStorage" in describe and "StatefulSetRecreated" in describe

    async def resized() -> bool:
        obj = await op.get("aimkvcache", "grow")
        status = (obj or {}).get("status") or {}
        storage: dict[str, str] = next(
            (c for c in status.get("conditions", []) if c["type"] == "StorageReady"), {}
        )
        return status.get("storageSize") == "20Gi" and storage.get("reason") == "Bound"

    await op.wait("capacity 20Gi reported and StorageReady again", resized)
    assert seen and set(seen) == {"Ready"}, f"the cache left Ready while growing: {seen}"


async def test_growth_on_a_class_without_expansion_is_explained(operator: Operator) -> None:
    op = operator
    klass = f"{op.namespace}-fixed"
    storage_class(op.cp, klass, expandable=False)
    body = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMKVCache",
        "metadata": {"name": "fixed"},
        "spec": {"storage": {"size": "10Gi", "storageClassName": klass}},
    }
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(body))
    await op.wait_status("aimkvcache", "fixed", "Ready")
    body["spec"]["storage"]["size"] = "20Gi"  # type: ignore[index]
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(body))

    async def explained() -> dict[str, object] | None:
        obj = await op.get("aimkvcache", "fixed")
        conds = (obj or {}).get("status", {}).get("conditions", [])
        c: dict[str, object] = next((c for c in conds if c["type"] == "StorageReady"), {})
        return c if c.get("reason") == "ExpansionNotSupported" else None

    cond = await op.wait("ExpansionNotSupported", explained)
    assert "does not allow volume expansion" in str(cond["message"])
    # Still serving with the old size: Ready, StatefulSet untouched.
    obj = await op.get("aimkvcache", "fixed")
    assert obj is not None and obj["status"]["status"] == "Ready"
    # Shrinking is refused at admission.
    body["spec"]["storage"]["size"] = "5Gi"  # type: ignore[index]
    out = op.cp.kubectl("apply", "-n", op.namespace, "-f", "-", input=json.dumps(body), check=False)
    assert out.returncode != 0 and "storage.size cannot shrink" in out.stderr


async def test_deleting_the_service_removes_its_own_cache_and_children(operator: Operator) -> None:
    op = operator
    await op.apply_sample("quick-start.yaml")
    await op.wait_status("aimkvcache", "kvcache-llama-chat", "Ready")
    await op.k("delete", "aimservice", "llama-chat", "-n", op.namespace, "--wait=false")

    async def gone() -> bool:
        out = await op.k(
            "get",
            "aimkvcache,statefulset,service,pvc,deployment,configmap,networkpolicy",
            "-n",
            op.namespace,
            "-o",
            "name",
            "-l",
            "app.kubernetes.io/managed-by",
        )
        cache = await op.get("aimkvcache", "kvcache-llama-chat")
        return not out.strip() and cache is None

    await op.wait("cache and children garbage-collected", gone, within=90)


async def test_a_shared_cache_outlives_its_users_and_is_held_while_in_use(
    operator: Operator,
) -> None:
    op = operator
    ns = op.namespace
    await op.k(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "aim.silogen.ai/v1alpha1",
                "kind": "AIMKVCache",
                "metadata": {"name": "shared-cache"},
                "spec": {"kvCacheType": "redis"},
            }
        ),
    )
    await op.apply_sample("shared-cache-services.yaml")
    await op.wait_status("aimservice", "llama-chat", "Running")
    await op.wait_status("aimservice", "llama-completion", "Running")
    # Delete one user: the cache stays (it is not owned by the services).
    await op.k("delete", "aimservice", "llama-chat", "-n", ns, "--wait=false")

    async def one_user_left() -> bool:
        return await _users(op) == ["llama-completion"]

    await op.wait("users updated", one_user_left)
    # Delete the cache while still in use: held by the finalizer, with an Event saying why.
    await op.k("delete", "aimkvcache", "shared-cache", "-n", ns, "--wait=false")
    await asyncio.sleep(2)
    held = await op.get("aimkvcache", "shared-cache")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    describe = await op.k("describe", "aimkvcache", "shared-cache", "-n", ns)
    assert "DeletionBlocked" in describe and "in use by AIMService llama-completion" in describe
    assert await op.get("statefulset", "shared-cache-statefulset") is not None
    # The last user goes: the cache and its children go too.
    await op.k("delete", "aimservice", "llama-completion", "-n", ns, "--wait=false")

    async def cache_gone() -> bool:
        return await _absent(op, "aimkvcache", "shared-cache")

    await op.wait("cache deleted", cache_gone, within=90)


async def _users(op: Operator) -> list[str]:
    obj = await op.get("aimkvcache", "shared-cache")
    return list(((obj or {}).get("status") or {}).get("users") or [])


async def _absent(op: Operator, kind: str, name: str) -> bool:
    return await op.get(kind, name) is None


async def test_restarting_the_operator_over_200_converged_caches_makes_no_writes(
    operator_cluster: ControlPlane, full_namespace: str
) -> None:
    cp, ns, n = operator_cluster, full_namespace, 200
    # A simulated node holds 110 pods: give the 200 Redis pods room.
    for node in ("kwok-node-1", "kwok-node-2"):
        await asyncio.to_thread(cp.add_node, node)
    # Small requests: the one kwok node has 32 CPUs, so 200 default caches (500m each) would not
    # fit, and the operator would rightly report most of them Unschedulable.
    tiny = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}}
    docs = [
        {
            "apiVersion": "aim.silogen.ai/v1alpha1",
            "kind": "AIMKVCache",
            "metadata": {"name": f"c{i:03d}", "namespace": ns},
            "spec": {"resources": tiny},
        }
        for i in range(n)
    ]
    async with start_operator(cp, ns) as op:
        t0 = time.monotonic()
        await op.k(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        )

        async def all_ready() -> bool:
            items = json.loads(await op.k("get", "aimkvcache", "-n", ns, "-o", "json"))["items"]
            return len(items) == n and all(
                (i.get("status") or {}).get("status") == "Ready" for i in items
            )

        await op.wait(f"{n} caches Ready", all_ready, within=300)
        print(f"{n} caches Ready in {time.monotonic() - t0:.1f}s")
        await asyncio.sleep(3)
    async with start_operator(cp, ns) as op2:
        t1 = time.monotonic()

        def queues_done() -> bool:
            return all(len(c.queue) == 0 and c.in_flight == 0 for c in op2.mgr.controllers)

        await op2.wait("initial reconciles done", queues_done, within=120)
        await asyncio.sleep(3)
        assert queues_done()
        writes = op2.mgr.rest.stats.writes
        print(
            f"restart over {n} converged caches: ready in {time.monotonic() - t1:.1f}s, "
            f"{writes} write requests, requests={dict(op2.mgr.rest.stats.requests)}"
        )
        assert writes == 0
