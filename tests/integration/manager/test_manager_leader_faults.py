"""Leader election under connection faults, against the real kube-apiserver behind a TCP proxy
that resets connections (``manager_kit.FaultyProxy``).

client-go treats any error of one attempt as a failed attempt: a leader keeps retrying until
its renew deadline, a candidate keeps trying for ever. Resets shorter than the renew deadline
must cost nothing; longer ones must stop the leader at once (also in the middle of a graceful
drain) and make ``run()`` raise ``LeaderElectionLost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from aimctl.client import GVK, RestClient, load_kubeconfig
from aimctl.controller import Request
from aimctl.envtest import ControlPlane
from aimctl.manager import LeaderElectionLost, Manager

from .manager_kit import (
    FaultyProxy,
    create_configmap,
    election,
    finish,
    leading,
    lease_spec,
    manager,
    wait_for,
)

CONFIGMAP = GVK("", "v1", "ConfigMap")


@pytest.fixture
async def proxy(control_plane: ControlPlane) -> AsyncIterator[FaultyProxy]:
    p = await FaultyProxy.to(control_plane)
    yield p
    await p.close()


@pytest.fixture
async def rest(control_plane: ControlPlane) -> AsyncIterator[RestClient]:
    async with await RestClient.from_kubeconfig(str(control_plane.kubeconfig)) as r:
        yield r


class Blocker:
    """A reconciler whose reconciles of ``block-*`` keys never finish (until cancelled)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.in_flight = asyncio.Event()
        self.cancelled = 0

    async def reconcile(self, req: Request) -> None:
        self.seen.append(req.name)
        if req.name.startswith("block-"):
            self.in_flight.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise


