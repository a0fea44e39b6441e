"""Issue 13 on the full local cluster: what the operator may write, what leaves a child when it
leaves the spec, and lifecycles that used to deadlock.

- An object we did not create is not ours: a pre-existing unowned object under any child name
  is left byte-for-byte untouched (same resourceVersion), the CR reports ChildConflict with an
  Event, and deleting the CR leaves the object.
- Removal is a change: env vars, limits and ``kvCache`` removed from a spec leave the children,
  also when the change happened while the operator was stopped.
- Re-created services (GitOps replace, ``--cascade=orphan``, operator down), an unparseable
  Terminating cache and a switch from ``type`` to ``name: kvcache-<self>`` converge on their own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml

from aimctl.client import Conflict
from aimctl.envtest import ControlPlane, permissive_crd
from aimctl.envtest.pytest_plugin import ControlPlaneFactory
from aimctl.reconcilers._common import create_only

from .operator_kit import CRDS, Operator, start_operator

GROUP_VERSION = "aim.silogen.ai/v1alpha1"


def _cache(name: str, **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": GROUP_VERSION,
            "kind": "AIMKVCache",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def _service(name: str, **spec: Any) -> str:
    body = {"model": {"image": "ghcr.io/example/llama:1"}, **spec}
    return json.dumps(
        {
            "apiVersion": GROUP_VERSION,
            "kind": "AIMService",
            "metadata": {"name": name},
            "spec": body,
        }
    )


def _foreign(kind: str, name: str) -> dict[str, Any]:
    """An object an admin created by hand under a name the operator wants (no owner, no labels)."""
    meta = {"name": name, "annotations": {"owner": "platform-admin"}}
    labels = {"app": f"admin-{name}"}
    if kind == "Service":
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": labels, "ports": [{"port": 1234, "protocol": "TCP"}]},
        }
    if kind == "NetworkPolicy":
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta,
            "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"]},
        }
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": "registry.example/admin:1"}]},
    }
    spec: dict[str, Any] = {
        "replicas": 0,
        "selector": {"matchLabels": labels},
        "template": template,
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


async def _ready_condition(op: Operator, kind: str, name: str) -> dict[str, Any] | None:
    obj = await op.get(kind, name)
    for cond in ((obj or {}).get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


async def _events(op: Operator, name: str) -> list[dict[str, Any]]:
    out = await op.k(
        "get", "events.events.k8s.io", "-n", op.namespace, "-o", "json",
        "--field-selector", f"regarding.name={name}",
    )  # fmt: skip
    return list(json.loads(out)["items"])


async def test_foreign_objects_under_every_child_name_are_never_touched(operator: Operator) -> None:
    ns = operator.namespace
    # Each CR meets one foreign object under one of its child names.
    cases = [
        ("aimkvcache", "c-sts", "StatefulSet", "c-sts-statefulset", _cache("c-sts")),
        ("aimkvcache", "c-svc", "Service", "c-svc-svc", _cache("c-svc")),
        ("aimkvcache", "c-np", "NetworkPolicy", "c-np-netpol", _cache("c-np")),
        ("aimservice", "s-deploy", "Deployment", "s-deploy", _service("s-deploy")),
        ("aimservice", "s-svc", "Service", "s-svc", _service("s-svc")),
        (
            "aimservice",
            "s-cm",
            "ConfigMap",
            "s-cm-lmcache",
            _service("s-cm", kvCache={"type": "redis"}),
        ),
    ]
    before: dict[str, dict[str, Any]] = {}
    for _, _, kind, child, _ in cases:
        await operator.k("create", "-n", ns, "-f", "-", input=json.dumps(_foreign(kind, child)))
        got = await operator.get(kind, child)
        assert got is not None
        before[f"{kind}/{child}"] = got
    for _, _, _, _, cr in cases:
        await operator.k("apply", "-n", ns, "-f", "-", input=cr)

    for crd, name, kind, child, _ in cases:

        async def conflict(crd: str = crd, name: str = name) -> dict[str, Any] | None:
            cond = await _ready_condition(operator, crd, name)
            return cond if cond and cond.get("reason") == "ChildConflict" else None

        cond = await operator.wait(f"{crd}/{name} ChildConflict", conflict, within=90)
        assert f"{kind} {child} already exists and is not managed by" in cond["message"], cond
        reasons = {e.get("reason") for e in await _events(operator, name)}
        assert "ChildConflict" in reasons, reasons

    # Deleting the CRs leaves the foreign objects exactly as they were.
    for crd, name, _, _, _ in cases:
        await operator.k("delete", crd, name, "-n", ns, "--wait=true", "--timeout=90s")
    await asyncio.sleep(3)  # give the garbage collector a chance to (wrongly) act
    for key, old in before.items():
        kind, child = key.split("/")
        now = await operator.get(kind, child)
        assert now is not None, f"{key} was deleted"
        # Byte-for-byte what the admin wrote (a workload's status is the kube controllers').
        assert _written(now) == _written(old), key
        managers = {e.get("manager") for e in now["metadata"].get("managedFields") or ()}
        assert not managers & {"aimkvcache-controller", "aimservice-controller"}, (key, managers)


def _written(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj["metadata"]
    keep = ("name", "labels", "annotations", "ownerReferences", "finalizers", "generation")
    return {
        "metadata": {k: m.get(k) for k in keep},
        **{k: v for k, v in obj.items() if k not in ("metadata", "status")},
    }


async def _container(op: Operator, kind: str, name: str) -> dict[str, Any]:
    obj = await op.get(kind, name)
    assert obj is not None, f"{kind} {name} missing"
    return dict(obj["spec"]["template"]["spec"]["containers"][0])


# Always on the Redis container: its password, from the cache's Secret (not the user's env).
_AUTH_ENV = {"REDIS_PASSWORD", "REDISCLI_AUTH"}


def _env_names(container: dict[str, Any]) -> set[str]:
    return {e["name"] for e in container.get("env") or ()} - _AUTH_ENV


async def test_removed_fields_leave_the_children_also_while_the_operator_was_down(
    operator: Operator,
) -> None:
    ns = operator.namespace
    resources = {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "1"}}
    env = [{"name": "KEEP", "value": "1"}, {"name": "DROP", "value": "2"}]
    await operator.k(
        "apply", "-n", ns, "-f", "-",
        input=_service("llm", env=env, resources=resources, kvCache={"type": "redis"}),
    )  # fmt: skip
    await operator.k(
        "apply", "-n", ns, "-f", "-",
        input=_cache("shared", env=env, resources=resources),
    )  # fmt: skip
    await operator.wait_status("aimservice", "llm", "Running", within=120)
    await operator.wait_status("aimkvcache", "shared", "Ready", within=120)
    c = await _container(operator, "deployment", "llm")
    assert {"KEEP", "DROP", "LMCACHE_CONFIG_FILE"} <= _env_names(c)
    assert c["resources"]["limits"]["cpu"] == "2"

    # 1) While the operator runs: drop an env var and the cpu limit.
    less = {"limits": {"memory": "1Gi"}, "requests": {"cpu": "1"}}
    await operator.k(
        "apply", "-n", ns, "-f", "-",
        input=_service("llm", env=env[:1], resources=less, kvCache={"type": "redis"}),
    )  # fmt: skip
    await operator.k(
        "apply", "-n", ns, "-f", "-", input=_cache("shared", env=env[:1], resources=less)
    )

    async def trimmed() -> bool:
        d = await _container(operator, "deployment", "llm")
        s = await _container(operator, "statefulset", "shared-statefulset")
        return all(
            "DROP" not in _env_names(x) and "cpu" not in x["resources"].get("limits", {})
            for x in (d, s)
        )

    await operator.wait("env var and cpu limit removed from Deployment and StatefulSet", trimmed)

    # 2) While the operator is stopped: drop kvCache (and the last env var).
    operator.mgr.stop()
    await asyncio.wait_for(operator.task, 30)
    await operator.k("apply", "-n", ns, "-f", "-", input=_service("llm", resources=less))
    await operator.k("apply", "-n", ns, "-f", "-", input=_cache("shared", resources=less))
    async with start_operator(operator.cp, ns) as op2:

        async def unwired() -> bool:
            d = await _container(op2, "deployment", "llm")
            s = await _container(op2, "statefulset", "shared-statefulset")
            dep = await op2.get("deployment", "llm")
            assert dep is not None
            return (
                not _env_names(d)
                and not d.get("volumeMounts")
                and not dep["spec"]["template"]["spec"].get("volumes")
                and not _env_names(s)
                and await op2.get("configmap", "llm-lmcache") is None
                and await op2.get("aimkvcache", "kvcache-llm") is None
            )

        await op2.wait("kvCache removal reached the Deployment, ConfigMap and cache", unwired, 120)
        await op2.wait_status("aimservice", "llm", "Running", within=120)


async def _controller_uid(op: Operator, kind: str, name: str) -> str | None:
    obj = await op.get(kind, name)
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref["uid"])
    return None


async def _uid(op: Operator, kind: str, name: str) -> str | None:
    obj = await op.get(kind, name)
    return None if obj is None else str(obj["metadata"]["uid"])


async def _wait_running_with_own_cache(op: Operator, name: str, within: float = 150) -> str:
    """The service is Running on a cache it controls; returns the cache's uid."""

    async def converged() -> str | None:
        svc = await op.get("aimservice", name)
        if not svc or (svc.get("status") or {}).get("status") != "Running":
            return None
        if await _controller_uid(op, "aimkvcache", f"kvcache-{name}") != svc["metadata"]["uid"]:
            return None
        return await _uid(op, "aimkvcache", f"kvcache-{name}")

    uid: str = await op.wait(f"{name} Running on its own cache", converged, within)
    return uid


