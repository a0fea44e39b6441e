"""Runnables with leader election, on the real kube-apiserver: every runnable starts after the
caches sync; one that needs leader election starts only on the leader (with the controllers),
the others on standbys too; a failing one stops the manager with its error.

(The lifecycle without a lease, grace and cancellation, is in tests/unit/manager/.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from aimctl.client import GVK, ClusterConfig
from aimctl.controller import Request
from aimctl.manager import Manager

from .manager_kit import election, finish, leading, manager

CONFIGMAP = GVK("", "v1", "ConfigMap")


class Probe:
    """A runnable recording when it ran and whether the caches were synced by then."""

    def __init__(self, mgr: Manager, *, need_leader_election: bool = True) -> None:
        self.mgr = mgr
        self.need_leader_election = need_leader_election
        self.started = asyncio.Event()
        self.synced_at_start: bool | None = None
        self.leading_at_start: bool | None = None
        self.stopped = False

    async def start(self, stop: asyncio.Event) -> None:
        informers = self.mgr.informers.informers
        self.synced_at_start = bool(informers) and all(i.has_synced for i in informers)
        self.leading_at_start = leading(self.mgr)
        self.started.set()
        await stop.wait()
        self.stopped = True


async def nothing(_: Request) -> None:
    return None


def replica(config: ClusterConfig, namespace: str, identity: str) -> tuple[Manager, Probe, Probe]:
    mgr = manager(config, namespace, leader_election=election(namespace, identity))
    mgr.controller().named("runnables").for_(CONFIGMAP).complete(nothing)
    leader_only, everywhere = Probe(mgr), Probe(mgr, need_leader_election=False)
    mgr.add(leader_only)
    mgr.add(everywhere)
    return mgr, leader_only, everywhere


@contextlib.asynccontextmanager
async def running(mgr: Manager) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(mgr.run())
    try:
        yield task
    finally:
        mgr.stop()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 30)


async def test_leader_runnables_run_only_on_the_leader_others_on_every_replica(
    config: ClusterConfig, namespace: str
) -> None:
    a, a_leader, a_all = replica(config, namespace, "a")
    b, b_leader, b_all = replica(config, namespace, "b")
    async with running(a) as a_task:
        await asyncio.wait_for(asyncio.gather(a_leader.started.wait(), a_all.started.wait()), 30)
        assert a_leader.synced_at_start and a_leader.leading_at_start
        assert a_all.synced_at_start

        async with running(b) as b_task:
            await asyncio.wait_for(b_all.started.wait(), 30)
            assert b_all.synced_at_start and not b_all.leading_at_start  # a standby runs it
            await asyncio.sleep(3)  # several of b's acquire attempts
            assert not b_leader.started.is_set() and not leading(b)

            a.stop()  # releases the lease
            await finish(a_task)
            assert a_leader.stopped and a_all.stopped  # both saw stop and returned

            await asyncio.wait_for(b_leader.started.wait(), 20)
            assert b_leader.leading_at_start
            b.stop()
            await finish(b_task)
            assert b_leader.stopped and b_all.stopped


async def test_a_failing_leader_runnable_stops_the_manager_with_its_error(
    config: ClusterConfig, namespace: str
) -> None:
    mgr = manager(config, namespace, leader_election=election(namespace, "a"))
    mgr.controller().named("failing").for_(CONFIGMAP).complete(nothing)
    other = Probe(mgr, need_leader_election=False)
    mgr.add(other)

    class Broken(Exception):
        pass

    async def fails(stop: asyncio.Event) -> None:
        assert leading(mgr)
        raise Broken("the user task failed")

    mgr.add(fails)
    with pytest.raises(Broken, match="the user task failed"):
        await asyncio.wait_for(mgr.run(), 60)
    assert other.stopped
    assert mgr.elector is not None and not mgr.elector.is_leader  # released on the way out
