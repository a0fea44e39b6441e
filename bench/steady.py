"""Steady state: restart an operator over N converged caches; what does the resync cost?

    python -m bench.steady [--n 1000] [--peers aimctl kopf] [--idle 30] [--kubeconfig K]
                           [--no-write]

For each operator, on one envtest control plane:

1. converge N new caches (as :mod:`bench.converge` does), then let it settle for 5 s;
2. stop the operator (SIGTERM) and start it again on the same namespace;
3. **time to ready**: to ``/readyz`` 200 (aimctl) or the startup handler's stats endpoint
   answering (kopf), and to the **resync done**: every cache reconciled again after the
   restart (aimctl: ``controller_runtime_reconcile_total`` of the kvcache controller reaches N
   with ``workqueue_depth`` 0 and no active worker; kopf: N resume handlers finished);
4. **writes during the restart window**: from just before the start to 5 s after the resync,
   the API server's POST/PUT/PATCH/APPLY/DELETE deltas (the target is 0: nothing changed while
   the operator was down); reads are reported too. aimctl's own ``rest_client_requests_total``
   is shown beside them;
5. **idle cost**: then ``--idle`` seconds with nothing happening: requests and CPU.

Peak RSS and CPU seconds are for the restarted process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._harness import RESULTS_DIR, Bench, control_plane, http_get, load_now, machine_info
from bench._stats import (
    WRITE_VERBS,
    RequestKey,
    counter_delta,
    fmt_bytes,
    fmt_seconds,
    md_table,
    metric_sum,
    named_counts,
    parse_samples,
)
from bench.converge import (
    EXCLUDED_RESOURCES,
    PeerSettings,
    RunningPeer,
    converge_once,
    self_reported,
    start_peer,
)

__all__ = ["SteadyResult", "main"]

OPERATORS = ("aimctl", "kopf")
SETTLE = 5.0
POLL = 0.1


@dataclass
class SteadyResult:
    peer: str
    n: int
    converge_seconds: float | None
    shutdown_seconds: float
    exit_code: int | None
    ready_seconds: float | None
    resync_seconds: float | None
    writes: dict[str, int]
    reads: dict[str, int]
    watches: dict[str, int]
    self_reported: dict[str, float]
    peak_rss: int
    cpu_seconds: float
    idle_seconds: float
    idle_requests: dict[str, int]
    idle_cpu_percent: float
    load: str

    @property
    def write_total(self) -> int:
        return sum(self.writes.values())


def _split(delta: Counter[RequestKey]) -> tuple[dict[str, int], dict[str, int]]:
    """(writes, reads) by ``VERB resource``."""
    named = named_counts(delta, exclude=EXCLUDED_RESOURCES)
    writes = {k: v for k, v in named.items() if k.split(" ", 1)[0] in WRITE_VERBS}
    reads = {k: v for k, v in named.items() if k not in writes}
    return writes, reads


async def _resynced(running: RunningPeer, n: int) -> bool:
    if running.metrics_url is not None:
        code, text = await http_get(running.metrics_url)
        if code != 200:
            return False
        samples = parse_samples(text)
        reconciles = sum(
            s.value
            for s in samples
            if s.name == "controller_runtime_reconcile_total"
            and "kvcache" in s.labels.get("controller", "")
        )
        depth = sum(
            s.value
            for s in samples
            if s.name == "workqueue_depth" and "kvcache" in s.labels.get("name", "")
        )
        active = metric_sum(samples, "controller_runtime_active_workers")
        return reconciles >= n and depth == 0 and active == 0
    if running.stats_url is not None:
        code, text = await http_get(running.stats_url)
        return code == 200 and json.loads(text).get("resume", 0) >= n
    return False


async def restart_once(
    bench: Bench, kind: str, n: int, settings: PeerSettings, workdir: Path, idle: float
) -> SteadyResult:
    ns = f"bench-steady-{kind}-{n}-{int(time.time()) % 100000}"
    converged, running = await converge_once(bench, kind, n, settings, workdir, ns=ns, keep=True)
    assert running is not None
    try:
        await asyncio.sleep(SETTLE)
        began = time.monotonic()
        exit_code = await running.peer.stop(60)
        shutdown = time.monotonic() - began
        load = load_now()

        watches_before = await bench.open_watches()
        before, own_before = await bench.request_counts(), bench.own_snapshot()
        t0 = time.monotonic()
        # start_peer returns at readiness: /readyz (aimctl) or the stats endpoint (kopf).
        running = await start_peer(kind, bench.plane.kubeconfig, ns, settings, workdir, tag="-2")
        ready = time.monotonic() - t0
        cpu0 = 0.0  # a new process: everything it used counts
        resync: float | None = None
        deadline = t0 + 120 + n * 0.3
        while time.monotonic() < deadline:
            running.peer.check_alive()
            if await _resynced(running, n):
                resync = time.monotonic() - t0
                break
            await asyncio.sleep(POLL)
        cpu1 = running.peer.cpu_seconds()
        await asyncio.sleep(SETTLE)
        writes, reads = _split(await bench.requests_since(before, own_before))
        opened = counter_delta(watches_before, await bench.open_watches())
        watches = named_counts(opened, watches=True)
        reported = await self_reported(running)

        idle_before, idle_own = await bench.request_counts(), bench.own_snapshot()
        idle_cpu0 = running.peer.cpu_seconds()
        idle_t0 = time.monotonic()
        await asyncio.sleep(idle)
        idle_cpu = running.peer.cpu_seconds() - idle_cpu0
        idle_wall = time.monotonic() - idle_t0
        idle_writes, idle_reads = _split(await bench.requests_since(idle_before, idle_own))
        result = SteadyResult(
            peer=kind,
            n=n,
            converge_seconds=converged.seconds,
            shutdown_seconds=shutdown,
            exit_code=exit_code,
            ready_seconds=ready,
            resync_seconds=resync,
            writes=writes,
            reads=reads,
            watches=watches,
            self_reported=reported,
            peak_rss=running.peer.peak_rss,
            cpu_seconds=cpu1 - cpu0,
            idle_seconds=idle_wall,
            idle_requests={**idle_writes, **idle_reads},
            idle_cpu_percent=idle_cpu / idle_wall * 100,
            load=load,
        )
    finally:
        await running.peer.stop()
    await bench.delete_namespace(ns)
    return result


def render(results: Sequence[SteadyResult], machine: dict[str, str], settings: PeerSettings) -> str:
    lines = [
        "## Steady state: restart over N converged caches",
        "",
        "`python -m bench.steady` — N caches converged by the operator; the operator is stopped "
        "(SIGTERM) and started again on the same namespace. *Ready*: `/readyz` 200 (aimctl) or "
        "the startup handler done (kopf). *Resync done*: every cache reconciled again (aimctl: "
        "`controller_runtime_reconcile_total` of the kvcache controller = N, `workqueue_depth` "
        "0, no active worker; kopf: N resume handlers finished), polled every 100 ms, from "
        "process start. *Writes*: the API server's POST/PUT/PATCH/APPLY/DELETE deltas from "
        "just before the start to 5 s after the resync (target 0: nothing changed while the "
        "operator was down). *Idle*: the following quiet period.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        "Peers: "
        + "; ".join(f"**{k}** {v}" for k, v in settings.describe().items() if k in OPERATORS),
        "",
        md_table(
            [
                "peer",
                "N",
                "shutdown",
                "ready",
                "resync done",
                "writes",
                "reads (GET/LIST)",
                "watches opened",
                "peak RSS",
                "CPU s to resync",
                "idle requests",
                "idle CPU",
            ],
            [
                [
                    r.peer,
                    r.n,
                    f"{fmt_seconds(r.shutdown_seconds)} (exit {r.exit_code})",
                    fmt_seconds(r.ready_seconds),
                    fmt_seconds(r.resync_seconds),
                    r.write_total,
                    sum(r.reads.values()),
                    sum(r.watches.values()),
                    fmt_bytes(r.peak_rss),
                    f"{r.cpu_seconds:.1f}",
                    f"{sum(r.idle_requests.values())} in {r.idle_seconds:.0f} s",
                    f"{r.idle_cpu_percent:.1f}%",
                ]
                for r in results
            ],
        ),
        "",
    ]
    for r in results:
        detail = ", ".join(f"{k} {v}" for k, v in sorted({**r.writes, **r.reads}.items()))
        lines.append(f"- {r.peer}: requests in the restart window: {detail or 'none'}.")
        if r.watches:
            opened = ", ".join(f"{k} {v}" for k, v in sorted(r.watches.items()))
            lines.append(f"  Watches (and streaming lists) open after the resync: {opened}.")
        if r.self_reported:
            own = ", ".join(f"{k} {v:g}" for k, v in sorted(r.self_reported.items()))
            lines.append(f"  Self-reported after the resync: {own}.")
        if (
            r.ready_seconds is not None
            and r.resync_seconds is not None
            and r.resync_seconds - r.ready_seconds < 0.2
        ):
            lines.append(
                "  Ready and resync done coincide: the readiness probe was answered only after "
                "the resync, because reconciles that need no write never suspend, so the "
                "workers kept the event loop until the queue was empty."
            )
        if r.idle_requests:
            idle = ", ".join(f"{k} {v}" for k, v in sorted(r.idle_requests.items()))
            lines.append(f"  Idle: {idle}.")
    return "\n".join(lines).rstrip() + "\n"


async def run(args: argparse.Namespace, plane: Any) -> list[SteadyResult]:
    settings = PeerSettings(aimctl_workers=args.aimctl_workers, kopf_workers=args.kopf_workers)
    workdir = Path(tempfile.mkdtemp(prefix="aimctl-bench-steady-"))
    print(f"logs in {workdir}", flush=True)
    results: list[SteadyResult] = []
    async with Bench(plane) as bench:
        machine = machine_info(await bench.versions())
        for kind in args.peers:
            r = await restart_once(bench, kind, args.n, settings, workdir, args.idle)
            results.append(r)
            print(
                f"{kind}: converge {fmt_seconds(r.converge_seconds)}, shutdown "
                f"{fmt_seconds(r.shutdown_seconds)} (exit {r.exit_code}), ready "
                f"{fmt_seconds(r.ready_seconds)}, resync {fmt_seconds(r.resync_seconds)}, "
                f"writes {r.write_total} {r.writes}, reads {sum(r.reads.values())}, peak RSS "
                f"{fmt_bytes(r.peak_rss)}, CPU {r.cpu_seconds:.1f}s, idle "
                f"{sum(r.idle_requests.values())} requests {r.idle_cpu_percent:.1f}% CPU",
                flush=True,
            )
        machine["load after"] = load_now()
        (workdir / "steady.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
        report = render(results, machine, settings)
        if not args.no_write:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            (RESULTS_DIR / "steady.md").write_text(report)
        print()
        print(report)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.steady",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--peers", nargs="+", choices=OPERATORS, default=list(OPERATORS))
    parser.add_argument("--idle", type=float, default=30.0, help="idle seconds measured")
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting envtest")
    parser.add_argument("--aimctl-workers", type=int, default=PeerSettings.aimctl_workers)
    parser.add_argument("--kopf-workers", type=int, default=PeerSettings.kopf_workers)
    parser.add_argument("--no-write", action="store_true", help="do not write docs/bench-results")
    args = parser.parse_args(argv)
    with control_plane(args.kubeconfig) as plane:
        asyncio.run(run(args, plane))
    return 0


if __name__ == "__main__":
    sys.exit(main())
