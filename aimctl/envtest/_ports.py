"""Free TCP ports on the loopback interface.

The OS picks a port (bind to port 0) and the socket is closed before the port is handed to a
server, so another process may take it in between: callers retry a start that failed with
"address already in use" (see :func:`aimctl.envtest._process.port_conflict`).
"""

from __future__ import annotations

import socket

__all__ = ["LOOPBACK", "free_ports"]

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago."""
    sockets: list[socket.socket] = []
    try:
        # Hold every socket open until all are bound so the OS never returns the same port twice.
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