async def test_service_replaced_while_its_cache_exists_gets_a_new_cache(
    operator: Operator,
) -> None:
    ns = operator.namespace
    body = _service("rep", kvCache={"type": "redis"})
    await operator.k("apply", "-n", ns, "-f", "-", input=body)
    old_cache = await _wait_running_with_own_cache(operator, "rep")
    # GitOps replace: delete without waiting, create again at once.
    await operator.k("delete", "aimservice", "rep", "-n", ns, "--wait=false")
    await operator.k("apply", "-n", ns, "-f", "-", input=body)
    new_cache = await _wait_running_with_own_cache(operator, "rep", within=180)
    assert new_cache != old_cache


async def test_service_deleted_with_cascade_orphan_then_recreated_adopts_its_cache(
    operator: Operator,
) -> None:
    ns = operator.namespace
    body = _service("orph", kvCache={"type": "redis"})
    await operator.k("apply", "-n", ns, "-f", "-", input=body)
    cache_uid = await _wait_running_with_own_cache(operator, "orph")
    deploy_uid = await _uid(operator, "deployment", "orph")
    await operator.k("delete", "aimservice", "orph", "-n", ns, "--cascade=orphan", "--wait=true")
    await operator.k("apply", "-n", ns, "-f", "-", input=body)
    assert await _wait_running_with_own_cache(operator, "orph", within=120) == cache_uid
    svc = await operator.get("aimservice", "orph")
    assert svc is not None

    new_uid = str(svc["metadata"]["uid"])

    async def adopted() -> bool:
        return await _controller_uid(operator, "deployment", "orph") == new_uid

    await operator.wait("the orphaned Deployment adopted", adopted)
    assert await _uid(operator, "deployment", "orph") == deploy_uid  # kept, not re-created


