"""The worker loop survives what it does not own: foreign cancellations, dying workers, a
reconcile that ignores cancellation, and results that would requeue in a hot loop."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest
from structlog.testing import capture_logs

from aimctl.controller import Request, Result
from tests.unit.controller.controller_kit import make, sample, until

A = Request("ns", "a")
B = Request("ns", "b")


def worker_task(name: str = "test-worker-0") -> asyncio.Task[object]:
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == name and not t.done()]
    return task


# -- item 1: only the worker's own cancellation stops it ------------------------------------


@pytest.mark.parametrize("reconcile_timeout", [None, 30.0])
async def test_a_cancellation_not_aimed_at_the_worker_is_a_retried_reconcile_error(
    reconcile_timeout: float | None,
) -> None:
    calls: list[Request] = []

    async def reconcile(req: Request) -> None:
        calls.append(req)
        if req == A and calls.count(A) == 1:
            other = asyncio.create_task(asyncio.sleep(10))  # say, a shared fetch ...
            await asyncio.sleep(0)
            other.cancel()  # ... that someone else cancels while we await it
            await other

    c, q, reg = make(reconcile, timeout=reconcile_timeout)
    q.add(A)
    with capture_logs() as logs:
        c.start()
        await until(lambda: calls.count(A) == 2)  # retried (backoff) by a live worker
    q.add(B)
    await until(lambda: B in calls)
    assert c.workers_alive()
    await c.stop()
    assert sample(reg, "controller_runtime_reconcile_errors_total") == 1
    assert sample(reg, "controller_runtime_reconcile_total", result="error") == 1
    assert sample(reg, "aimctl_controller_worker_restarts_total") == 0
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == [
        "Reconciler error (a cancellation not aimed at the worker)"
    ]


async def test_a_worker_cancelled_from_outside_is_restarted_and_its_key_retried() -> None:
    calls: list[Request] = []
    blocked = asyncio.Event()

    async def reconcile(req: Request) -> None:
        calls.append(req)
        if len(calls) == 1:
            blocked.set()
            await asyncio.sleep(30)

    c, q, reg = make(reconcile)
    q.add(A)
    c.start()
    await blocked.wait()
    with capture_logs() as logs:
        worker_task().cancel()  # not stop(): someone else cancels the worker task itself
        await until(lambda: len(calls) == 2)
    assert calls == [A, A]
    assert c.workers_alive()
    assert sample(reg, "aimctl_controller_worker_restarts_total") == 1
    assert any(e["event"] == "Worker died; restarting it" for e in logs)
    await c.stop()


async def test_a_worker_that_dies_of_a_bug_is_logged_restarted_and_keeps_the_key() -> None:
    class Bug(BaseException):  # not an Exception: gets past the reconcile error handling
        pass

    calls: list[Request] = []

    async def reconcile(req: Request) -> None:
        calls.append(req)
        if len(calls) == 1:
            raise Bug("escaped")

    c, q, reg = make(reconcile, workers=2)
    q.add(A)
    with capture_logs() as logs:
        c.start()
        await until(lambda: len(calls) == 2)
        q.add(B)
        await until(lambda: B in calls)
    assert calls.count(A) == 2
    assert sample(reg, "aimctl_controller_worker_restarts_total") == 1
    died = [e for e in logs if e["event"] == "Worker died; restarting it"]
    assert len(died) == 1 and isinstance(died[0]["exc_info"], Bug)
    assert len([t for t in asyncio.all_tasks() if t.get_name().startswith("test-worker")]) == 2
    await c.stop()


async def test_workers_alive_before_start_while_running_and_after_stop() -> None:
    async def reconcile(req: Request) -> None:
        pass

    c, _, _ = make(reconcile, workers=3)
    assert c.workers_alive()
    c.start()
    assert c.workers_alive()
    await c.stop()
    assert c.workers_alive()  # stopped on purpose: not a liveness failure


# -- item 3: only a positive delay requeues; requeue=True is rate limited -------------------


async def test_requeue_after_zero_means_done_not_an_unthrottled_loop() -> None:
    calls = 0

    async def reconcile(req: Request) -> Result:
        nonlocal calls
        calls += 1
        return Result(requeue_after=0)

    c, q, reg = make(reconcile)
    q.add(A)
    c.start()
    await until(lambda: calls >= 1)
    await asyncio.sleep(0.2)
    await c.stop()
    assert calls == 1
    assert sample(reg, "controller_runtime_reconcile_total", result="success") == 1
    assert sample(reg, "controller_runtime_reconcile_total", result="requeue_after") == 0


async def test_requeue_true_goes_through_the_per_key_backoff() -> None:
    times: list[float] = []

    async def reconcile(req: Request) -> Result | None:
        times.append(time.monotonic())
        return Result(requeue=True) if len(times) < 4 else None

    c, q, reg = make(reconcile, base=0.05)
    q.add(A)
    c.start()
    await until(lambda: len(times) == 4)
    await c.stop()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.05, 0.1, 0.2 s: the backoff grows (not forgotten), as controller-runtime's Requeue.
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09 and gaps[2] >= 0.19, gaps
    assert sample(reg, "controller_runtime_reconcile_total", result="requeue") == 3
    assert sample(reg, "controller_runtime_reconcile_total", result="success") == 1
    assert q.num_requeues(A) == 0  # forgotten on the final success


# -- item 5: stop is bounded even when a reconcile swallows its cancellation ----------------


async def test_stop_returns_when_a_reconcile_swallows_its_cancellation() -> None:
    started = asyncio.Event()
    release = False

    async def reconcile(req: Request) -> None:
        started.set()
        while not release:
            with contextlib.suppress(asyncio.CancelledError):  # the bug under test
                await asyncio.sleep(0.01)

    c, q, _ = make(reconcile)
    q.add(A)
    c.start()
    await started.wait()
    t0 = time.monotonic()
    with capture_logs() as logs:
        await asyncio.wait_for(c.stop(0, abandon_after=0.2), 10)
    assert time.monotonic() - t0 < 5
    (stuck,) = [e for e in logs if e["log_level"] == "error"]
    assert stuck["requests"] == ["ns/a"]
    release = True  # let the abandoned reconcile end, so the test leaves no task behind
    await until(lambda: not [t for t in asyncio.all_tasks() if t.get_name() == "test-worker-0"])


async def test_stop_with_drain_waits_for_a_reconcile_that_finishes() -> None:
    done = asyncio.Event()

    async def reconcile(req: Request) -> None:
        await asyncio.sleep(0.1)
        done.set()

    c, q, _ = make(reconcile)
    q.add(A)
    c.start()
    await asyncio.sleep(0.02)
    await c.stop(5)
    assert done.is_set()
