"""SIGKILL the leading ``aimctl run`` in the middle of a converge; the standby finishes the job.

Injected: two real operator processes (``aimctl run --leader-elect``, the CLI's own lease timings:
15 s lease, 10 s renew deadline, 2 s retry) share one Lease. N caches are applied; once the
leader has created some StatefulSets (and not all), it is SIGKILLed.

Asserted: the standby acquires the lease (after the lease expires: the killed leader cannot
release it) and every cache converges; the standby did no reconcile work while the leader was
alive, and reconcile activity of the two processes never overlaps in time (from each process's
JSON logs: every line logged inside a reconcile carries ``controller``, ``name``,
``reconcileID`` and a timestamp); the Lease's holder, polled every 100 ms, changes exactly once,
from the leader to the standby. No child is duplicated.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aimctl.client import RestClient
from aimctl.envtest import ApiError, ControlPlane
from aimctl.envtest.pytest_plugin import ControlPlaneFactory

from .reliability_kit import CRDS, apply_all, audit, cache_manifest, eventually, report

LEASE_DURATION = 15.0  # the CLI's (controller-runtime's) default


@dataclass
class OperatorProcess:
    """One ``aimctl run`` and its JSON log."""

    label: str
    log: Path
    proc: subprocess.Popen[bytes]

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    continue
        return out

    def first(self, event: str) -> dict[str, Any] | None:
        return next((r for r in self.lines() if r.get("event") == event), None)

    def identity(self) -> str | None:
        line = self.first("Successfully acquired lease")
        return str(line["identity"]) if line else None

    def reconcile_times(self) -> list[float]:
        """Wall-clock times of the lines logged inside a reconcile."""
        return sorted(_ts(r) for r in self.lines() if "reconcileID" in r)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _ts(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")).timestamp()


def _start(cp: ControlPlane, ns: str, lease: str, label: str, tmp: Path) -> OperatorProcess:
    log = tmp / f"operator-{label}.log"
    argv = [
        sys.executable,
        "-m",
        "aimctl",
        "run",
        "--kubeconfig",
        str(cp.kubeconfig),
        "--namespace",
        ns,
        "--leader-elect",
        "--leader-election-namespace",
        ns,
        "--leader-election-id",
        lease,
        "--log-format",
        "json",
        "--metrics-bind-address",
        "0",
        "--health-probe-bind-address",
        "0",
        "--graceful-shutdown-timeout",
        "5",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_die_with_parent,
        )
    return OperatorProcess(label, log, proc)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """No orphaned operator if the test process itself is killed (SIGKILL, OOM)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class LeasePoller:
    """The Lease's holder every 100 ms (a thread, so a busy event loop cannot skew it)."""

    cp: ControlPlane
    namespace: str
    name: str
    history: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client = self.cp.client()
        path = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"
        while not self._stop.is_set():
            try:
                lease = client.request("GET", path)
                holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
                self.history.append((time.time(), holder))
            except ApiError:
                pass
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def holders(self) -> list[str]:
        """Distinct consecutive holders, in order."""
        out: list[str] = []
        for _, h in self.history:
            if not out or out[-1] != h:
                out.append(h)
        return out


async def _live_statefulsets(rest: RestClient, ns: str) -> int:
    page = await rest.request("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets")
    return len(page.get("items") or [])


