"""The builder's wiring without an API server: owner keys in the owner kind's scope, every-owner
watches, channel sources. (Scope against a real apiserver: tests/integration/manager/
test_controller_owner_scope.py.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from aimctl.client import GVK, Resource
from aimctl.controller import Controller, ControllerBuilder, PredicateFuncs, Request
from aimctl.informers import EventHandler

OWNER = GVK("example.io", "v1", "Owner")
CHILD = GVK("", "v1", "ConfigMap")


class FakeResolver:
    def __init__(self, namespaced: bool, failures: int = 0) -> None:
        self.namespaced = namespaced
        self.failures = failures
        self.calls = 0

    async def resource_for(self, gvk: GVK) -> Resource:
        self.calls += 1
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("discovery down")
        return Resource(gvk, "owners", self.namespaced)


class FakeHost:
    def __init__(self, resolver: FakeResolver) -> None:
        self.registry = CollectorRegistry()
        self.mapper = resolver
        self.handlers: dict[GVK, list[EventHandler]] = {}
        self.controllers: list[Controller] = []

    def watch(self, gvk: GVK, handler: EventHandler) -> None:
        self.handlers.setdefault(gvk, []).append(handler)

    def add_controller(self, controller: Controller) -> None:
        self.controllers.append(controller)


def child(ns: str, *owners: tuple[str, bool]) -> dict[str, Any]:
    refs = [
        {"apiVersion": OWNER.api_version, "kind": "Owner", "name": n, "uid": n, "controller": c}
        for n, c in owners
    ]
    return {"metadata": {"name": "c", "namespace": ns, "ownerReferences": refs}}


async def until(cond, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Recorder:
    """A reconciler recording its requests."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    async def reconcile(self, req: Request) -> None:
        self.requests.append(req)


async def settle(c: Controller) -> None:
    """Let anything still queued run, then stop."""
    await asyncio.sleep(0.05)
    await c.stop()


async def test_owns_keys_a_cluster_scoped_owner_without_a_namespace() -> None:
    host = FakeHost(FakeResolver(namespaced=False))
    r = Recorder()
    c = ControllerBuilder(host).for_(OWNER).owns(CHILD).complete(r)
    (h,) = host.handlers[CHILD]
    c.start()
    h.on_add(child("ns1", ("root", True)), False)
    h.on_add(child("ns2", ("root", True)), False)  # same owner from another namespace
    await until(lambda: r.requests)
    await settle(c)
    assert r.requests == [Request("", "root")]  # one key, not one per child namespace


async def test_owns_keeps_the_child_namespace_for_a_namespaced_owner() -> None:
    host = FakeHost(FakeResolver(namespaced=True))
    r = Recorder()
    c = ControllerBuilder(host).for_(OWNER).owns(CHILD).complete(r)
    (h,) = host.handlers[CHILD]
    c.start()
    h.on_add(child("ns1", ("o", True)), False)
    await until(lambda: r.requests)
    h.on_add(child("ns2", ("o", True)), False)  # scope known now: straight through
    await until(lambda: len(r.requests) == 2)
    await settle(c)
    assert r.requests == [Request("ns1", "o"), Request("ns2", "o")]
    assert host.mapper.calls == 1


async def test_owner_events_wait_for_a_failing_discovery_and_are_not_lost() -> None:
    host = FakeHost(FakeResolver(namespaced=False, failures=2))
    r = Recorder()
    c = ControllerBuilder(host).for_(OWNER).owns(CHILD).complete(r)
    (h,) = host.handlers[CHILD]
    c.start()
    with capture_logs() as logs:
        h.on_add(child("ns1", ("root", True)), True)
        await until(lambda: r.requests)
    await settle(c)
    assert r.requests == [Request("", "root")]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "Cannot resolve the owner kind's scope; owner events are held"
    ] * 2


async def test_owns_every_owner_when_not_only_the_controller() -> None:
    for only_controller, expected in [(False, ["a", "b"]), (True, ["a"])]:
        host = FakeHost(FakeResolver(namespaced=True))
        r = Recorder()
        c = (
            ControllerBuilder(host)
            .for_(OWNER)
            .owns(CHILD, only_controller=only_controller)
            .complete(r)
        )
        (h,) = host.handlers[CHILD]
        c.start()
        h.on_add(child("ns", ("a", True), ("b", False)), False)
        await until(lambda r=r: bool(r.requests))
        await settle(c)
        assert sorted(req.name for req in r.requests) == expected, only_controller


async def test_watches_channel_feeds_objects_and_requests_while_the_controller_runs() -> None:
    host = FakeHost(FakeResolver(namespaced=True))
    channel: asyncio.Queue[Any] = asyncio.Queue()
    reconciled: list[Request] = []

    async def reconcile(req: Request) -> None:
        reconciled.append(req)

    def to_target(o: Any) -> list[Request]:
        if o["metadata"]["name"] == "bad":
            raise KeyError("no target")
        return [Request("ns", o["metadata"]["name"] + "-target")]

    c = (
        ControllerBuilder(host)
        .for_(OWNER)
        .watches_channel(channel, to_target)
        .with_event_filter(PredicateFuncs(lambda o: False, lambda a, b: False, lambda o: False))
        .complete(reconcile)
    )
    channel.put_nowait(Request("ns", "direct"))  # before start: waits in the channel
    c.start()
    channel.put_nowait({"metadata": {"name": "x", "namespace": "ns"}})
    with capture_logs() as logs:
        channel.put_nowait({"metadata": {"name": "bad", "namespace": "ns"}})
        await asyncio.wait_for(channel.join(), 10)
    await until(lambda: len(reconciled) == 2)
    assert reconciled == [Request("ns", "direct"), Request("ns", "x-target")]
    assert any(e["event"] == "Event mapper raised; the object is mapped again later" for e in logs)
    errors = host.registry.get_sample_value(
        "aimctl_controller_handler_errors_total", {"controller": "owner"}
    )
    assert errors == 1
    await c.stop()
    assert all(t.done() for t in asyncio.all_tasks() if t.get_name().startswith("owner-source"))