async def test_service_replaced_while_the_operator_is_down_converges(operator: Operator) -> None:
    ns = operator.namespace
    body = _service("down", kvCache={"type": "redis"})
    await operator.k("apply", "-n", ns, "-f", "-", input=body)
    old_cache = await _wait_running_with_own_cache(operator, "down")
    operator.mgr.stop()
    await asyncio.wait_for(operator.task, 30)
    await operator.k("delete", "aimservice", "down", "-n", ns, "--wait=true")
    await operator.k("apply", "-n", ns, "-f", "-", input=body)
    async with start_operator(operator.cp, ns) as op2:
        new_cache = await _wait_running_with_own_cache(op2, "down", within=180)
    assert new_cache != old_cache


async def test_switching_from_type_to_its_own_cache_by_name_keeps_the_cache(
    operator: Operator,
) -> None:
    ns = operator.namespace
    await operator.k("apply", "-n", ns, "-f", "-", input=_service("sw", kvCache={"type": "redis"}))
    cache_uid = await _wait_running_with_own_cache(operator, "sw")
    await operator.k(
        "apply", "-n", ns, "-f", "-", input=_service("sw", kvCache={"name": "kvcache-sw"})
    )

    async def released() -> bool:
        return (
            await _uid(operator, "aimkvcache", "kvcache-sw") == cache_uid
            and await _controller_uid(operator, "aimkvcache", "kvcache-sw") is None
        )

    await operator.wait("kvcache-sw kept and released", released)
    await operator.wait_status("aimservice", "sw", "Running")
    await asyncio.sleep(2)
    assert await _uid(operator, "aimkvcache", "kvcache-sw") == cache_uid
    # Now a user by name: the cache is held while the service uses it.
    cache = await operator.get("aimkvcache", "kvcache-sw")
    assert cache is not None
    assert (cache.get("status") or {}).get("users") == ["sw"]


async def test_a_terminating_cache_with_an_unparseable_spec_loses_its_finalizer(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    cp: ControlPlane = control_plane_factory()
    docs = [d for f in CRDS for d in yaml.safe_load_all(f.read_text()) if d]
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
               "items": [permissive_crd(d) for d in docs]}))  # fmt: skip
    ns = cp.create_namespace(prefix="legacy-")
    bad = json.loads(_cache("legacy", storage={"size": "banana"}))
    bad["metadata"]["finalizers"] = ["aim.silogen.ai/kvcache-protection"]
    cp.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(bad))
    cp.install_crds(CRDS)  # the real schema: the stored spec no longer parses
    cp.kubectl("delete", "aimkvcache", "legacy", "-n", ns, "--wait=false")
    async with start_operator(cp, ns) as op:

        async def gone() -> bool:
            return await op.get("aimkvcache", "legacy") is None

        await op.wait("the Terminating cache released and gone", gone, within=60)


