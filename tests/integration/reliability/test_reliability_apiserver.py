"""SIGKILL the kube-apiserver in the middle of a 500-object converge, then start it again.

Injected: 500 AIMKVCaches applied at once; once the operator has created a third of the
StatefulSets, kube-apiserver is SIGKILLed, left down for a few seconds (the operator's writes,
watches and Events fail meanwhile) and started again on the same port.

Asserted: every cache converges (exactly one StatefulSet, Service and NetworkPolicy, each with
exactly one controller ownerReference to it; a status written for its current generation), no
cache is lost, no child is duplicated or orphaned, the operator's queues drain (no key due, no
worker busy, no key waiting for a backoff retry), and the manager task is still running.
Recorded: the recovery time from the restarted apiserver being ready to full convergence.

Envtest mode (no controller-manager): caches stay Progressing, which is fine here; what counts
is that children exist and a status was written for every generation.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from aimctl.client import GVK, RestClient
from aimctl.controller import Request
from aimctl.envtest.pytest_plugin import ControlPlaneFactory

from .reliability_kit import (
    CRDS,
    Audit,
    InProcessOperator,
    apply_all,
    audit,
    cache_manifest,
    eventually,
    report,
    run_operator,
    total,
)

STATEFULSET = GVK("apps", "v1", "StatefulSet")
OUTAGE = 4.0  # seconds the apiserver stays down (plus its own restart time)


def _progress(op: InProcessOperator) -> int:
    """StatefulSets the operator has seen (its cache): how far the converge has got."""
    return sum(len(i.store.list()) for i in op.mgr.informers.informers_for(STATEFULSET))


async def _kill_during_converge(
    factory: ControlPlaneFactory, test: str, n: int, kills: int
) -> None:
    # The harness's default Service range (/24) holds only ~250 ClusterIPs: too few here.
    cp = factory(apiserver_args={"service-cluster-ip-range": "10.0.0.0/16"})
    await asyncio.to_thread(cp.install_crds, CRDS)
    ns = await asyncio.to_thread(cp.create_namespace, None, prefix="rel-kill-")
    names = [f"cache-{i:04d}" for i in range(n)]
    keys = [Request(ns, name) for name in names]
    outages: list[float] = []
    at_kill: list[int] = []
    async with (
        await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest,
        run_operator(cp.kubeconfig, ns) as op,
    ):
        t0 = time.monotonic()
        await apply_all(rest, (cache_manifest(name, ns) for name in names))
        applied = time.monotonic() - t0
        errors_before = op.reconciles(result="error")
        restarted = 0.0
        for k in range(kills):
            # Kill while the converge is under way: at 1/3 for one kill, 1/4, 2/4, ... for more.
            target = n * (k + 1) // (kills + 2)

            async def reached(target: int = target) -> bool:
                return _progress(op) >= target

            await eventually(
                reached,
                within=600,
                interval=0.05,
                what=f"{target} StatefulSets before kill {k + 1}",
                alive=op.task,
            )
            at_kill.append(_progress(op))
            assert at_kill[-1] < n, "the converge finished before the apiserver was killed"
            killed = time.monotonic()
            cp.kill_apiserver()
            await asyncio.sleep(OUTAGE)  # the operator keeps reconciling (and failing) meanwhile
            # On the main thread, blocking the loop for the apiserver's start (the operator could
            # not reach it anyway): a child started from a worker thread would not get
            # PR_SET_PDEATHSIG and could outlive a killed test run.
            cp.start_apiserver()
            restarted = time.monotonic()
            outages.append(restarted - killed)
        errors_during = op.reconciles(result="error") - errors_before

        async def converged() -> Audit | None:
            op.assert_alive()
            if not op.drained() or op.retrying(keys):
                return None
            result = await audit(rest, ns)
            return result if result.complete(n) else None

        final = await eventually(
            converged,
            within=max(300.0, n * 0.6),
            interval=1.0,
            what=f"{n} caches converged",
            alive=op.task,
        )
        recovered = time.monotonic()
        op.assert_alive()
        samples = op.metrics()
        figures = {
            "objects": n,
            "apiserver_kills": kills,
            "progress_at_kill": at_kill,
            "outage_s": [round(o, 1) for o in outages],
            "objects_lost": n - final.converged,
            "duplicate_children": len(final.duplicates),
            "bad_owner_refs": len(final.bad_owner_refs),
            "orphans": len(final.orphans),
            "children": dict(final.children),
            "reconcile_errors_during_outage": int(errors_during),
            "watch_errors": int(total(samples, "aimctl_informer_watch_errors_total")),
            "relists": int(total(samples, "aimctl_informer_relists_total")),
            "operator_writes": op.writes(),
            "apply_s": round(applied, 1),
            "recovery_s": round(recovered - restarted, 1),
            "total_converge_s": round(recovered - t0, 1),
        }
    report(test, figures)
    assert final.caches == n and final.converged == n
    assert not final.duplicates and not final.bad_owner_refs and not final.orphans
    assert final.children == {"Secret": n, "StatefulSet": n, "Service": n, "NetworkPolicy": n}
    assert errors_during > 0, "the outage was not noticed: no reconcile failed"


async def test_apiserver_sigkill_during_500_object_converge(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    await _kill_during_converge(control_plane_factory, "apiserver_kill_500", n=500, kills=1)


@pytest.mark.slow
async def test_apiserver_sigkilled_three_times_during_2000_object_converge(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    await _kill_during_converge(control_plane_factory, "apiserver_kill_2000x3", n=2000, kills=3)
