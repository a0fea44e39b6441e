"""Port allocation: distinct loopback ports that can be bound."""

from __future__ import annotations

import socket

from aimctl.envtest._ports import LOOPBACK, free_ports


def test_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((LOOPBACK, port))


def test_loopback_only() -> None:
    assert LOOPBACK == "127.0.0.1"
