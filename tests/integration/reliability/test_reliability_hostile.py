"""Malformed and hostile input: the reconcilers fed random objects.

(a) Schema-valid (hypothesis, ``hostile_strategies.batches``): random AIMKVCaches and AIMServices
    within the CRD schema are created on a real API server in batches, each batch reconciled by
    the in-process operator. Every object gets a status for its generation with a Ready
    condition; a cache that is not Failed has exactly one StatefulSet, Service and NetworkPolicy
    controlled by it; a converged object, reconciled again, costs no write (no drift loop); the
    operator never stops. Objects the API accepts but Kubernetes refuses to run (an image with a
    leading space, an env name StatefulSets reject, a negative request ...) must be reported as
    Failed with a reason; the figures count them.

(b) Invalid objects stored before a schema change: the AIM CRDs are first installed in a
    permissive version (``spec`` and ``status`` preserve unknown fields, no validation, no status
    subresource), objects with garbage are stored (fixed nasty cases plus hypothesis-drawn JSON),
    then the real CRDs are installed: the stored objects keep their content. The operator
    starts; it must not crash, must keep serving valid objects of the same namespace (a canary
    cache and service converge), must report every invalid object (Ready=False/InvalidSpec, or
    an InvalidSpec Warning Event when the status cannot be written), must not create children
    for it, and must not retry it hot (terminal errors are not retried; other errors back off
    exponentially: a key's retries stay within log2(elapsed / 5 ms) + 2).

The last tests pin bugs this suite found (a non-object spec blocking a namespace, garbage status,
model/CEL drift, invalid services without a condition, control characters in apply bodies,
child name collisions, an empty env value costing writes, characters outside the Basic
Multilingual Plane in apply bodies); each now passes.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from pydantic import ValidationError

from aimctl.api.v1alpha1 import AIMKVCache, AIMService
from aimctl.client import RestClient
from aimctl.controller import Request
from aimctl.envtest import ApiError, ControlPlane, permissive_crd
from aimctl.envtest.pytest_plugin import ControlPlaneFactory, private_control_plane

from .hostile_strategies import Batch, batches, garbage
from .reliability_kit import (
    CRDS,
    GROUP_VERSION,
    KVCACHE_CONTROLLER,
    SERVICE_CONTROLLER,
    SMALL_RESOURCES,
    InProcessOperator,
    ThreadedOperator,
    aimservices_path,
    eventually,
    kvcaches_path,
    log2_bound,
    report,
    run_operator,
    total,
)

T = TypeVar("T")
WIDE_SERVICES = {"service-cluster-ip-range": "10.0.0.0/16"}
EXAMPLES = 10
EXAMPLES_SLOW = 80


# -- helpers (synchronous: the schema-valid test drives hypothesis from the main thread) --------


def wait_for(
    check: Callable[[], T | None], *, within: float, what: str, alive: Callable[[], bool]
) -> T:
    deadline = time.monotonic() + within
    last: T | None = None
    while True:
        assert alive(), f"the operator stopped while waiting for {what}"
        try:
            last = check()
        except ApiError as err:
            if err.status < 500 and err.status != 404:
                raise
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}; last {last}")
        time.sleep(0.2)


def path_for(kind: str, ns: str, name: str | None = None) -> str:
    return kvcaches_path(ns, name) if kind == "AIMKVCache" else aimservices_path(ns, name)


def status_written(obj: dict[str, Any]) -> bool:
    status = obj.get("status")
    if not isinstance(status, dict):
        return False
    ready = next(
        (c for c in status.get("conditions") or [] if isinstance(c, dict) and c["type"] == "Ready"),
        None,
    )
    return (
        status.get("observedGeneration") == obj["metadata"]["generation"]
        and ready is not None
        and bool(ready.get("reason"))
    )


def ready_reason(obj: dict[str, Any]) -> str | None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return None
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return str(c.get("reason"))
    return None


def ready_message(obj: dict[str, Any]) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return str(c.get("message"))
    return ""


def condition_messages(obj: dict[str, Any]) -> str:
    """Every condition's message (a service's cache problem is on KVCacheReady, not Ready)."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return "; ".join(str(c.get("message")) for c in conditions if isinstance(c, dict))


