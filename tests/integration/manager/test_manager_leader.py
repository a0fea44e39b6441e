"""Two (then three) manager processes share one lease: exactly one reconciles at any time.

Timings use lease 6 s / renew 4 s / retry 1 s to keep the test short; the guarantees are
relative to those durations (controller-runtime's defaults are 15/10/2 s).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aimctl.envtest import ControlPlane

APP = Path(__file__).with_name("leader_app.py")
LEASE = 6.0


def start(
    cp: ControlPlane, ns: str, identity: str, out: Path, logs: Path
) -> subprocess.Popen[bytes]:
    log = open(logs / f"{identity}.log", "wb")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, str(APP), str(cp.kubeconfig), ns, identity, str(out)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def records(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def wait_until(cond: Any, timeout: float) -> float:
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.1)
    return time.time()


def test_exactly_one_leader_reconciles_and_failover_never_overlaps(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "reconciles.jsonl"
    stop = threading.Event()

    def churn() -> None:  # keep events flowing so whoever leads keeps reconciling
        n = 0
        while not stop.is_set():
            control_plane.kubectl(
                "-n",
                namespace,
                "create",
                "configmap",
                f"churn-{n}",
                "--from-literal=n=1",
                check=False,
            )
            n += 1
            time.sleep(0.2)

    procs = {i: start(control_plane, namespace, i, out, tmp_path) for i in ("a", "b")}
    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    try:
        wait_until(lambda: len(records(out)) >= 10, 60)
        time.sleep(2)
        ids = {r["id"] for r in records(out)}
        assert len(ids) == 1, f"two processes reconciled: {ids}"
        leader = ids.pop()
        standby = "b" if leader == "a" else "a"

        # SIGKILL the leader: the standby must take over within the lease duration (plus one
        # retry period and the time to start its controllers).
        killed_at = time.time()
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait()
        took_over = wait_until(lambda: any(r["id"] == standby for r in records(out)), 3 * LEASE)
        print(f"failover after SIGKILL: {took_over - killed_at:.1f}s (lease {LEASE}s)")
        assert took_over - killed_at < LEASE + 3

        # A third process joins as standby; SIGTERM of the leader hands over within seconds
        # because the lease is released on clean shutdown.
        procs["c"] = start(control_plane, namespace, "c", out, tmp_path)
        time.sleep(4)  # let c sync its caches
        assert not any(r["id"] == "c" for r in records(out))
        termed_at = time.time()
        procs[standby].send_signal(signal.SIGTERM)
        assert procs[standby].wait(timeout=20) == 0
        handed = wait_until(lambda: any(r["id"] == "c" for r in records(out)), 3 * LEASE)
        print(f"handover after SIGTERM: {handed - termed_at:.1f}s")
        assert handed - termed_at < 4
    finally:
        stop.set()
        churner.join(5)
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()

    # Across all processes, reconcile intervals of different identities never overlap.
    rs = sorted(records(out), key=lambda r: r["start"])
    by_id: dict[str, list[tuple[float, float]]] = {}
    for r in rs:
        by_id.setdefault(r["id"], []).append((r["start"], r["end"]))
    spans = {i: (min(s for s, _ in v), max(e for _, e in v)) for i, v in by_id.items()}
    print(
        "leadership spans:",
        {
            i: (round(s - rs[0]["start"], 2), round(e - rs[0]["start"], 2))
            for i, (s, e) in spans.items()
        },
    )
    order = sorted(spans.items(), key=lambda kv: kv[1][0])
    for (_, (_, end_a)), (_, (start_b, _)) in itertools.pairwise(order):
        assert end_a <= start_b, "two leaders reconciled at the same time"
    assert [i for i, _ in order] == [leader, standby, "c"]
