"""Workqueue throughput and memory: ``python -m bench.workqueue``.

Measures items per second through add -> get -> done for ``aimctl.workqueue.Queue`` with
metrics off and on, next to two in-run peers that set the scale on this machine:

- ``plain``: a deque-and-sets queue with client-go's dirty/processing semantics and nothing
  else (no priorities, delays or metrics), the floor any Python queue pays;
- ``plain+prometheus``: the same queue updating prometheus-client's Counter, Gauge and two
  Histograms per item the way client-go's metrics do (label children resolved once).

Scenarios: ``--keys`` distinct keys (default 100k) added once each, or ten times each
(``dup10``: 9 of 10 adds collapse into a dirty key); 1, 4 and 16 workers. A producer adds keys
in chunks of 1000 and yields to the loop between chunks; workers loop ``get`` then ``done``
(``work=yield`` adds one ``await asyncio.sleep(0)`` in between, so keys are really in flight
concurrently). Each cell is the best of ``--repeat`` runs, the queues taking turns. Peak
memory is measured separately with tracemalloc while the queue holds every key (keys
themselves are allocated beforehand and not counted).

Results go to stdout and, as a markdown section, to ``docs/bench-results/workqueue.md``
(``--out``; ``--no-write`` to skip). No control plane is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import prometheus_client
from prometheus_client import CollectorRegistry

from aimctl.workqueue import Queue, ShutDown
from bench._stats import fmt_ratio, md_table

CHUNK = 1000
RESULTS = Path(__file__).resolve().parent.parent / "docs" / "bench-results"  # as bench._harness
WORKER_COUNTS = (1, 4, 16)

Key = tuple[str, str]


class BenchQueue(Protocol):
    def add(self, item: Key) -> None: ...
    async def get(self) -> Key: ...
    def done(self, item: Key) -> None: ...
    def shut_down(self) -> None: ...


# -- peers ---------------------------------------------------------------------------------


class PlainQueue:
    """client-go's base queue semantics on a deque and two sets; nothing more."""

    def __init__(self) -> None:
        self.queue: deque[Key] = deque()
        self.dirty: set[Key] = set()
        self.processing: set[Key] = set()
        self.getters: deque[asyncio.Future[None]] = deque()
        self.shutting_down = False

    def add(self, item: Key) -> None:
        if self.shutting_down or item in self.dirty:
            return
        self.dirty.add(item)
        if item in self.processing:
            return
        self.queue.append(item)
        self._wake()

    async def get(self) -> Key:
        while not self.queue:
            if self.shutting_down:
                raise ShutDown
            getter = asyncio.get_running_loop().create_future()
            self.getters.append(getter)
            await getter
        item = self.queue.popleft()
        self.dirty.discard(item)
        self.processing.add(item)
        return item

    def done(self, item: Key) -> None:
        self.processing.discard(item)
        if item in self.dirty:
            self.queue.append(item)
            self._wake()

    def shut_down(self) -> None:
        self.shutting_down = True
        while self.getters:
            getter = self.getters.popleft()
            if not getter.done():
                getter.set_result(None)

    def _wake(self) -> None:
        while self.getters:
            getter = self.getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return


class PrometheusQueue(PlainQueue):
    """PlainQueue plus per-item prometheus-client updates, as client-go's metrics.go does."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        labels = ("name", "controller")
        buckets = [10e-9 * 10**i for i in range(12)]
        self.adds = prometheus_client.Counter(
            "workqueue_adds", "adds", labels, registry=registry
        ).labels("bench", "bench")
        self.depth = prometheus_client.Gauge(
            "workqueue_depth", "depth", labels, registry=registry
        ).labels("bench", "bench")
        self.latency = prometheus_client.Histogram(
            "workqueue_queue_duration_seconds",
            "latency",
            labels,
            registry=registry,
            buckets=buckets,
        ).labels("bench", "bench")
        self.work = prometheus_client.Histogram(
            "workqueue_work_duration_seconds", "work", labels, registry=registry, buckets=buckets
        ).labels("bench", "bench")
        self.add_times: dict[Key, float] = {}
        self.start_times: dict[Key, float] = {}

    def add(self, item: Key) -> None:
        if self.shutting_down or item in self.dirty:
            return
        self.adds.inc()
        self.depth.inc()
        if item not in self.add_times:
            self.add_times[item] = time.monotonic()
        self.dirty.add(item)
        if item in self.processing:
            return
        self.queue.append(item)
        self._wake()

    async def get(self) -> Key:
        item = await super().get()
        now = time.monotonic()
        self.depth.dec()
        self.latency.observe(now - self.add_times.pop(item))
        self.start_times[item] = now
        return item

    def done(self, item: Key) -> None:
        self.work.observe(time.monotonic() - self.start_times.pop(item))
        super().done(item)


def aimctl_queue(metrics: bool) -> Callable[[], BenchQueue]:
    def make() -> BenchQueue:
        if metrics:
            return Queue(name="bench", registry=CollectorRegistry())
        return Queue()

    return make


QUEUES: dict[str, Callable[[], BenchQueue]] = {
    "aimctl": aimctl_queue(metrics=False),
    "aimctl+metrics": aimctl_queue(metrics=True),
    "plain": PlainQueue,
    "plain+prometheus": lambda: PrometheusQueue(CollectorRegistry()),
}


# -- runs ----------------------------------------------------------------------------------


@dataclass
class Cell:
    items_per_s: float
    adds_per_s: float
    handed_out: int


async def cycle(
    queue: BenchQueue, keys: Sequence[Key], dup: int, workers: int, work_yield: bool
) -> Cell:
    handed_out = 0

    async def worker() -> None:
        nonlocal handed_out
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            if work_yield:
                await asyncio.sleep(0)
            queue.done(key)
            handed_out += 1

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    await asyncio.sleep(0)  # workers are waiting before the first add
    start = time.perf_counter()
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        for _ in range(dup):
            for key in chunk:
                queue.add(key)
        await asyncio.sleep(0)
    queue.shut_down()  # queued keys are still handed out; then workers see ShutDown
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return Cell(handed_out / elapsed, len(keys) * dup / elapsed, handed_out)


def best_of(
    keys: Sequence[Key], dup: int, workers: int, work_yield: bool, repeat: int
) -> dict[str, Cell]:
    """The best run of each queue; the queues take turns, so that a burst of load from
    elsewhere on the machine hits them alike and the ratios stay fair."""
    best: dict[str, Cell] = {}
    for _ in range(repeat):
        for name, make in QUEUES.items():
            gc.collect()
            cell = asyncio.run(cycle(make(), keys, dup, workers, work_yield))
            if name not in best or cell.items_per_s > best[name].items_per_s:
                best[name] = cell
    return best


async def hold_all(queue: BenchQueue, keys: Sequence[Key]) -> None:
    for key in keys:
        queue.add(key)
    for _ in keys:
        queue.done(await queue.get())


def peak_memory(make: Callable[[], BenchQueue], keys: Sequence[Key]) -> int:
    """Peak bytes allocated while the queue holds every key, then hands them all out."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        queue = make()
        asyncio.run(hold_all(queue, keys))
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