async def test_tampered_cache_endpoint_never_reaches_lmcache(operator: Operator) -> None:
    ns = operator.namespace
    await operator.k("apply", "-n", ns, "-f", "-", input=_cache("ep"))
    await operator.wait_status("aimkvcache", "ep", "Ready", within=120)
    # Keep the cache controller from restoring the status, so only the service reads it.
    for controller in operator.mgr.controllers:
        if controller.name == "aimkvcache-controller":
            await controller.stop(0)
    patch = json.dumps({"status": {"endpoint": "redis://attacker.example:6379"}})
    await operator.k(
        "patch", "aimkvcache", "ep", "-n", ns, "--subresource=status", "--type=merge", "-p", patch
    )
    await operator.k("apply", "-n", ns, "-f", "-", input=_service("user", kvCache={"name": "ep"}))
    await operator.wait_status("aimservice", "user", "Running", within=120)
    cm = await operator.get("configmap", "user-lmcache")
    assert cm is not None
    assert "attacker" not in json.dumps(cm["data"])
    assert "redis://ep-svc:6379" in cm["data"]["lmcache_config.yaml"]
    svc = await operator.get("aimservice", "user")
    assert svc is not None
    assert "attacker" not in json.dumps(svc["status"])


async def test_status_replicas_are_observed_not_copied(operator: Operator) -> None:
    ns = operator.namespace
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "one-pod"},
        "spec": {"hard": {"pods": "1"}},
    }
    await operator.k("apply", "-n", ns, "-f", "-", input=json.dumps(quota))
    await operator.k("apply", "-n", ns, "-f", "-", input=_service("obs", replicas=2))

    async def observed() -> dict[str, Any] | None:
        s = await operator.get("aimservice", "obs")
        d = await operator.get("deployment", "obs")
        if not s or not d or (d.get("status") or {}).get("replicas") != 1:
            return None
        return s if (s.get("status") or {}).get("replicas") == 1 else None

    svc = await operator.wait("status.replicas 1 (the quota admits one pod of 2)", observed)
    assert svc["spec"]["replicas"] == 2
    # One pod serves and the quota refuses the other: Degraded, saying why.
    degraded = await operator.wait_status("aimservice", "obs", "Degraded")
    ready = next(c for c in degraded["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "FailedCreate"
    assert "exceeded quota: one-pod" in ready["message"]


async def test_create_only_apply_creates_or_refuses_a_taken_name(operator: Operator) -> None:
    """The server behaviour ``create_only`` relies on (pinned: it is what keeps the first
    apply from merging into someone else's object)."""
    ns = operator.namespace
    client = operator.mgr.client("aimkvcache-controller")
    want = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "fresh", "namespace": ns},
        "data": {"k": "v"},
    }
    created = await client.apply(create_only(want), force=True)
    assert created["metadata"]["resourceVersion"] != "1"
    with pytest.raises(Conflict):
        await client.apply(create_only(want), force=True)
    foreign = _foreign("ConfigMap", "taken")
    await operator.k("create", "-n", ns, "-f", "-", input=json.dumps(foreign))
    before = await operator.get("configmap", "taken")
    with pytest.raises(Conflict):
        await client.apply(
            create_only({**want, "metadata": {"name": "taken", "namespace": ns}}), force=True
        )
    after = await operator.get("configmap", "taken")
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["data"] == {"a": "b"}


async def test_growing_an_auto_cache_directly_is_not_fought(operator: Operator) -> None:
    ns = operator.namespace
    body = _service("direct", kvCache={"type": "redis", "storage": {"size": "1Gi"}})
    await operator.k("apply", "-n", ns, "-f", "-", input=body)
    await _wait_running_with_own_cache(operator, "direct")
    await operator.k(
        "patch", "aimkvcache", "kvcache-direct", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"storage": {"size": "3Gi"}}}),
    )  # fmt: skip
    # The service keeps reconciling (touch it) and must neither shrink nor fail the cache.
    await operator.k("annotate", "aimservice", "direct", "-n", ns, "touched=1")
    await asyncio.sleep(3)
    cache = await operator.get("aimkvcache", "kvcache-direct")
    assert cache is not None
    assert cache["spec"]["storage"]["size"] == "3Gi"
    svc = await operator.get("aimservice", "direct")
    assert svc is not None
    kv = next(c for c in svc["status"]["conditions"] if c["type"] == "KVCacheReady")
    assert kv["reason"] != "KVCacheUpdateRejected", kv
    assert svc["status"]["status"] != "Failed", svc["status"]
