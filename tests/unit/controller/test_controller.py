"""The worker loop over the real workqueue (no API server): outcomes, concurrency, metrics."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from aimctl.controller import Request, Result, TerminalError
from tests.unit.controller.controller_kit import make, sample, until

A = Request("ns", "a")


async def test_a_burst_of_adds_for_one_key_runs_one_reconcile() -> None:
    calls: list[Request] = []

    async def reconcile(req: Request) -> None:
        calls.append(req)

    c, q, reg = make(reconcile)
    for _ in range(50):
        q.add(A)
    c.start()
    await until(lambda: calls)
    await asyncio.sleep(0.05)
    await c.stop()
    assert calls == [A]
    assert sample(reg, "controller_runtime_reconcile_total", result="success") == 1


async def test_one_key_is_never_reconciled_concurrently_even_with_many_workers() -> None:
    running: set[Request] = set()
    overlaps = 0
    count = 0

    async def reconcile(req: Request) -> None:
        nonlocal overlaps, count
        if req in running:
            overlaps += 1
        running.add(req)
        await asyncio.sleep(0.002)
        running.discard(req)
        count += 1

    c, q, _ = make(reconcile, workers=8)
    c.start()
    keys = [Request("ns", str(i % 3)) for i in range(300)]
    for k in keys:
        q.add(k)
        await asyncio.sleep(0)
    await until(lambda: len(q) == 0 and not running)
    await c.stop()
    assert overlaps == 0
    assert count >= 3


async def test_errors_back_off_exponentially_then_success_resets() -> None:
    times: list[float] = []

    async def reconcile(req: Request) -> None:
        times.append(time.monotonic())
        if len(times) <= 4:
            raise RuntimeError("boom")

    c, q, reg = make(reconcile, base=0.02)
    q.add(A)
    c.start()
    await until(lambda: len(times) == 5)
    await c.stop()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 20, 40, 80, 160 ms: each gap at least the nominal delay, roughly doubling.
    for gap, nominal in zip(gaps, [0.02, 0.04, 0.08, 0.16], strict=True):
        assert gap >= nominal * 0.95
    assert gaps[3] > gaps[0] * 4
    assert q.num_requeues(A) == 0  # success forgot the failures
    assert sample(reg, "controller_runtime_reconcile_errors_total") == 4
    assert sample(reg, "controller_runtime_reconcile_total", result="error") == 4
    assert sample(reg, "controller_runtime_reconcile_total", result="success") == 1


async def test_terminal_error_is_not_retried() -> None:
    calls = 0

    async def reconcile(req: Request) -> None:
        nonlocal calls
        calls += 1
        raise TerminalError("spec is invalid")

    c, q, reg = make(reconcile)
    q.add(A)
    c.start()
    await until(lambda: calls == 1)
    await asyncio.sleep(0.1)
    await c.stop()
    assert calls == 1
    assert sample(reg, "controller_runtime_terminal_reconcile_errors_total") == 1
    assert sample(reg, "controller_runtime_reconcile_errors_total") == 1


async def test_requeue_after_is_honoured_and_resets_backoff() -> None:
    times: list[float] = []

    async def reconcile(req: Request) -> Result:
        times.append(time.monotonic())
        return Result(requeue_after=0.1)

    c, q, reg = make(reconcile)
    q.add(A)
    c.start()
    await until(lambda: len(times) == 3)
    await c.stop()
    assert times[1] - times[0] >= 0.095
    assert times[2] - times[1] >= 0.095
    assert sample(reg, "controller_runtime_reconcile_total", result="requeue_after") >= 2


async def test_reconcile_timeout_counts_and_retries_but_inner_timeouts_are_plain_errors() -> None:
    calls = 0

    async def reconcile(req: Request) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)
        if calls == 2:
            raise TimeoutError("an HTTP call timed out")

    c, q, reg = make(reconcile, timeout=0.05)
    q.add(A)
    c.start()
    await until(lambda: calls == 3)
    await c.stop()
    assert sample(reg, "controller_runtime_reconcile_timeouts_total") == 1
    assert sample(reg, "controller_runtime_reconcile_errors_total") == 2


async def test_stop_drains_in_flight_reconciles() -> None:
    finished = asyncio.Event()

    async def reconcile(req: Request) -> None:
        await asyncio.sleep(0.1)
        finished.set()

    c, q, _ = make(reconcile)
    q.add(A)
    c.start()
    await asyncio.sleep(0.02)
    await c.stop(drain_timeout=5)
    assert finished.is_set()


async def test_stop_with_zero_drain_cancels_at_once() -> None:
    started = asyncio.Event()

    async def reconcile(req: Request) -> None:
        started.set()
        await asyncio.sleep(10)

    c, q, _ = make(reconcile)
    q.add(A)
    c.start()
    await started.wait()
    t0 = time.monotonic()
    await c.stop(drain_timeout=0)
    assert time.monotonic() - t0 < 1


async def test_reconcile_context_carries_request_keys_and_a_reconcile_id() -> None:
    import structlog

    seen: list[dict[str, object]] = []

    async def reconcile(req: Request) -> None:
        seen.append(structlog.contextvars.get_contextvars())

    c, q, _ = make(reconcile)
    q.add(A)
    q.add(Request("ns", "b"))
    c.start()
    await until(lambda: len(seen) == 2)
    await c.stop()
    assert {s["name"] for s in seen} == {"a", "b"}
    assert all(s["controller"] == "test" and s["namespace"] == "ns" for s in seen)
    assert len({s["reconcileID"] for s in seen}) == 2


def test_sync_reconcilers_are_rejected() -> None:
    def reconcile(req: Request) -> None:
        return None

    with pytest.raises(TypeError, match="async"):
        make(reconcile)


async def test_stop_finishes_in_flight_reconciles_but_not_the_queued_backlog() -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def reconcile(req: Request) -> None:
        started.append(req.name)
        await release.wait()

    c, q, _ = make(reconcile)
    for i in range(10):
        q.add(Request("ns", str(i)))
    c.start()
    await until(lambda: len(started) == 1)
    stopping = asyncio.create_task(c.stop(drain_timeout=5))
    await asyncio.sleep(0.05)
    release.set()
    await stopping
    assert started == ["0"]
