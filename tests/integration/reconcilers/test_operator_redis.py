"""The cache's Redis on the full local cluster: its password Secret (created once, rotated by
deleting it, never leaked), the order its children are created in, the re-creation of a
StatefulSet made by an earlier operator version, and healing a cache stuck on a bad image or an
OOM loop by fixing its spec alone (kwok plays the failures: ``aimctl.envtest._full``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aimctl.api.v1alpha1 import AIMKVCache
from aimctl.envtest import KWOK_PROVISIONER, NODE_NAME, ControlPlane
from aimctl.envtest._full import OOM_MARKER, PULL_FAILURE_MARKER
from aimctl.reconcilers.kvcache import _desired as desired, _diagnosis

from .operator_kit import Operator, start_operator

GOOD_IMAGE = "docker.io/library/redis:7.2.12"
HASH = "aim.silogen.ai/auth-hash"


def cache(name: str, **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "aim.silogen.ai/v1alpha1",
            "kind": "AIMKVCache",
            "metadata": {"name": name},
            "spec": {"kvCacheType": "redis", **spec},
        }
    )


async def create(op: Operator, name: str, **spec: Any) -> None:
    await op.k("apply", "-n", op.namespace, "-f", "-", input=cache(name, **spec))


async def patch(op: Operator, kind: str, name: str, body: dict[str, Any]) -> None:
    await op.k("patch", kind, name, "-n", op.namespace, "--type=merge", "-p", json.dumps(body))


def password_of(secret: dict[str, Any]) -> str:
    return base64.b64decode(secret["data"]["password"]).decode()


def template_hash(sts: dict[str, Any]) -> str | None:
    annotations = sts["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations.get(HASH)


async def ready_reason(op: Operator, name: str) -> tuple[str | None, str, str]:
    obj = await op.get("aimkvcache", name) or {}
    status: dict[str, Any] = obj.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or () if c["type"] == "Ready"), {}
    )
    return status.get("status"), ready.get("reason", ""), ready.get("message", "")


async def wait_reason(
    op: Operator, name: str, reason: str, status: str | None = None, within: float = 90.0
) -> str:
    """Wait for the cache's Ready reason (and summary ``status``); returns the summary."""

    async def check() -> str | None:
        summary, got, _ = await ready_reason(op, name)
        return summary if got == reason and status in (None, summary) else None

    result: str = await op.wait(f"{name} Ready reason {reason} {status or ''}", check, within)
    return result


async def events(op: Operator) -> list[dict[str, Any]]:
    out = await op.k("get", "events.events.k8s.io", "-n", op.namespace, "-o", "json")
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


