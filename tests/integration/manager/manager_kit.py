"""Helpers for the manager's integration tests: a TCP proxy in front of the real kube-apiserver
that resets or stalls connections (fault injection at the transport), lease reads, waits."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from aimctl.client import ClusterConfig, RestClient, load_kubeconfig
from aimctl.envtest import ControlPlane
from aimctl.manager import LeaderElectionConfig, Manager


class FaultyProxy:
    """A TCP proxy to the apiserver (TLS passes through) that can reset or stall connections.

    - ``resetting = True`` aborts every open connection with a TCP RST and resets each new one
      as soon as it is accepted, until set back to False: what a client sees when a load
      balancer or the apiserver drops it.
    - ``flowing.clear()`` stops forwarding bytes without closing anything (a silent stall).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.resets = 0  # connections reset so far
        self._resetting = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    @classmethod
    async def to(cls, cp: ControlPlane) -> FaultyProxy:
        proxy = cls(int(cp.url.rsplit(":", 1)[1]))
        await proxy.start()
        return proxy

    async def config(self, cp: ControlPlane) -> ClusterConfig:
        """``cp``'s kubeconfig, pointed at this proxy."""
        config = await load_kubeconfig(str(cp.kubeconfig))
        config.host = f"https://127.0.0.1:{self.port}"
        return config

    @property
    def resetting(self) -> bool:
        return self._resetting

    @resetting.setter
    def resetting(self, on: bool) -> None:
        self._resetting = on
        if on:
            for w in list(self._open):
                self._reset(w)

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # linger 0: close() sends RST, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        self._open.discard(writer)
        self.resets += 1

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._resetting:
            self._reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:  # the apiserver is down: the client sees a reset
            self._reset(writer)
            return
        self._open.add(writer)
        for t in (self._pump(reader, up_writer), self._pump(up_reader, writer)):
            task = asyncio.create_task(t)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._open):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def election(
    namespace: str, identity: str, *, lease: int = 6, renew: float = 4, retry: float = 1
) -> LeaderElectionConfig:
    return LeaderElectionConfig(
        namespace=namespace,
        name="manager-test",
        identity=identity,
        lease_duration=lease,
        renew_deadline=renew,
        retry_period=retry,
    )


def manager(config: ClusterConfig, namespace: str, **kw: Any) -> Manager:
    kw.setdefault("metrics_bind_address", "0")
    kw.setdefault("health_probe_bind_address", "127.0.0.1:0")
    return Manager(config, namespaces=[namespace], **kw)


async def wait_for(cond: Callable[[], bool], within: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {within}s: {what or cond}")
        await asyncio.sleep(0.02)


def leading(mgr: Manager) -> bool:
    return mgr.elector is not None and mgr.elector.is_leader


async def lease_spec(rest: RestClient, namespace: str, name: str = "manager-test") -> Any:
    lease = await rest.request(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
    )
    return lease["spec"]


async def create_configmap(rest: RestClient, namespace: str, name: str) -> None:
    await rest.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body={"metadata": {"name": name}, "data": {"k": "v"}},
    )


async def finish(task: asyncio.Task[None], within: float = 30.0) -> None:
    """Wait for a manager task (already asked to stop) and re-raise what it raised."""
    await asyncio.wait_for(task, within)
