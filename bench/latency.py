"""Latency: from a watch event to the start of its reconcile, at 10, 100 and 1000 events/s.

    python -m bench.latency [--rates 10 100 1000] [--keys 1000] [--workers 8]
                            [--kubeconfig K] [--no-write]

The library in-process: an ``aimctl.manager.Manager`` with one controller on ConfigMaps in one
namespace, whose reconcile only records ``time.time()`` when it starts. A writer in a separate
process (so it does not share the manager's event loop) updates ConfigMaps at the target rate,
open loop (write ``i`` is due at ``t0 + i/rate`` whatever happened before), cycling over
``--keys`` ConfigMaps so that at 1000 writes/s each key changes once a second. Each write is a
merge PATCH carrying ``data.ts``, the writer's ``time.time()`` just before sending.

Two latencies per update, both on the one host clock:

- **informer → reconcile** (the library's share): from the moment the update reached the
  informer (an extra handler on the ConfigMap informer, registered before the controller's, so
  it runs first: the event was read from the watch stream, decoded, and applied to the store)
  to the moment the reconcile for that key started (workqueue, worker pick-up, the controller's
  per-reconcile setup).
- **write → reconcile** (end to end): from ``data.ts`` to the reconcile start; adds the API
  server's write path and watch delivery.

A reconcile is matched to the ``data.ts`` it sees in the cache when it starts. Updates that
collapse (a key written again before its reconcile started; the queue's dedup) are counted as
collapsed and have no latency of their own. The first second of each rate is warm-up, excluded.
If the writer cannot reach the target on this machine, the achieved rate is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from aimctl.client import GVK, Object, RestClient, load_kubeconfig
from aimctl.controller import Request
from aimctl.informers import FuncHandler
from aimctl.log import configure_logging
from aimctl.manager import Manager
from bench._harness import (
    RESULTS_DIR,
    Bench,
    Peer,
    control_plane,
    load_now,
    machine_info,
)
from bench._stats import fmt_seconds, md_table, percentile

__all__ = ["RateResult", "main"]

CONFIGMAP = GVK("", "v1", "ConfigMap")
WARMUP = 1.0


@dataclass
class RateResult:
    target: int
    achieved: float
    writes: int
    write_errors: int
    events: int
    reconciles: int
    collapsed: int
    arrival_p50: float | None
    arrival_p99: float | None
    arrival_max: float | None
    e2e_p50: float | None
    e2e_p99: float | None
    manager_cpu_percent: float
    load: str


# -- writer (a subprocess) --------------------------------------------------------------------


async def writer(
    kubeconfig: str, ns: str, rate: float, duration: float, keys: int, out: Path
) -> None:
    rest = RestClient(await load_kubeconfig(kubeconfig), max_connections=128)
    total = int(rate * duration)
    sem = asyncio.Semaphore(128)
    errors = 0
    done = 0

    async def one(i: int) -> None:
        nonlocal errors, done
        async with sem:
            body = {"data": {"ts": f"{time.time():.6f}", "seq": str(i)}}
            try:
                await rest.request(
                    "PATCH",
                    f"/api/v1/namespaces/{ns}/configmaps/cm-{i % keys:04d}",
                    body=body,
                    content_type="application/merge-patch+json",
                )
                done += 1
            except Exception:
                errors += 1

    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    for i in range(total):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    await rest.aclose()
    result = json.dumps({"writes": done, "errors": errors, "seconds": elapsed})
    await asyncio.to_thread(out.write_text, result)


# -- the measured side ------------------------------------------------------------------------


class Recorder:
    """Arrival times per (key, ts) and reconcile starts matched to the ts they see."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, str], float] = {}
        self.starts: dict[tuple[str, str], float] = {}
        self.events = 0
        self.reconciles = 0
        self.store: Any = None

    def on_update(self, old: Object, new: Object) -> None:
        now = time.time()
        ts = (new.get("data") or {}).get("ts")
        if ts is not None and old is not new:
            self.events += 1
            self.arrivals.setdefault((new["metadata"]["name"], ts), now)

    async def reconcile(self, req: Request) -> None:
        now = time.time()
        self.reconciles += 1
        obj = self.store.get_by_name(req.namespace, req.name)
        ts = (obj.get("data") or {}).get("ts") if obj is not None else None
        if ts is not None:
            self.starts.setdefault((req.name, ts), now)

    def reset(self) -> None:
        self.arrivals.clear()
        self.starts.clear()
        self.events = self.reconciles = 0