@contextlib.asynccontextmanager
async def creations(op: Operator, *paths: str) -> AsyncIterator[list[tuple[str, int]]]:
    """The ADDED events of watches on ``paths`` (collections), as (kind, resourceVersion) in
    the order the server created them: etcd revisions are global and increase with every
    write, so the creation revisions of objects of different kinds order their creations."""
    seen: list[tuple[str, int]] = []
    opened = asyncio.Event()
    pending = len(paths)

    async def watch(path: str) -> None:
        nonlocal pending
        listed = await op.mgr.rest.request("GET", path)
        rv = listed["metadata"]["resourceVersion"]
        async with op.mgr.rest.watch(path, {"resourceVersion": rv}) as stream:
            pending -= 1
            if pending == 0:
                opened.set()
            async for event in stream:
                if event.type == "ADDED":
                    m = event.object["metadata"]
                    seen.append((event.object["kind"], int(m["resourceVersion"])))

    tasks = [asyncio.create_task(watch(p)) for p in paths]
    try:
        await asyncio.wait_for(opened.wait(), 30)
        yield seen
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_cache_gets_a_password_secret_and_its_fence_before_redis(
    operator: Operator, capfd: pytest.CaptureFixture[str]
) -> None:
    op, ns = operator, operator.namespace
    paths = [
        f"/api/v1/namespaces/{ns}/secrets",
        f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
        f"/apis/apps/v1/namespaces/{ns}/statefulsets",
    ]
    async with creations(op, *paths) as seen:
        await create(op, "c1")
        ready = await op.wait_status("aimkvcache", "c1", "Ready", within=90)
        await op.wait("three creations", lambda: len(seen) >= 3)
    kinds = [kind for kind, _ in sorted(seen, key=lambda s: s[1])]
    assert kinds == ["Secret", "NetworkPolicy", "StatefulSet"], seen

    secret = await op.get("secret", "c1-auth")
    assert secret is not None
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("AIMKVCache", "c1", True)
    assert owner["uid"] == ready["metadata"]["uid"]
    assert secret["metadata"]["labels"]["app.kubernetes.io/instance"] == "c1"
    password = password_of(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", password)

    sts = await op.get("statefulset", "c1-statefulset")
    assert sts is not None
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert template_hash(sts) == hashlib.sha256(password.encode()).hexdigest()[:16]
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("c1-auth", "password")

    # The password is nowhere but in the Secret: not in the operator's log, Events, status,
    # or any other object of the namespace.
    await asyncio.sleep(1)
    everything = await op.k(
        "get", "statefulsets,services,networkpolicies,configmaps,aimkvcaches,pods", "-n", ns,
        "-o", "json",
    )  # fmt: skip
    assert password not in everything
    assert password not in json.dumps(await events(op))
    out, err = capfd.readouterr()
    assert password not in out + err


async def test_deleting_the_secret_rotates_the_password_and_rolls_redis(
    operator: Operator, capfd: pytest.CaptureFixture[str]
) -> None:
    op = operator
    await create(op, "c2")
    await op.wait_status("aimkvcache", "c2", "Ready", within=90)
    old_secret = await op.get("secret", "c2-auth")
    old_sts = await op.get("statefulset", "c2-statefulset")
    old_pod = await op.get("pod", "c2-statefulset-0")
    assert old_secret and old_sts and old_pod
    old_hash = template_hash(old_sts)

    await op.k("delete", "secret", "c2-auth", "-n", op.namespace)

    async def new_secret() -> dict[str, Any] | None:
        s = await op.get("secret", "c2-auth")
        return s if s and s["metadata"]["uid"] != old_secret["metadata"]["uid"] else None

    secret = await op.wait("a new Secret", new_secret)
    new_password = password_of(secret)
    assert new_password != password_of(old_secret)

    async def rolled() -> bool:
        sts = await op.get("statefulset", "c2-statefulset")
        pod = await op.get("pod", "c2-statefulset-0")
        return bool(
            sts
            and template_hash(sts) == hashlib.sha256(new_password.encode()).hexdigest()[:16]
            and pod
            and pod["metadata"]["uid"] != old_pod["metadata"]["uid"]
            and (pod["metadata"].get("annotations") or {}).get(HASH) == template_hash(sts)
        )

    await op.wait("Redis rolled with the new password", rolled, within=90)
    rolled_sts = await op.get("statefulset", "c2-statefulset")
    assert rolled_sts is not None and template_hash(rolled_sts) != old_hash
    await op.wait_status("aimkvcache", "c2", "Ready", within=90)
    notes = [e.get("note", "") for e in await events(op)]
    assert any("c2-auth" in n and "new Redis password" in n for n in notes), notes
    out, err = capfd.readouterr()
    for pw in (password_of(old_secret), new_password):
        assert pw not in out + err
        assert pw not in json.dumps(notes)


async def test_a_secret_name_taken_by_someone_else_is_a_conflict_left_untouched(
    operator: Operator,
) -> None:
    op = operator
    foreign = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "c3-auth"},
        "stringData": {"password": "theirs"},
    }
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(foreign))
    await create(op, "c3")
    assert await wait_reason(op, "c3", "ChildConflict") == "Failed"
    _, _, message = await ready_reason(op, "c3")
    assert "Secret c3-auth already exists and is not managed by aimkvcache-controller" in message
    secret = await op.get("secret", "c3-auth")
    assert secret is not None and password_of(secret) == "theirs"
    assert not secret["metadata"].get("ownerReferences")
    # No Redis without its password: the pod would only fail CreateContainerConfigError.
    assert await op.get("statefulset", "c3-statefulset") is None
    # The user renames theirs away: the cache gets its own and turns Ready.
    await op.k("delete", "secret", "c3-auth", "-n", op.namespace)
    await op.wait_status("aimkvcache", "c3", "Ready", within=120)


async def test_a_secret_without_its_password_is_reported_never_overwritten(
    operator: Operator,
) -> None:
    op = operator
    await create(op, "c4")
    await op.wait_status("aimkvcache", "c4", "Ready", within=90)
    sts = await op.get("statefulset", "c4-statefulset")
    assert sts is not None
    await op.k(
        "patch", "secret", "c4-auth", "-n", op.namespace, "--type=json",
        "-p", '[{"op": "remove", "path": "/data/password"}]',
    )  # fmt: skip
    assert await wait_reason(op, "c4", "AuthSecretInvalid") == "Failed"
    _, _, message = await ready_reason(op, "c4")
    assert f"kubectl delete secret -n {op.namespace} c4-auth" in message
    secret = await op.get("secret", "c4-auth")
    assert secret is not None and "password" not in secret["data"]
    # Redis is left as it runs (its password was read at start).
    after = await op.get("statefulset", "c4-statefulset")
    assert after is not None and template_hash(after) == template_hash(sts)
    await op.k("delete", "secret", "c4-auth", "-n", op.namespace)
    await op.wait_status("aimkvcache", "c4", "Ready", within=120)


