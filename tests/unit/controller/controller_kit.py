"""Shared by the controller unit tests: a controller on a real queue, metric reads, waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from aimctl.controller import Controller, Request
from aimctl.controller._metrics import controller_metrics
from aimctl.workqueue import ItemExponentialRateLimiter, Queue

__all__ = ["make", "sample", "until"]


def make(
    reconcile: Any, *, workers: int = 1, base: float = 0.005, timeout: float | None = None
) -> tuple[Controller, Queue[Request], CollectorRegistry]:
    """A controller named ``test`` on its own queue (per-key backoff from ``base``) and registry."""
    registry = CollectorRegistry()
    q: Queue[Request] = Queue(
        name="test", rate_limiter=ItemExponentialRateLimiter(base, 1000), registry=registry
    )
    c = Controller(
        "test",
        reconcile,
        q,
        max_concurrent_reconciles=workers,
        reconcile_timeout=timeout,
        metrics=controller_metrics(registry),
    )
    return c, q, registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"controller": "test", **labels}) or 0.0


async def until(cond: Callable[[], object], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