class LeaderTask:
    """A runnable (leader only by default) that records a cancellation."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def start(self, stop: asyncio.Event) -> None:
        self.started.set()
        try:
            await asyncio.sleep(3600)  # ignores stop: only a cancellation ends it
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@contextlib.asynccontextmanager
async def stopped_at_exit(mgr: Manager, task: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        mgr.stop()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 30)


async def test_leader_keeps_the_lease_through_resets_shorter_than_the_renew_deadline(
    control_plane: ControlPlane, namespace: str, proxy: FaultyProxy, rest: RestClient
) -> None:
    renew, retry = 10.0, 1.0
    mgr = manager(
        await proxy.config(control_plane),
        namespace,
        leader_election=election(namespace, "a", lease=15, renew=renew, retry=retry),
    )
    rec = Blocker()
    mgr.controller().named("keep").for_(CONFIGMAP).complete(rec)
    task = asyncio.create_task(mgr.run())
    async with stopped_at_exit(mgr, task):
        await wait_for(lambda: leading(mgr), what="a leads")
        before = await lease_spec(rest, namespace)

        proxy.resetting = True  # every renewal fails with a reset for ~4 retry periods
        await asyncio.sleep(4 * retry)
        assert proxy.resets > 0
        assert not task.done(), "the manager stopped on a reset shorter than the deadline"
        assert leading(mgr)
        proxy.resetting = False

        async def renewed() -> bool:
            spec = await lease_spec(rest, namespace)
            return bool(spec["renewTime"] != before["renewTime"])

        deadline = time.monotonic() + renew
        while not await renewed():
            assert time.monotonic() < deadline, "no renewal after the resets ended"
            await asyncio.sleep(0.1)
        after = await lease_spec(rest, namespace)
        assert after["holderIdentity"] == "a"
        assert after["leaseTransitions"] == before["leaseTransitions"]
        assert not task.done() and leading(mgr)

        # Still reconciling (its watch came back through the proxy).
        await create_configmap(rest, namespace, "after-resets")
        await wait_for(lambda: "after-resets" in rec.seen, what="reconciled after the resets")
    await finish(task)  # a clean stop: no LeaderElectionLost


async def test_leader_steps_down_when_resets_outlast_the_renew_deadline(
    control_plane: ControlPlane, namespace: str, proxy: FaultyProxy, rest: RestClient
) -> None:
    renew, retry = 4.0, 1.0
    mgr = manager(
        await proxy.config(control_plane),
        namespace,
        leader_election=election(namespace, "a", lease=6, renew=renew, retry=retry),
        graceful_shutdown_timeout=60,
    )
    rec, runnable = Blocker(), LeaderTask()
    mgr.controller().named("lose").for_(CONFIGMAP).complete(rec)
    mgr.add(runnable)
    task = asyncio.create_task(mgr.run())
    async with stopped_at_exit(mgr, task):
        await wait_for(lambda: leading(mgr), what="a leads")
        await asyncio.wait_for(runnable.started.wait(), 30)
        await create_configmap(rest, namespace, "block-1")
        await asyncio.wait_for(rec.in_flight.wait(), 30)

        t0 = time.monotonic()
        proxy.resetting = True
        with pytest.raises(LeaderElectionLost):
            await asyncio.wait_for(asyncio.shield(task), renew + 15)
        took = time.monotonic() - t0
        print(f"leadership lost {took:.1f}s after the resets began (renew deadline {renew}s)")
        # Held until the renew deadline (measured from the last renewal, at most one retry
        # period before the resets began), then stopped at once: no 60 s drain.
        assert renew - retry - 0.5 <= took < renew + 10
        assert rec.cancelled == 1, "the in-flight reconcile was not cancelled"
        assert runnable.cancelled, "the leader runnable was not cancelled"
        assert mgr.elector is not None and not mgr.elector.is_leader
    proxy.resetting = False
    spec = await lease_spec(rest, namespace)
    assert spec["holderIdentity"] == "a"  # not released: it could not be written


async def test_lease_lost_during_the_graceful_drain_stops_at_once(
    control_plane: ControlPlane, namespace: str, proxy: FaultyProxy, rest: RestClient
) -> None:
    renew = 4.0
    mgr = manager(
        await proxy.config(control_plane),
        namespace,
        leader_election=election(namespace, "a", lease=6, renew=renew, retry=1),
        graceful_shutdown_timeout=120,
    )
    rec = Blocker()
    mgr.controller().named("drain").for_(CONFIGMAP).complete(rec)
    task = asyncio.create_task(mgr.run())
    async with stopped_at_exit(mgr, task):
        await wait_for(lambda: leading(mgr), what="a leads")
        await create_configmap(rest, namespace, "block-1")
        await asyncio.wait_for(rec.in_flight.wait(), 30)

        mgr.stop()  # graceful: the blocked reconcile may take up to 120 s
        await asyncio.sleep(1.0)
        assert not task.done(), "the drain should still be waiting for the reconcile"
        t0 = time.monotonic()
        proxy.resetting = True
        with pytest.raises(LeaderElectionLost):
            await asyncio.wait_for(asyncio.shield(task), renew + 20)
        took = time.monotonic() - t0
        print(f"drain cut {took:.1f}s after the resets began (renew deadline {renew}s)")
        assert took < renew + 10
        assert rec.cancelled == 1


async def test_standby_keeps_trying_through_resets_and_takes_over(
    control_plane: ControlPlane, namespace: str, proxy: FaultyProxy, rest: RestClient
) -> None:
    leader = manager(
        await load_kubeconfig(str(control_plane.kubeconfig)),
        namespace,
        leader_election=election(namespace, "a"),
    )
    standby = manager(
        await proxy.config(control_plane),
        namespace,
        leader_election=election(namespace, "b"),
        graceful_shutdown_timeout=2,  # its runnable ignores stop: cancelled after 2 s
    )
    b_runnable = LeaderTask()
    standby.add(b_runnable)
    for m in (leader, standby):
        m.controller().named("standby").for_(CONFIGMAP).complete(Blocker())
    a_task = asyncio.create_task(leader.run())
    async with stopped_at_exit(leader, a_task):
        await wait_for(lambda: leading(leader), what="a leads")
        b_task = asyncio.create_task(standby.run())
        async with stopped_at_exit(standby, b_task):
            await wait_for(lambda: standby.elector is not None, what="b is a candidate")
            proxy.resetting = True  # b's acquire attempts fail with resets
            await asyncio.sleep(5)
            assert proxy.resets > 0
            assert not b_task.done(), "a reset escaped the standby's acquire"
            assert not leading(standby) and not b_runnable.started.is_set()
            proxy.resetting = False

            leader.stop()  # releases the lease: b takes over within a few retry periods
            await finish(a_task)
            await wait_for(lambda: leading(standby), within=20, what="b took over")
            await asyncio.wait_for(b_runnable.started.wait(), 10)
            assert (await lease_spec(rest, namespace))["holderIdentity"] == "b"
        await finish(b_task)
        assert b_runnable.cancelled
