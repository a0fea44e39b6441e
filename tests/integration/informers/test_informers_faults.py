"""Informers under faults on private control planes: apiserver killed and restarted, etcd
compacted past the watch, and a watch that silently stops delivering bytes.

Each test proves convergence the same way: every change made while the informer could not see
it reaches the handlers (as an update, a delete, or a tombstone from a relist), and afterwards the
store equals a fresh list from the server, object for object.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from prometheus_client import CollectorRegistry

from aimctl._internal.backoff import BackoffPolicy
from aimctl.client import GVK, Object, RestClient, RESTMapper
from aimctl.envtest.pytest_plugin import ControlPlaneFactory
from aimctl.informers import (
    DeletedFinalStateUnknown,
    InformerFactory,
    ReflectorOptions,
    SharedInformer,
)
from aimctl.informers.testing import assert_store_matches_server, eventually

CONFIGMAP = GVK("", "v1", "ConfigMap")
NS = "default"
PATH = f"/api/v1/namespaces/{NS}/configmaps"


class Recorder:
    """Latest-known state per name as told by the handlers."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.data: dict[str, Any] = {}

    def on_add(self, obj: Object, is_initial_list: bool) -> None:
        self.log.append(("add", obj["metadata"]["name"]))
        self.data[obj["metadata"]["name"]] = obj.get("data")

    def on_update(self, old: Object, new: Object) -> None:
        self.log.append(("update", new["metadata"]["name"]))
        self.data[new["metadata"]["name"]] = new.get("data")

    def on_delete(self, obj: Object | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            name = obj.key.split("/")[-1]
            self.log.append(("tombstone", name))
        else:
            name = obj["metadata"]["name"]
            self.log.append(("delete", name))
        self.data.pop(name, None)


class StallingProxy:
    """A TCP proxy (TLS passes through) that can stop forwarding bytes without closing."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        for t in (self._pump(reader, up_writer), self._pump(up_reader, writer)):
            task = asyncio.create_task(t)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(
        name, {"kind": "v1/ConfigMap", "scope": f"namespace={NS}", **labels}
    )
    return value or 0.0


async def start_informer(
    rest: RestClient, registry: CollectorRegistry, **options: Any
) -> tuple[InformerFactory, SharedInformer, Recorder]:
    factory = InformerFactory(
        rest, RESTMapper(rest), registry=registry, options=ReflectorOptions(**options)
    )
    informer = factory.informer(CONFIGMAP, NS)
    rec = Recorder()
    informer.add_handler(rec)
    await factory.start()
    await factory.wait_for_sync(30)
    return factory, informer, rec


async def seed(rest: RestClient, n: int) -> None:
    for i in range(n):
        await rest.request("POST", PATH, body={"metadata": {"name": f"cm{i}"}, "data": {"v": "0"}})


async def change_while_away(rest: RestClient) -> None:
    """The changes the informer must learn about: updates, deletes, a create, a re-create."""
    for i in (0, 1):
        await rest.request(
            "PATCH",
            f"{PATH}/cm{i}",
            body={"data": {"v": "changed"}},
            content_type="application/merge-patch+json",
        )
    await rest.request("DELETE", f"{PATH}/cm2")
    await rest.request("DELETE", f"{PATH}/cm3")
    await rest.request("POST", PATH, body={"metadata": {"name": "cm3"}, "data": {"v": "again"}})
    await rest.request("POST", PATH, body={"metadata": {"name": "new"}, "data": {"v": "1"}})


def expected_data() -> dict[str, Any]:
    return {
        "cm0": {"v": "changed"},
        "cm1": {"v": "changed"},
        "cm3": {"v": "again"},
        "cm4": {"v": "0"},
        "new": {"v": "1"},
    }


async def test_informer_recovers_from_an_apiserver_kill_and_restart(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    # Honest limits: nothing can be written while the apiserver is down, so the changes are
    # made right after it is back and before the informer reconnects. The informer's first
    # retry is pinned at 20 s (no jitter) so the restart (a few seconds here) and the changes
    # fit before it; the test checks that no watch was re-established before the changes.
    cp = control_plane_factory()
    registry = CollectorRegistry()
    async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest:
        await seed(rest, 5)
        factory, informer, rec = await start_informer(
            rest, registry, backoff=BackoffPolicy(initial=20.0, cap=20.0, jitter=0.0)
        )
        watches_before = metric(registry, "aimctl_informer_watches_total")
        cp.kill_apiserver()
        await eventually(
            lambda: metric(registry, "aimctl_informer_watch_errors_total", reason="transport") >= 1
        )
        await asyncio.to_thread(cp.start_apiserver)
        async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as writer:
            await change_while_away(writer)
        reconnected_early = metric(registry, "aimctl_informer_watches_total") > watches_before
        await eventually(lambda: rec.data == expected_data(), within=90, what="handlers converge")
        await assert_store_matches_server(informer, rest, PATH)
        await factory.stop()
    assert not reconnected_early, "the informer reconnected before the changes were made"
    assert metric(registry, "aimctl_informer_watches_total") > watches_before
    assert ("delete", "cm2") in rec.log or ("tombstone", "cm2") in rec.log


async def test_etcd_compacted_past_the_watch_relists_and_loses_no_update(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    # Without the watch cache the watch is served by etcd, so compaction is visible as 410
    # (with the cache, a watch from a recent resourceVersion is served from its history).
    cp = control_plane_factory(apiserver_args={"watch-cache": "false"})
    registry = CollectorRegistry()
    async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as direct:
        await seed(direct, 5)
        proxy = StallingProxy(int(cp.url.rsplit(":", 1)[1]))
        await proxy.start()
        async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest:
            rest.config.host = f"https://127.0.0.1:{proxy.port}"
            factory, informer, rec = await start_informer(rest, registry, inactivity_timeout=3.0)
            assert informer.reflector is not None
            rv_before = informer.reflector.resource_version
            proxy.flowing.clear()  # the watch sees nothing from here on
            await change_while_away(direct)
            revision = cp.compact_etcd()
            assert rv_before is not None
            assert revision > int(rv_before)
            # Resume only once the stalled watch was abandoned: the next one starts from the
            # compacted resourceVersion and must be answered with 410.
            await eventually(
                lambda: (
                    metric(registry, "aimctl_informer_watch_errors_total", reason="stalled") >= 1
                ),
                within=20,
            )
            proxy.flowing.set()
            await eventually(lambda: rec.data == expected_data(), within=60, what="converge")
            await assert_store_matches_server(informer, rest, PATH)
            await factory.stop()
        await proxy.close()
    assert metric(registry, "aimctl_informer_relists_total") >= 1
    assert metric(registry, "aimctl_informer_watch_errors_total", reason="gone") >= 1
    # The relist reports what it found: updates for changed objects, tombstones for deleted.
    after = rec.log[rec.log.index(("add", "cm4")) + 1 :]
    assert ("update", "cm0") in after
    assert ("update", "cm1") in after
    assert ("tombstone", "cm2") in after


async def test_a_stalled_watch_is_caught_by_the_inactivity_deadline_and_reestablished(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    cp = control_plane_factory()
    registry = CollectorRegistry()
    async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as direct:
        await seed(direct, 5)
        proxy = StallingProxy(int(cp.url.rsplit(":", 1)[1]))
        await proxy.start()
        async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest:
            rest.config.host = f"https://127.0.0.1:{proxy.port}"
            factory, informer, rec = await start_informer(rest, registry, inactivity_timeout=2.0)
            stalls_before = metric(registry, "aimctl_informer_watch_errors_total", reason="stalled")
            proxy.flowing.clear()  # connection stays open, no byte passes: a silent stall
            await change_while_away(direct)
            await eventually(
                lambda: (
                    metric(registry, "aimctl_informer_watch_errors_total", reason="stalled")
                    > stalls_before
                ),
                within=20,
                what="inactivity deadline fires",
            )
            assert rec.data != expected_data()  # nothing got through during the stall
            proxy.flowing.set()
            await eventually(lambda: rec.data == expected_data(), within=60, what="converge")
            await assert_store_matches_server(informer, rest, PATH)
            await factory.stop()
        await proxy.close()
    assert proxy.connections >= 2  # the watch was re-established on a new connection


async def test_a_server_without_streaming_lists_is_synced_with_paginated_lists(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    cp = control_plane_factory(apiserver_args={"feature-gates": "WatchList=false"})
    registry = CollectorRegistry()
    async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest:
        await seed(rest, 3)
        factory, informer, rec = await start_informer(rest, registry)
        assert informer.reflector is not None
        assert informer.reflector.streaming_list is False
        await rest.request("POST", PATH, body={"metadata": {"name": "later"}})
        await eventually(lambda: "later" in rec.data)
        await assert_store_matches_server(informer, rest, PATH)
        await factory.stop()
    assert metric(registry, "aimctl_informer_lists_total") == 1
    assert metric(registry, "aimctl_informer_relists_total") == 0