_REFUSAL = re.compile(
    r"((?:metadata|spec)[\w.\[\]-]*): "
    r"(Invalid value|Forbidden|Required value|Unsupported value|Duplicate value|Too long)"
)
_INDEX = re.compile(r"\[[^\]]*\]")
_WRITE = re.compile(r"\((?:PATCH|POST|PUT) /[^()]*/([a-z]+)/[^/()]+\)\s*$")


def refused_fields(error: str) -> set[str]:
    """``resource field: problem`` for each field the API server refused (indices dropped)."""
    write = _WRITE.search(error)
    resource = write.group(1) if write else "?"
    return {
        f"{resource} {_INDEX.sub('', m.group(1))}: {m.group(2)}" for m in _REFUSAL.finditer(error)
    }


def events_about(client: Any, ns: str, name: str) -> list[dict[str, Any]]:
    items = client.request("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")["items"]
    return [e for e in items if (e.get("regarding") or {}).get("name") == name]


def reported_invalid(client: Any, ns: str, kind: str, name: str) -> str | None:
    """How the operator reported an invalid object: ``condition`` (Ready=False InvalidSpec),
    ``event`` (an InvalidSpec Warning Event), or None (not reported)."""
    obj = client.request("GET", path_for(kind, ns, name))
    if ready_reason(obj) == "InvalidSpec":
        return "condition"
    if any(
        e["reason"] == "InvalidSpec" and e["type"] == "Warning"
        for e in events_about(client, ns, name)
    ):
        return "event"
    return None


