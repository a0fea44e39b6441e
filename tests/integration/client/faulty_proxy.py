"""An HTTP proxy in front of the real API server that loses answers on request.

Clients speak plain HTTP/1.1 to it; it speaks TLS to the API server with the kubeconfig's
client certificate, so it sees each request and can act on it:

- ``drop``: forward the request, wait until the server starts answering (so the server has
  processed it), then reset the client's connection: "the request landed, the answer was lost".
- ``throttle``: answer ``429`` with ``Retry-After`` without forwarding (API Priority and
  Fairness rejecting it).

Faults are one-shot rules matched on method and a path substring; everything else flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from aimctl.client import ClusterConfig

Action = Literal["drop", "throttle"]


@dataclass
class Rule:
    method: str
    path_contains: str
    action: Action
    retry_after: int = 1


@dataclass
class FaultyProxy:
    upstream: ClusterConfig
    rules: list[Rule] = field(default_factory=list)
    forwarded: list[tuple[str, str]] = field(default_factory=list)  # (method, target) sent on
    applied: list[tuple[Action, str, str]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _conns: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._conns):
            t.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)

    def config(self) -> ClusterConfig:
        """A ClusterConfig for clients: plain HTTP to the proxy, no client-side auth needed."""
        return ClusterConfig(
            f"http://127.0.0.1:{self.port}", None, None, None, self.upstream.configuration
        )

    def once(self, method: str, path_contains: str, action: Action, retry_after: int = 1) -> None:
        self.rules.append(Rule(method, path_contains, action, retry_after))

    def _match(self, method: str, target: str) -> Rule | None:
        for rule in self.rules:
            if rule.method == method and rule.path_contains in target:
                self.rules.remove(rule)
                self.applied.append((rule.action, method, target))
                return rule
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        up = urlsplit(self.upstream.host)
        host, port = up.hostname or "127.0.0.1", up.port or 443
        up_reader, up_writer = await asyncio.open_connection(
            host,
            port,
            ssl=self.upstream.ssl_context,
            server_hostname=self.upstream.tls_server_name or host,
        )
        drop = asyncio.Event()
        pump = asyncio.create_task(self._pump(up_reader, writer, drop))
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, target = head.split(b" ", 2)[:2]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                rule = self._match(method.decode(), target.decode())
                if rule is not None and rule.action == "throttle":
                    msg = (
                        b'{"kind":"Status","apiVersion":"v1","code":429,"reason":"TooManyRequests"}'
                    )
                    writer.write(
                        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                        + f"Retry-After: {rule.retry_after}\r\n".encode()
                        + f"Content-Length: {len(msg)}\r\n\r\n".encode()
                        + msg
                    )
                    await writer.drain()
                    continue
                if rule is not None:
                    drop.set()
                self.forwarded.append((method.decode(), target.decode()))
                up_writer.write(head + body)
                await up_writer.drain()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            up_writer.close()
            writer.close()
            self._conns.discard(task)

    @staticmethod
    async def _pump(
        up: asyncio.StreamReader, client: asyncio.StreamWriter, drop: asyncio.Event
    ) -> None:
        while chunk := await up.read(65536):
            if drop.is_set():
                # The server answered, so it processed the request: lose the answer with a
                # reset (SO_LINGER 0), as a dying load balancer or NAT would.
                sock = client.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.transport.abort()
                return
            client.write(chunk)
            await client.drain()