async def test_an_ordered_ready_statefulset_of_an_earlier_version_is_recreated_keeping_its_pod(
    operator_cluster: ControlPlane, full_namespace: str
) -> None:
    cp, ns = operator_cluster, full_namespace
    # What an earlier operator version left: the cache, its Secret and an OrderedReady
    # StatefulSet (otherwise as rendered now, so the pod need not change), its pod Running.
    cp.kubectl("apply", "-n", ns, "-f", "-", input=cache("c5"))
    raw = json.loads(cp.kubectl("get", "aimkvcache", "c5", "-n", ns, "-o", "json").stdout)
    model = AIMKVCache.model_validate(raw)
    password = desired.new_password()
    cp.kubectl("create", "-f", "-", input=json.dumps(desired.auth_secret(model, raw, password)))
    old = desired.statefulset(
        model, raw, auth_hash=hashlib.sha256(password.encode()).hexdigest()[:16]
    )
    old["spec"]["podManagementPolicy"] = "OrderedReady"
    cp.kubectl("create", "-f", "-", input=json.dumps(old))

    def get(kind: str, name: str) -> dict[str, Any] | None:
        out = cp.kubectl("get", kind, name, "-n", ns, "-o", "json", "--ignore-not-found").stdout
        return json.loads(out) if out.strip() else None

    for _ in range(300):
        pod = get("pod", "c5-statefulset-0")
        if pod and any(
            c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"]
        ):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"the old StatefulSet's pod never got Ready: {pod}")
    old_sts = get("statefulset", "c5-statefulset")
    assert old_sts is not None and old_sts["spec"]["podManagementPolicy"] == "OrderedReady"

    async with start_operator(cp, ns) as op:

        async def recreated() -> dict[str, Any] | None:
            got = await op.get("statefulset", "c5-statefulset")
            if got is None or got["metadata"]["uid"] == old_sts["metadata"]["uid"]:
                return None
            return got if got["spec"]["podManagementPolicy"] == "Parallel" else None

        sts: dict[str, Any] = await op.wait(
            "the StatefulSet re-created with Parallel", recreated, within=90
        )
        await op.wait_status("aimkvcache", "c5", "Ready", within=90)

        async def adopted() -> bool:
            p = await op.get("pod", "c5-statefulset-0")
            owner = (p or {}).get("metadata", {}).get("ownerReferences") or [{}]
            return bool(owner[0].get("uid") == sts["metadata"]["uid"])

        await op.wait("the pod adopted by the new StatefulSet", adopted, within=60)
        kept = await op.get("pod", "c5-statefulset-0")
        assert kept is not None and kept["metadata"]["uid"] == pod["metadata"]["uid"]
        secret = await op.get("secret", "c5-auth")
        assert secret is not None and password_of(secret) == password  # never overwritten
        notes = [
            e.get("note", "") for e in await events(op) if e.get("reason") == "StatefulSetRecreated"
        ]
        assert any("podManagementPolicy Parallel (was OrderedReady)" in n for n in notes), notes