# -- report --------------------------------------------------------------------------------


def fmt(n: float) -> str:
    return f"{n / 1000:,.0f}k"


def run(n_keys: int, repeat: int) -> str:
    # Imported here: the harness pulls in the REST client (seconds of imports) for what is
    # only a machine description to this benchmark.
    from bench._harness import machine_info

    keys: list[Key] = [("default", f"object-{i}") for i in range(n_keys)]
    info = machine_info()
    header = [
        "# Workqueue benchmark",
        "",
        f"`python -m bench.workqueue --keys {n_keys} --repeat {repeat}` on {info['date']}: "
        f"{info['nproc']} CPUs ({info['cpu']}), Python {info['python']}; load "
        f"{info['load (1, 5, 15 min)']} at the start. The machine is shared, so compare "
        "the ratios within one run rather than absolute numbers across runs.",
        "",
        "## Throughput",
        "",
        "Items per second through add -> get -> done, best of "
        f"{repeat} runs, {fmt(n_keys)} distinct keys added in chunks of {CHUNK}. `dup10` adds "
        "every key 10 times per chunk, so adds per second are 10x the items per second. "
        "`work=yield` awaits once between get and done, so keys are in flight concurrently. "
        "`plain` is a deque-and-sets queue with client-go's semantics and nothing else; "
        "`plain+prometheus` adds prometheus-client Counter/Gauge/Histogram updates per item.",
        "",
    ]
    print("\n".join(header), flush=True)
    headers = [
        "keys",
        "workers",
        "work",
        *QUEUES,
        "aimctl / plain",
        "metrics on / off",
        "metrics on / plain+prometheus",
    ]
    rows: list[list[str]] = []
    single = 0.0
    cases = [
        (name, dup, workers, False)
        for name, dup in (("distinct", 1), ("dup10", 10))
        for workers in WORKER_COUNTS
    ] + [("distinct", 1, 16, True)]
    for label, dup, workers, work_yield in cases:
        cells = best_of(keys, dup, workers, work_yield, repeat)
        for queue, cell in cells.items():
            assert cell.handed_out == n_keys, (queue, cell.handed_out)
        off, on = cells["aimctl"].items_per_s, cells["aimctl+metrics"].items_per_s
        row = [
            label,
            str(workers),
            "yield" if work_yield else "none",
            *(fmt(cells[q].items_per_s) for q in QUEUES),
            fmt_ratio(off, cells["plain"].items_per_s),
            fmt_ratio(on, off),
            fmt_ratio(on, cells["plain+prometheus"].items_per_s),
        ]
        rows.append(row)
        print(" | ".join(row), flush=True)
        if (label, workers, work_yield) == ("distinct", 1, False):
            single = on
    verdict = [
        "",
        f"Target: at least 300k items/s for one worker with metrics on: {fmt(single)} "
        f"({'met' if single >= 300_000 else 'NOT met'}).",
        "",
        "What bounds it (py-spy): the interpreter's per-item work in add, get and done. With "
        "metrics off that is a few dict and deque operations and the `get` coroutine, a "
        "little more than the plain queue's (priority buckets, checks for delayed keys). "
        "Metrics on add three clock reads per item (add, get, done), one due-time map entry "
        "and two list appends; the histograms are folded every 1024 values (~7% of the "
        "time). Depth, adds, retries, unfinished work and the longest-running processor "
        "cost nothing per item: they are computed when `/metrics` is scraped.",
    ]
    print("\n".join(verdict), flush=True)
    memory = [
        "",
        "## Memory",
        "",
        f"Peak memory (tracemalloc) while the queue holds all {fmt(n_keys)} keys and hands "
        "them out; the keys themselves are allocated beforehand and not counted.",
        "",
    ]
    mem_rows = []
    for queue, make in QUEUES.items():
        peak = peak_memory(make, keys)
        mem_rows.append([queue, f"{peak / 2**20:.1f} MiB", f"{peak / n_keys:.0f}"])
    table = md_table(["queue", "peak", "bytes per key"], mem_rows)
    print("\n".join([*memory, table]), flush=True)
    return "\n".join([*header, md_table(headers, rows), *verdict, *memory, table]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workqueue", description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000, help="distinct keys (100000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per cell, best kept (5)")
    parser.add_argument("--out", type=Path, default=RESULTS / "workqueue.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    report = run(args.keys, args.repeat)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