async def measure(
    bench: Bench,
    ns: str,
    rates: Sequence[int],
    keys: int,
    workers: int,
    workdir: Path,
) -> list[RateResult]:
    kubeconfig = str(bench.plane.kubeconfig)
    await bench.create_namespace(ns)
    sem = asyncio.Semaphore(64)

    async def make(i: int) -> None:
        async with sem:
            await bench.request(
                "POST",
                f"/api/v1/namespaces/{ns}/configmaps",
                body={"metadata": {"name": f"cm-{i:04d}"}, "data": {"ts": "0"}},
            )

    await asyncio.gather(*(make(i) for i in range(keys)))

    rec = Recorder()
    mgr = Manager(
        await load_kubeconfig(kubeconfig),
        namespaces=[ns],
        metrics_bind_address="0",
        health_probe_bind_address="0",
    )
    (informer,) = await mgr.informers_for(CONFIGMAP)
    informer.add_handler(FuncHandler(update=rec.on_update))
    rec.store = informer.store
    (
        mgr.controller()
        .named("latency")
        .for_(CONFIGMAP)
        .with_options(max_concurrent_reconciles=workers)
        .complete(rec.reconcile)
    )
    run = asyncio.create_task(mgr.run())
    me = psutil.Process()
    results: list[RateResult] = []
    try:
        await mgr.informers.wait_for_sync(60)
        await asyncio.sleep(1.0)
        for rate in rates:
            duration = max(10.0, min(60.0, 3000 / rate))
            rec.reset()
            out = workdir / f"writer-{rate}.json"
            w = Peer(
                f"writer-{rate}",
                [
                    sys.executable, "-m", "bench.latency", "--writer",
                    "--kubeconfig", kubeconfig, "--namespace", ns,
                    "--rate", str(rate), "--duration", str(duration),
                    "--keys", str(keys), "--out", str(out),
                ],
                log_path=workdir / f"writer-{rate}.log",
            )  # fmt: skip
            load = load_now()
            cpu0 = sum(me.cpu_times()[:2])
            t_start = time.time()
            w.start()
            code = await w.wait_exit(duration * 4 + 60)
            if code is None:
                await w.stop()
                raise RuntimeError(f"writer at {rate}/s did not finish; log: {w.log_path}")
            await asyncio.sleep(2.0)  # let the last events arrive and run
            cpu = sum(me.cpu_times()[:2]) - cpu0
            wall = time.time() - t_start
            if code != 0:
                raise RuntimeError(f"writer failed ({code}): {w.log_tail()}")
            stats = json.loads(out.read_text())
            results.append(summarize(rec, rate, stats, cpu / wall * 100, load))
            r = results[-1]
            print(
                f"rate {rate}/s: achieved {r.achieved:.0f}/s, {r.events} events, "
                f"{r.reconciles} reconciles, {r.collapsed} collapsed; informer->reconcile "
                f"p50 {fmt_seconds(r.arrival_p50)} p99 {fmt_seconds(r.arrival_p99)}; "
                f"write->reconcile p50 {fmt_seconds(r.e2e_p50)} p99 {fmt_seconds(r.e2e_p99)}; "
                f"manager CPU {r.manager_cpu_percent:.0f}%; load {load}",
                flush=True,
            )
            await w.stop()
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(run, 60)
    return results