def children_of(client: Any, ns: str, cache: str) -> dict[str, int]:
    """How many StatefulSets, Services and NetworkPolicies the cache controls."""
    out: dict[str, int] = {}
    for kind, path in (
        ("StatefulSet", f"/apis/apps/v1/namespaces/{ns}/statefulsets"),
        ("Service", f"/api/v1/namespaces/{ns}/services"),
        ("NetworkPolicy", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"),
    ):
        items = client.request(
            "GET", path, params={"labelSelector": f"app.kubernetes.io/instance={cache}"}
        )["items"]
        mine = [
            i
            for i in items
            if [r["name"] for r in i["metadata"].get("ownerReferences") or [] if r["controller"]]
            == [cache]
        ]
        out[kind] = len(mine)
    return out


def model_valid(kind: str, obj: dict[str, Any]) -> bool:
    try:
        (AIMKVCache if kind == "AIMKVCache" else AIMService).model_validate(obj)
    except ValidationError:
        return False
    return True


# -- (a) schema-valid random objects -------------------------------------------------------------


@dataclass
class FuzzStats:
    objects: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    unusable: list[str] = field(default_factory=list)
    encoding: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # Failed for another reason
    refusals: Counter[str] = field(default_factory=Counter)
    rereconciled: int = 0
    drift_loops: list[str] = field(default_factory=list)
    batches: int = 0


def _settle(t: ThreadedOperator) -> None:
    """Until the operator is idle: nothing queued or running, and no write for a second."""

    def idle() -> bool:
        before = t.call(lambda op: op.writes())
        time.sleep(1.0)
        return t.call(lambda op: op.drained() and op.writes() == before)

    wait_for(idle, within=60, what="the operator idle", alive=t.alive)


def _force_reconcile(t: ThreadedOperator, keys: list[tuple[str, Request]]) -> int:
    """Re-reconcile converged objects; returns the writes that cost."""
    _settle(t)

    def add(op: InProcessOperator) -> int:
        for controller, req in keys:
            op.enqueue(controller, req)
        return op.writes()

    before = t.call(add)
    wait_for(lambda: t.call(lambda op: op.drained()), within=60, what="drained", alive=t.alive)
    return t.call(lambda op: op.writes()) - before


def test_schema_valid_random_objects_are_reconciled_or_reported(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    _fuzz(control_plane_factory, "hostile_schema_valid", EXAMPLES)


@pytest.mark.slow
def test_schema_valid_random_objects_many_batches(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    _fuzz(control_plane_factory, "hostile_schema_valid_long", EXAMPLES_SLOW)


def _fuzz(control_plane_factory: ControlPlaneFactory, test: str, examples: int) -> None:
    cp = control_plane_factory(apiserver_args=WIDE_SERVICES)
    cp.install_crds(CRDS)
    ns = cp.create_namespace(prefix="rel-fuzz-")
    client = cp.client()
    stats = FuzzStats()
    seq = itertools.count()
    with ThreadedOperator(cp.kubeconfig, ns) as t:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            # No shrinking: a failing batch is small and printed whole, and shrinking re-runs
            # slow cluster round trips for minutes.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(batch=batches())
        def check(batch: Batch) -> None:
            objects = batch.objects(f"f{next(seq)}")
            stats.batches += 1
            for obj in objects:
                kind = obj["kind"]
                stats.objects[kind] += 1
                try:
                    client.request("POST", path_for(kind, ns), obj)
                except ApiError as err:
                    raise AssertionError(
                        f"the API refused a {kind} the strategies meant to be schema-valid: "
                        f"{err}\n{obj}"
                    ) from err
            created = [(o["kind"], o["metadata"]["name"]) for o in objects]
            live: dict[str, dict[str, Any]] = {}

            def all_reconciled() -> bool:
                for kind, name in created:
                    live[name] = client.request("GET", path_for(kind, ns, name))
                return all(status_written(live[name]) for _, name in created)

            wait_for(all_reconciled, within=60, what=f"status of {created}", alive=t.alive)
            converged: list[tuple[str, Request]] = []
            failed: list[tuple[str, str]] = []
            for kind, name in created:
                obj = live[name]
                state = obj["status"]["status"]
                stats.outcomes[f"{kind} {state}/{ready_reason(obj)}"] += 1
                if state == "Failed":
                    failed.append((kind, name))
                    messages = condition_messages(obj)
                    if "error decoding YAML" in messages:
                        # The server could not even decode the operator's apply body.
                        stats.encoding.append(f"{kind} {name}: {messages[:200]}")
                    elif ready_reason(obj) == "ApplyFailed":
                        error = ready_message(obj)
                        stats.unusable.append(f"{kind} {name}: {error[:160]}")
                        stats.refusals.update(refused_fields(error))
                    else:
                        stats.other.append(f"{kind} {name} {ready_reason(obj)}: {messages[:300]}")
                    continue
                if kind == "AIMKVCache":
                    assert children_of(client, ns, name) == {
                        "StatefulSet": 1,
                        "Service": 1,
                        "NetworkPolicy": 1,
                    }, f"{name}: children"
                    converged.append((KVCACHE_CONTROLLER, Request(ns, name)))
                else:
                    converged.append((SERVICE_CONTROLLER, Request(ns, name)))
            # Failed objects retry with backoff; take them out before measuring idempotence,
            # with the caches failed services created (nothing garbage-collects in envtest).
            failed += [("AIMKVCache", f"kvcache-{n}") for k, n in failed if k == "AIMService"]

            def gone() -> bool:
                names = {
                    o["metadata"]["name"]
                    for kind in ("AIMKVCache", "AIMService")
                    for o in client.request("GET", path_for(kind, ns))["items"]
                }
                left = [(k, n) for k, n in failed if n in names]
                # Delete again what is left: a service reconcile racing its own deletion can
                # re-create its cache (in a real cluster the garbage collector removes it).
                for kind, name in left:
                    try:
                        client.request("DELETE", path_for(kind, ns, name))
                    except ApiError as err:
                        if err.status != 404:
                            raise
                return not left

            wait_for(gone, within=60, what="failed objects deleted", alive=t.alive)
            writes = _force_reconcile(t, converged)
            stats.rereconciled += len(converged)
            if writes:
                stats.drift_loops.append(f"{writes} writes re-reconciling {created}")
            assert writes == 0, f"re-reconciling converged objects wrote {writes} times"
            assert t.alive()

        check()
        samples = t.call(lambda op: op.metrics())
    figures = {
        "batches": stats.batches,
        "objects": dict(stats.objects),
        "outcomes": dict(stats.outcomes),
        "schema_valid_but_refused_by_kubernetes": len(stats.unusable),
        "refused_fields": dict(stats.refusals),
        "converged_objects_re_reconciled": stats.rereconciled,
        "writes_re_reconciling_them": 0,
        "refused_because_of_the_operators_yaml_encoding": len(stats.encoding),
        "yaml_encoding_examples": stats.encoding[:2],
        "failed_otherwise": stats.other,
        "reconcile_errors": int(
            total(samples, "controller_runtime_reconcile_total", result="error")
        ),
        "handler_errors": int(total(samples, "aimctl_informer_handler_errors_total")),
        "operator_crashed": False,
    }
    report(test, figures)
    assert total(samples, "aimctl_informer_handler_errors_total") == 0


# -- (b) invalid objects stored before a schema change --------------------------------------------


def _crd_documents() -> list[dict[str, Any]]:
    return [d for f in CRDS for d in yaml.safe_load_all(Path(f).read_text()) if d]


def _obj(kind: str, name: str, spec: Any, status: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": GROUP_VERSION,
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


# Hand-written nasty cases (each an object-shaped spec; shapes that break more than their own
# object have their own xfail tests below).
NASTY_CACHES: dict[str, Any] = {
    "size-banana": {"storage": {"size": "banana"}},
    "size-negative": {"storage": {"size": "-1Gi"}},
    "size-zero": {"storage": {"size": 0}},
    "modes-string": {"storage": {"accessModes": "ReadWriteOnce"}},
    "modes-unknown": {"storage": {"accessModes": ["ReadWriteSometimes"]}},
    "env-map": {"env": {"REDIS_ARGS": "--maxmemory 1gb"}},
    "env-no-name": {"env": [{"value": "x"}]},
    "env-both": {"env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {}}}]},
    "type-memcached": {"kvCacheType": "memcached"},
    "resources-string": {"resources": "lots"},
    "resources-bad-quantity": {"resources": {"limits": {"memory": "a lot"}}},
    "image-number": {"image": 7},
    "image-empty": {"image": ""},
    "spec-string": "banana",
    "spec-list": [1, 2, 3],
    "spec-number": 42,
}
NASTY_SERVICES: dict[str, Any] = {
    "no-model": {"replicas": 1},
    "model-string": {"model": "llama"},
    "replicas-string": {"model": {"image": "m"}, "replicas": "three"},
    "replicas-negative": {"model": {"image": "m"}, "replicas": -1},
    "port-huge": {"model": {"image": "m"}, "port": 70000},
    "env-map": {"model": {"image": "m"}, "env": {"A": "b"}},
    "kvcache-string": {"model": {"image": "m"}, "kvCache": "redis"},
    "kvcache-name-map": {"model": {"image": "m"}, "kvCache": {"name": {"a": 1}}},
    "kvcache-type-bad": {"model": {"image": "m"}, "kvCache": {"type": "memcached"}},
}


@dataclass
class Legacy:
    """A control plane whose AIM objects were stored under a permissive CRD, which was then
    replaced by the real one. ``namespaces[scenario]`` holds each scenario's objects."""

    cp: ControlPlane
    namespaces: dict[str, str]
    objects: dict[str, list[tuple[str, str, bool]]]  # scenario -> (kind, name, model-valid)


def _classify(
    cp: ControlPlane, ns: str, objects: list[dict[str, Any]]
) -> list[tuple[str, str, bool]]:
    """Each stored object as the operator will read it (defaults and pruning of the real CRD
    applied): does the operator's model accept it?"""
    client = cp.client()
    out = []
    for obj in objects:
        stored = client.request("GET", path_for(obj["kind"], ns, obj["metadata"]["name"]))
        out.append((obj["kind"], obj["metadata"]["name"], model_valid(obj["kind"], stored)))
    return out


def _garbage_objects() -> list[dict[str, Any]]:
    """Hypothesis-drawn garbage: object-shaped for services (a non-object AIMService spec has
    its own test), anything at all for caches."""
    drawn: list[dict[str, Any]] = []
    counter = itertools.count()

    @settings(
        max_examples=24,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        cache=garbage(),
        service=st.dictionaries(st.sampled_from(["model", "kvCache", "env", "port"]), garbage()),
    )
    def draw(cache: Any, service: dict[str, Any]) -> None:
        i = next(counter)
        drawn.append(_obj("AIMKVCache", f"g{i}-cache", cache))
        drawn.append(_obj("AIMService", f"g{i}-svc", service))

    draw()
    return drawn


@pytest.fixture(scope="module")
def legacy() -> Iterator[Legacy]:
    with private_control_plane(apiserver_args=WIDE_SERVICES) as cp:
        docs = _crd_documents()
        cp.install_crds([permissive_crd(d) for d in docs])
        scenarios: dict[str, list[dict[str, Any]]] = {
            "nasty": [_obj("AIMKVCache", n, s) for n, s in NASTY_CACHES.items()]
            + [_obj("AIMService", n, s) for n, s in NASTY_SERVICES.items()]
            + _garbage_objects(),
            "spec-not-object": [_obj("AIMService", "svc-spec-string", "banana")],
            "garbage-status": [
                _obj("AIMKVCache", "status-string", {}, status="garbage"),
                _obj("AIMKVCache", "conditions-string", {}, status={"conditions": "garbage"}),
            ],
            "type-and-name": [
                _obj("AIMKVCache", "shared", {"resources": SMALL_RESOURCES}),
                _obj(
                    "AIMService",
                    "both",
                    {"model": {"image": "m"}, "kvCache": {"type": "redis", "name": "shared"}},
                ),
            ],
            "invalid-service": [_obj("AIMService", "invalid", {"model": "llama"})],
        }
        namespaces: dict[str, str] = {}
        client = cp.client()
        for scenario, objs in scenarios.items():
            ns = namespaces[scenario] = cp.create_namespace(prefix=f"rel-{scenario}-")
            for obj in objs:
                client.request("POST", path_for(obj["kind"], ns), obj)
        cp.install_crds(docs)  # the schema change: stored objects keep their content
        objects = {s: _classify(cp, namespaces[s], objs) for s, objs in scenarios.items()}
        yield Legacy(cp, namespaces, objects)


async def _canary(rest: RestClient, op: InProcessOperator, *, within: float = 60) -> None:
    """A valid cache and a service using it, created now, must converge despite the rest."""
    ns = op.namespace
    await rest.request(
        "POST",
        kvcaches_path(ns),
        body=_obj("AIMKVCache", "canary", {"resources": SMALL_RESOURCES}),
    )
    await rest.request(
        "POST",
        aimservices_path(ns),
        body=_obj(
            "AIMService", "canary-app", {"model": {"image": "m"}, "kvCache": {"name": "canary"}}
        ),
    )

    async def converged() -> bool:
        cache = await rest.request("GET", kvcaches_path(ns, "canary"))
        svc = await rest.request("GET", aimservices_path(ns, "canary-app"))
        sts = await rest.request("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets")
        return (
            status_written(cache)
            and status_written(svc)
            and any(s["metadata"]["name"] == "canary-statefulset" for s in sts["items"])
        )

    await eventually(converged, within=within, what="the canary converged", alive=op.task)


async def test_invalid_objects_stored_before_a_schema_change_are_reported_not_retried_hot(
    legacy: Legacy,
) -> None:
    cp, ns = legacy.cp, legacy.namespaces["nasty"]
    stored = legacy.objects["nasty"]
    invalid = [(k, n) for k, n, valid in stored if not valid]
    client = cp.client()
    async with (
        await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest,
        run_operator(cp.kubeconfig, ns) as op,
    ):
        started = time.monotonic()
        await _canary(rest, op)

        def how_reported() -> list[str | None]:
            return [reported_invalid(client, ns, k, n) for k, n in invalid]

        async def all_reported() -> bool:
            return all(await asyncio.to_thread(how_reported))

        await eventually(all_reported, within=120, what="every invalid object reported")
        how = Counter(
            f"{k}: {h}"
            for (k, _), h in zip(invalid, await asyncio.to_thread(how_reported), strict=True)
        )

        def valid_outcomes() -> Counter[str]:
            out: Counter[str] = Counter()
            for k, n, valid in stored:
                if valid:
                    obj = client.request("GET", path_for(k, ns, n))
                    out[f"{k} {(obj.get('status') or {}).get('status')}/{ready_reason(obj)}"] += 1
            return out

        accepted = await asyncio.to_thread(valid_outcomes)
        # The quiet window: no new events, so terminal errors must not recur and retried keys
        # must be backing off.
        errors0 = op.reconciles(result="error") + op.reconciles(SERVICE_CONTROLLER, "error")
        await asyncio.sleep(10)
        errors_window = (
            op.reconciles(result="error") + op.reconciles(SERVICE_CONTROLLER, "error") - errors0
        )
        elapsed = time.monotonic() - started
        keys = [Request(ns, n) for _, n, _ in stored]
        requeues = {
            f"{c.name}/{k.name}": c.queue.num_requeues(k)
            for c in op.mgr.controllers
            for k in keys
            if c.queue.num_requeues(k)
        }
        children = {
            n: children_of(client, ns, n)["StatefulSet"] for k, n in invalid if k == "AIMKVCache"
        }
        samples = op.metrics()
        op.assert_alive()
    figures = {
        "objects_stored": len(stored),
        "invalid": len(invalid),
        "reported": dict(how),
        "accepted_by_the_model": dict(accepted),
        "terminal_errors": int(
            total(samples, "controller_runtime_terminal_reconcile_errors_total")
        ),
        "errors_total": int(total(samples, "controller_runtime_reconcile_total", result="error")),
        "errors_in_quiet_10s": int(errors_window),
        "keys_in_backoff": requeues,
        "max_retries_allowed": round(log2_bound(elapsed) + 1, 1),
        "children_of_invalid_caches": sum(children.values()),
        "handler_errors": int(total(samples, "aimctl_informer_handler_errors_total")),
        "operator_crashed": False,
    }
    report("hostile_stored_invalid", figures)
    assert not any(children.values()), f"children created for invalid caches: {children}"
    for key, n in requeues.items():
        assert n <= log2_bound(elapsed) + 1, f"{key} retried {n} times in {elapsed:.0f}s"
    # Exponential backoff allows a key at most ~log2(1 + 10 s / elapsed) + 1 retries in the window.
    assert errors_window <= 3 * len(requeues) + 1, "errors keep recurring without backoff"


# -- bugs this suite found, now fixed -----------------------------------------------------------


async def test_an_aimservice_with_a_non_object_spec_does_not_block_its_namespace(
    legacy: Legacy,
) -> None:
    cp, ns = legacy.cp, legacy.namespaces["spec-not-object"]
    async with (
        await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest,
        run_operator(cp.kubeconfig, ns) as op,
    ):
        await _canary(rest, op, within=10)
        how = await asyncio.to_thread(
            reported_invalid, cp.client(), ns, "AIMService", "svc-spec-string"
        )
        assert how is not None
        assert total(op.metrics(), "aimctl_informer_handler_errors_total") == 0


async def test_a_garbage_status_is_reported_and_replaced(legacy: Legacy) -> None:
    cp, ns = legacy.cp, legacy.namespaces["garbage-status"]
    client = cp.client()
    async with run_operator(cp.kubeconfig, ns) as op:

        async def reported() -> bool:
            for name in ("status-string", "conditions-string"):
                obj = await asyncio.to_thread(client.request, "GET", kvcaches_path(ns, name))
                warned = [
                    e
                    for e in await asyncio.to_thread(events_about, client, ns, name)
                    if e["type"] == "Warning"
                ]
                if not (status_written(obj) or warned):
                    return False
            return True

        await eventually(reported, within=10, what="garbage statuses reported", alive=op.task)


async def test_an_aimservice_with_both_kvcache_type_and_name_is_reported(legacy: Legacy) -> None:
    cp, ns = legacy.cp, legacy.namespaces["type-and-name"]
    client = cp.client()
    async with run_operator(cp.kubeconfig, ns) as op:

        async def reported() -> str | None:
            return await asyncio.to_thread(reported_invalid, client, ns, "AIMService", "both")

        await eventually(reported, within=10, what="InvalidSpec reported", alive=op.task)


async def test_an_invalid_aimservice_gets_a_ready_false_invalidspec_condition(
    legacy: Legacy,
) -> None:
    cp, ns = legacy.cp, legacy.namespaces["invalid-service"]
    client = cp.client()
    async with run_operator(cp.kubeconfig, ns) as op:

        async def condition() -> bool:
            obj = await asyncio.to_thread(client.request, "GET", aimservices_path(ns, "invalid"))
            return ready_reason(obj) == "InvalidSpec"

        await eventually(condition, within=10, what="Ready=False/InvalidSpec", alive=op.task)


async def test_control_characters_in_user_text_do_not_break_apply_or_status(
    legacy: Legacy,
) -> None:
    cp = legacy.cp
    ns = await asyncio.to_thread(cp.create_namespace, None, prefix="rel-c1-")
    client = cp.client()
    specs: dict[str, dict[str, Any]] = {
        "del-env": {"env": [{"name": "GREETING", "value": "caf\u00e9\u007f"}]},
        # C1 controls (the YAML decoder refuses them raw; U+0085 is a YAML line break).
        "c1-env": {"env": [{"name": "C1", "value": "\u0080\u0085\u0096\u009f"}]},
        "noncharacter-env": {"env": [{"name": "NONCHAR", "value": "\ufffe\uffff"}]},
        "c0-env": {"env": [{"name": "C0", "value": "\u0000\u0007\t\u001b"}]},
    }
    for name, spec in specs.items():
        body = _obj("AIMKVCache", name, {"resources": SMALL_RESOURCES, **spec})
        await asyncio.to_thread(client.request, "POST", kvcaches_path(ns), body)
    # A storage class name with a control character is not a valid class name at all: the CRD
    # refuses it at admission instead of the StatefulSet apply failing later.
    bad = _obj("AIMKVCache", "c1-class", {"storage": {"storageClassName": "fast\u0096"}})
    with pytest.raises(ApiError) as refused:
        await asyncio.to_thread(client.request, "POST", kvcaches_path(ns), bad)
    assert "storageClassName" in str(refused.value)
    async with run_operator(cp.kubeconfig, ns) as op:

        async def reconciled() -> list[dict[str, Any]] | None:
            objs = [
                await asyncio.to_thread(client.request, "GET", kvcaches_path(ns, name))
                for name in specs
            ]
            return objs if all(status_written(o) for o in objs) else None

        objs = await eventually(reconciled, within=15, what="statuses written", alive=op.task)
        assert [
            o["status"].get("lastError") for o in objs if ready_reason(o) == "ApplyFailed"
        ] == []


async def test_user_text_outside_the_basic_multilingual_plane_does_not_break_apply(
    legacy: Legacy,
) -> None:
    cp = legacy.cp
    ns = await asyncio.to_thread(cp.create_namespace, None, prefix="rel-astral-")
    client = cp.client()
    env = [{"name": "GREETING", "value": "hello \U0001f600"}]
    await asyncio.to_thread(
        client.request,
        "POST",
        kvcaches_path(ns),
        _obj("AIMKVCache", "emoji", {"resources": SMALL_RESOURCES, "env": env}),
    )
    await asyncio.to_thread(
        client.request,
        "POST",
        aimservices_path(ns),
        _obj("AIMService", "emoji-app", {"model": {"image": "m"}, "env": env}),
    )
    async with run_operator(cp.kubeconfig, ns) as op:

        async def reconciled() -> list[dict[str, Any]] | None:
            objs = [
                await asyncio.to_thread(client.request, "GET", kvcaches_path(ns, "emoji")),
                await asyncio.to_thread(client.request, "GET", aimservices_path(ns, "emoji-app")),
            ]
            return objs if all(status_written(o) for o in objs) else None

        objs = await eventually(reconciled, within=15, what="statuses written", alive=op.task)
        assert [condition_messages(o) for o in objs if o["status"]["status"] == "Failed"] == []


async def test_a_service_named_after_its_caches_service_does_not_collide(legacy: Legacy) -> None:
    cp = legacy.cp
    ns = await asyncio.to_thread(cp.create_namespace, None, prefix="rel-names-")
    client = cp.client()
    await asyncio.to_thread(
        client.request,
        "POST",
        kvcaches_path(ns),
        _obj("AIMKVCache", "llama", {"resources": SMALL_RESOURCES}),
    )
    await asyncio.to_thread(
        client.request,
        "POST",
        aimservices_path(ns),
        _obj("AIMService", "llama-svc", {"model": {"image": "m"}, "kvCache": {"name": "llama"}}),
    )
    async with run_operator(cp.kubeconfig, ns) as op:

        async def reconciled() -> list[dict[str, Any]] | None:
            objs = [
                await asyncio.to_thread(client.request, "GET", kvcaches_path(ns, "llama")),
                await asyncio.to_thread(client.request, "GET", aimservices_path(ns, "llama-svc")),
            ]
            return objs if all(status_written(o) for o in objs) else None

        objs = await eventually(reconciled, within=30, what="both reconciled", alive=op.task)
        await asyncio.sleep(2)  # both controllers have had their go at the Service
        objs = await reconciled() or objs
        # Either name the Services apart (both work) or report the conflict by name: not an
        # opaque ApplyFailed on whichever object lost the race.
        assert [ready_reason(o) for o in objs if ready_reason(o) == "ApplyFailed"] == []


async def test_an_empty_env_value_costs_no_write_when_in_sync(legacy: Legacy) -> None:
    cp = legacy.cp
    ns = await asyncio.to_thread(cp.create_namespace, None, prefix="rel-empty-")
    client = cp.client()
    spec = {"resources": SMALL_RESOURCES, "env": [{"name": "EMPTY", "value": ""}]}
    await asyncio.to_thread(
        client.request, "POST", kvcaches_path(ns), _obj("AIMKVCache", "empty", spec)
    )
    async with run_operator(cp.kubeconfig, ns) as op:

        async def settled() -> bool:
            obj = await asyncio.to_thread(client.request, "GET", kvcaches_path(ns, "empty"))
            writes = op.writes()
            await asyncio.sleep(1.0)
            return status_written(obj) and op.drained() and op.writes() == writes

        await eventually(settled, within=30, what="converged and idle", alive=op.task)
        before = op.writes()
        op.enqueue(KVCACHE_CONTROLLER, Request(ns, "empty"))

        async def drained() -> bool:
            await asyncio.sleep(0.5)
            return op.drained()

        await eventually(drained, within=10, what="re-reconciled", alive=op.task)
        assert op.writes() - before == 0