async def test_a_cache_stuck_on_an_image_that_cannot_be_pulled_heals_when_the_image_is_fixed(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = operator
    monkeypatch.setattr(_diagnosis, "IMAGE_PULL_GRACE", 15.0)
    bad = f"docker.io/library/redis:{PULL_FAILURE_MARKER}"
    await create(op, "c6", image=bad)
    # First a pull the kubelet retries: not Failed (a registry's 429 must not fail consumers).
    assert await wait_reason(op, "c6", "ImagePullRetrying") == "Progressing"
    # Past the grace period: Failed, saying what to fix.
    await wait_reason(op, "c6", "ImagePullFailed", "Failed", within=60)
    _, _, message = await ready_reason(op, "c6")
    assert f"pull image {bad}" in message and "spec.image" in message
    stuck = await op.get("pod", "c6-statefulset-0")
    assert stuck is not None

    await patch(op, "aimkvcache", "c6", {"spec": {"image": GOOD_IMAGE}})
    ready = await op.wait_status("aimkvcache", "c6", "Ready", within=120)
    assert "lastError" not in ready["status"]
    pod = await op.get("pod", "c6-statefulset-0")
    assert pod is not None and pod["metadata"]["uid"] != stuck["metadata"]["uid"]
    assert pod["spec"]["containers"][0]["image"] == GOOD_IMAGE


async def test_a_transient_pull_error_does_not_fail_the_services_using_the_cache(
    operator: Operator,
) -> None:
    op = operator
    await create(op, "c7", image=f"docker.io/library/redis:{PULL_FAILURE_MARKER}")
    service = {
        "apiVersion": "aim.silogen.ai/v1alpha1",
        "kind": "AIMService",
        "metadata": {"name": "chat"},
        "spec": {
            "model": {"image": "ghcr.io/silogen/aim-meta-llama-llama-3-1-8b-instruct:0.7.0"},
            "kvCache": {"name": "c7"},
        },
    }
    await op.k("apply", "-n", op.namespace, "-f", "-", input=json.dumps(service))
    assert await wait_reason(op, "c7", "ImagePullRetrying") == "Progressing"
    for _ in range(10):  # within the (default, 5 minute) grace period: nothing is Failed
        svc = await op.get("aimservice", "chat")
        assert ((svc or {}).get("status") or {}).get("status") != "Failed", svc
        status, reason, _ = await ready_reason(op, "c7")
        assert (status, reason) == ("Progressing", "ImagePullRetrying")
        await asyncio.sleep(0.5)
    await patch(op, "aimkvcache", "c7", {"spec": {"image": GOOD_IMAGE}})
    await op.wait_status("aimkvcache", "c7", "Ready", within=120)


async def test_an_oom_killed_cache_heals_when_its_memory_limit_is_raised(
    operator: Operator,
) -> None:
    op = operator
    # The default resources (1Gi limit) are too small for this simulated Redis.
    await create(op, "c8", image=f"docker.io/library/redis:7.2.12-{OOM_MARKER}")
    # Killed once (a restart may help), then in a crash loop: Failed.
    await wait_reason(op, "c8", "OOMKilled", "Failed")
    _, _, message = await ready_reason(op, "c8")
    assert "its memory limit 1Gi" in message
    assert "raise resources.limits.memory or lower maxmemory" in message
    stuck = await op.get("pod", "c8-statefulset-0")
    assert stuck is not None

    resources = {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    await patch(op, "aimkvcache", "c8", {"spec": {"resources": resources}})
    ready = await op.wait_status("aimkvcache", "c8", "Ready", within=120)
    assert "lastError" not in ready["status"]
    pod = await op.get("pod", "c8-statefulset-0")
    assert pod is not None and pod["metadata"]["uid"] != stuck["metadata"]["uid"]


async def test_an_unschedulable_pod_on_a_wait_for_first_consumer_class_is_the_reported_cause(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The claim waits for the pod, the pod for a node: the pod's finding is the cause, not
    # "the claim is stuck Pending" (the reconciler passes the pod to the storage diagnosis).
    op = operator
    monkeypatch.setattr(_diagnosis, "SCHEDULING_GRACE", 2.0)
    monkeypatch.setattr(_diagnosis, "PVC_PENDING_GRACE", 2.0)
    klass = f"{op.namespace}-wffc"
    body = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": klass},
        "provisioner": KWOK_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    await op.k("apply", "-f", "-", input=json.dumps(body))
    try:
        await create(
            op, "c10", storage={"storageClassName": klass}, nodeSelector={"pool": "gpu-none"}
        )
        assert await wait_reason(op, "c10", "Unschedulable") == "Progressing"
        _, _, message = await ready_reason(op, "c10")
        assert "cannot be scheduled" in message and "spec.nodeSelector" in message
        obj = await op.get("aimkvcache", "c10")
        assert obj is not None
        storage = next(c for c in obj["status"]["conditions"] if c["type"] == "StorageReady")
        assert (storage["status"], storage["reason"]) == ("False", "WaitingForFirstConsumer")
        # The node gets the label: the pod is scheduled, the claim provisioned, the cache Ready.
        await op.k("label", "node", NODE_NAME, "pool=gpu-none")
        await op.wait_status("aimkvcache", "c10", "Ready", within=120)
    finally:
        await op.k("label", "node", NODE_NAME, "pool-", check=False)
        await op.k("delete", "storageclass", klass, "--wait=false", check=False)


async def test_a_restarted_operator_writes_nothing_for_a_converged_cache(
    operator_cluster: ControlPlane, full_namespace: str
) -> None:
    cp, ns = operator_cluster, full_namespace
    async with start_operator(cp, ns) as op:
        await create(op, "c9")
        await op.wait_status("aimkvcache", "c9", "Ready", within=90)
        await asyncio.sleep(3)  # the last status write comes back through the watch
    async with start_operator(cp, ns) as op2:

        def idle() -> bool:
            return all(len(c.queue) == 0 and c.in_flight == 0 for c in op2.mgr.controllers)

        await op2.wait("initial reconciles done", idle, within=60)
        await asyncio.sleep(3)
        assert idle()
        assert op2.mgr.rest.stats.writes == 0, dict(op2.mgr.rest.stats.requests)