async def _failover(
    factory: ControlPlaneFactory, tmp: Path, test: str, *, n: int, replicas: int, kills: int
) -> None:
    # A private plane: the session plane's /24 Service range is shared with other tests.
    cp = factory(apiserver_args={"service-cluster-ip-range": "10.0.0.0/16"})
    await asyncio.to_thread(cp.install_crds, CRDS)
    ns = await asyncio.to_thread(cp.create_namespace, None, prefix="rel-leader-")
    lease = "rel-leader"
    poller = LeasePoller(cp, ns, lease)
    poller.start()
    procs = [_start(cp, ns, lease, chr(ord("a") + i), tmp) for i in range(replicas)]
    kill_times: list[float] = []
    killed: list[OperatorProcess] = []
    progress: list[int] = []
    failovers: list[float] = []
    try:
        async with await RestClient.from_kubeconfig(str(cp.kubeconfig)) as rest:

            async def all_synced() -> bool:
                for p in procs:
                    assert p.proc.poll() is None, f"operator {p.label} exited: {p.log.read_text()}"
                return all(p.first("Caches synced") for p in procs) and any(
                    p.identity() for p in procs
                )

            await eventually(all_synced, within=120, what="operators started, one leading")
            t0 = time.monotonic()
            await apply_all(rest, (cache_manifest(f"cache-{i:04d}", ns) for i in range(n)))
            for k in range(kills):
                leader = next(p for p in procs if p not in killed and p.identity())
                # Mid-converge: some StatefulSets exist, not all.
                floor = max(1, n * (k + 1) // (kills + 4))

                async def started(floor: int = floor) -> bool:
                    return await _live_statefulsets(rest, ns) >= floor

                await eventually(started, within=120, interval=0.1, what=f"{floor} StatefulSets")
                leader.proc.send_signal(signal.SIGKILL)
                leader.proc.wait()
                kill_times.append(time.time())
                killed.append(leader)
                progress.append(await _live_statefulsets(rest, ns))
                assert progress[-1] < n, "the converge finished before the leader was killed"

                async def elected() -> OperatorProcess | None:
                    return next(
                        (p for p in procs if p not in killed and p.identity() is not None), None
                    )

                successor = await eventually(
                    elected, within=LEASE_DURATION * 4, interval=0.2, what="a new leader"
                )
                acquired = successor.first("Successfully acquired lease")
                assert acquired is not None
                failovers.append(_ts(acquired) - kill_times[-1])

            async def converged() -> bool:
                return (await audit(rest, ns)).complete(n)

            await eventually(converged, within=300, interval=1.0, what=f"{n} caches converged")
            done = time.monotonic() - t0
            final = await audit(rest, ns)
    finally:
        for p in procs:
            p.stop()
        poller.stop()

    # Reconcile activity per process: who reconciled, and when.
    spans = {p.label: (min(ts), max(ts)) for p in procs if (ts := p.reconcile_times())}
    order = sorted(spans.items(), key=lambda kv: kv[1][0])
    overlaps = [
        (a, b)
        for (a, (_, end_a)), (b, (start_b, _)) in itertools.pairwise(order)
        if end_a > start_b
    ]
    holders = [h for h in poller.holders() if h]
    identities = {p.identity(): p.label for p in procs if p.identity()}
    figures = {
        "objects": n,
        "replicas": replicas,
        "leader_kills": kills,
        "progress_at_kill": progress,
        "failover_s": [round(f, 1) for f in failovers],
        "lease_duration_s": LEASE_DURATION,
        "converge_s": round(done, 1),
        "objects_lost": n - final.converged,
        "duplicate_children": len(final.duplicates),
        "reconcile_spans": {
            k: [round(s - order[0][1][0], 2), round(e - order[0][1][0], 2)] for k, (s, e) in order
        },
        "overlaps": len(overlaps),
        "lease_holders": [identities.get(h, h) for h in holders],
        "lease_polls": len(poller.history),
    }
    report(test, figures)
    assert final.complete(n) and not final.orphans
    assert not overlaps, f"two processes reconciled at the same time: {overlaps}"
    for p, t in zip(killed, kill_times, strict=True):
        assert spans[p.label][1] <= t, f"{p.label} logged a reconcile after it was killed"
    # Each successor did nothing before it acquired the lease.
    for p in procs:
        acquired = p.first("Successfully acquired lease")
        if p.label in spans:
            assert acquired is not None and spans[p.label][0] >= _ts(acquired)
    assert [identities.get(h) for h in holders] == [label for label, _ in order], (
        "the lease changed hands other than killed leader -> standby"
    )
    assert len(holders) == kills + 1


async def test_leader_sigkilled_mid_converge_standby_finishes(
    control_plane_factory: ControlPlaneFactory, tmp_path: Path
) -> None:
    await _failover(control_plane_factory, tmp_path, "leader_kill", n=150, replicas=2, kills=1)


@pytest.mark.slow
async def test_leaders_sigkilled_twice_during_a_500_object_converge(
    control_plane_factory: ControlPlaneFactory, tmp_path: Path
) -> None:
    await _failover(
        control_plane_factory, tmp_path, "leader_kill_500x2", n=500, replicas=3, kills=2
    )