def summarize(
    rec: Recorder, rate: int, writer_stats: dict[str, Any], cpu_percent: float, load: str
) -> RateResult:
    first = min((float(ts) for _, ts in rec.arrivals), default=0.0)
    arrival: list[float] = []
    e2e: list[float] = []
    collapsed = 0
    for key, t_arr in rec.arrivals.items():
        sent = float(key[1])
        if sent < first + WARMUP:
            continue
        t_start = rec.starts.get(key)
        if t_start is None:
            collapsed += 1
            continue
        arrival.append(t_start - t_arr)
        e2e.append(t_start - sent)
    return RateResult(
        target=rate,
        achieved=writer_stats["writes"] / writer_stats["seconds"],
        writes=writer_stats["writes"],
        write_errors=writer_stats["errors"],
        events=rec.events,
        reconciles=rec.reconciles,
        collapsed=collapsed,
        arrival_p50=percentile(arrival, 50) if arrival else None,
        arrival_p99=percentile(arrival, 99) if arrival else None,
        arrival_max=max(arrival) if arrival else None,
        e2e_p50=percentile(e2e, 50) if e2e else None,
        e2e_p99=percentile(e2e, 99) if e2e else None,
        manager_cpu_percent=cpu_percent,
        load=load,
    )


def render(results: Sequence[RateResult], machine: dict[str, str], keys: int, workers: int) -> str:
    lines = [
        "## Latency: watch event to reconcile start",
        "",
        "`python -m bench.latency` — an in-process `Manager` with one controller on ConfigMaps "
        f"({workers} workers, reconcile records its start time and returns); a writer process "
        f"merge-patches {keys} ConfigMaps round-robin at a fixed rate (open loop), each write "
        "carrying its send time. **informer → reconcile**: from the update reaching the "
        "informer (a handler registered before the controller's: read from the watch, decoded, "
        "stored) to the reconcile's start: the library's own share. **write → reconcile**: from "
        "the writer's send time: adds the API server's write and watch delivery. The first "
        "second of each rate is warm-up. *Collapsed*: updates superseded by a newer write of "
        "the same key before their reconcile started (the queue's dedup; no latency of their "
        "own).",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        md_table(
            [
                "target rate",
                "achieved",
                "events",
                "reconciles",
                "collapsed",
                "informer → reconcile p50",
                "p99",
                "max",
                "write → reconcile p50",
                "p99",
                "manager CPU",
            ],
            [
                [
                    f"{r.target}/s",
                    f"{r.achieved:.0f}/s",
                    r.events,
                    r.reconciles,
                    r.collapsed,
                    _ms(r.arrival_p50),
                    _ms(r.arrival_p99),
                    _ms(r.arrival_max),
                    _ms(r.e2e_p50),
                    _ms(r.e2e_p99),
                    f"{r.manager_cpu_percent:.0f}%",
                ]
                for r in results
            ],
        ),
        "",
    ]
    short = [r for r in results if r.achieved < 0.9 * r.target]
    for r in short:
        lines.append(
            f"- At {r.target}/s the writer reached only {r.achieved:.0f}/s on this machine "
            "(2 cores shared by the API server, etcd, the writer and the manager)."
        )
    return "\n".join(lines).rstrip() + "\n"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f} ms"


async def run(args: argparse.Namespace, plane: Any) -> list[RateResult]:
    configure_logging("console", "warning")  # as `aimctl run --log-level warning`
    workdir = Path(tempfile.mkdtemp(prefix="aimctl-bench-latency-"))
    print(f"logs in {workdir}", flush=True)
    async with Bench(plane) as bench:
        machine = machine_info(await bench.versions())
        ns = f"bench-latency-{int(time.time()) % 100000}"
        results = await measure(bench, ns, args.rates, args.keys, args.workers, workdir)
        machine["load after"] = load_now()
        (workdir / "latency.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
        report = render(results, machine, args.keys, args.workers)
        if not args.no_write:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            (RESULTS_DIR / "latency.md").write_text(report)
        print()
        print(report)
        await bench.delete_namespace(ns)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rates", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting envtest")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/bench-results")
    # The writer subprocess.
    parser.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer:
        asyncio.run(
            writer(args.kubeconfig, args.namespace, args.rate, args.duration, args.keys, args.out)
        )
        return 0
    with control_plane(args.kubeconfig) as plane:
        asyncio.run(run(args, plane))
    return 0


if __name__ == "__main__":
    sys.exit(main())
