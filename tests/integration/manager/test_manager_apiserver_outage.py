"""A leading manager process (``leader_app.py``) while its kube-apiserver is killed or frozen.

- Shorter than the renew deadline: the leader keeps the lease (same holder, no transition), its
  process keeps running, and it reconciles again once the server is back.
- Longer than the renew deadline: the leader holds on until the deadline, then steps down
  cleanly: controllers stopped, the process exits 6 (``LeaderElectionLost``, as ``aimctl run``;
  controller-runtime's manager returns "leader election lost" and the binary exits non-zero).

"Killed" is SIGKILL then a restart on the same port (connections refused meanwhile);
"frozen" is SIGSTOP then SIGCONT (connections hang: a renewal must be cut at the deadline).
The control plane is private to this module: these tests take its apiserver away.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimctl.envtest import ControlPlane
from aimctl.envtest.pytest_plugin import private_control_plane

APP = Path(__file__).with_name("leader_app.py")
EXIT_LEADERSHIP_LOST = 6


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    with private_control_plane() as cp:
        yield cp


@pytest.fixture
def ns(plane: ControlPlane) -> Iterator[str]:
    name = plane.create_namespace(prefix="outage-")
    yield name
    plane.delete_namespace(name)


class LeaderProcess:
    def __init__(
        self, cp: ControlPlane, ns: str, tmp: Path, *, lease: int, renew: float, retry: float
    ) -> None:
        self.cp, self.ns = cp, ns
        self.out = tmp / "reconciles.jsonl"
        self.log_path = tmp / "a.log"
        self.renew, self.retry = renew, retry
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(APP),
                    str(cp.kubeconfig),
                    ns,
                    "a",
                    str(self.out),
                    *(str(v) for v in (lease, renew, retry)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lease(self) -> dict[str, Any]:
        lease = self.cp.client().request(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{self.ns}/leases/leader-test"
        )
        spec: dict[str, Any] = lease["spec"]
        return spec

    def create_configmap(self, name: str) -> None:
        self.cp.client().create(
            f"/api/v1/namespaces/{self.ns}/configmaps",
            {"metadata": {"name": name}, "data": {"k": "v"}},
        )

    def wait_reconciled(self, name: str, timeout: float) -> None:
        wait_until(lambda: any(r["key"] == name for r in self.records()), timeout, name)

    def lead(self) -> None:
        """Wait until it leads and reconciles."""
        self.create_configmap("first")
        self.wait_reconciled("first", 60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_until(cond: Any, timeout: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.1)


def apiserver_pid(cp: ControlPlane) -> int:
    return next(p.pid for p in cp.processes if "apiserver" in p.name)


def take_away(cp: ControlPlane, how: str) -> None:
    if how == "killed":
        cp.kill_apiserver()
    else:
        os.kill(apiserver_pid(cp), signal.SIGSTOP)


def bring_back(cp: ControlPlane, how: str) -> None:
    if how == "killed":
        cp.start_apiserver()
    else:
        os.kill(apiserver_pid(cp), signal.SIGCONT)
    wait_until(lambda: cp.client().ok("/readyz"), 60, "apiserver ready")


@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_leader_keeps_the_lease_through_an_outage_shorter_than_the_renew_deadline(
    plane: ControlPlane, ns: str, tmp_path: Path, how: str
) -> None:
    # A restarted apiserver takes seconds to become ready on a loaded machine: the killed
    # variant gets a long deadline; the frozen one resumes at once.
    renew, retry = (30.0, 2.0) if how == "killed" else (8.0, 1.0)
    app = LeaderProcess(plane, ns, tmp_path, lease=int(renew) + 10, renew=renew, retry=retry)
    try:
        app.lead()
        before = app.lease()
        away = time.monotonic()
        take_away(plane, how)
        time.sleep(3 * retry if how == "killed" else renew / 2)  # several renewals fail
        bring_back(plane, how)
        outage = time.monotonic() - away
        print(f"apiserver {how} for {outage:.1f}s (renew deadline {renew}s)")
        assert outage < renew - retry, "the outage was not shorter than the renew deadline"
        assert app.proc.poll() is None, f"the leader exited:\n{app.log()[-3000:]}"

        wait_until(lambda: app.lease()["renewTime"] != before["renewTime"], renew, "renewal")
        after = app.lease()
        assert after["holderIdentity"] == "a"
        assert after["leaseTransitions"] == before["leaseTransitions"]
        app.create_configmap("after-outage")
        app.wait_reconciled("after-outage", 60)
        assert app.proc.poll() is None
        log = app.log()
        assert "Failed to acquire or renew the leader lease" in log or how == "frozen"
        assert "Leader lease lost" not in log
    finally:
        app.stop()
    assert app.proc.returncode == 0, app.log()[-3000:]


@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_leader_steps_down_when_the_outage_outlasts_the_renew_deadline(
    plane: ControlPlane, ns: str, tmp_path: Path, how: str
) -> None:
    renew, retry = 4.0, 1.0
    app = LeaderProcess(plane, ns, tmp_path, lease=6, renew=renew, retry=retry)
    try:
        app.lead()
        away = time.monotonic()
        take_away(plane, how)
        try:
            code = app.proc.wait(timeout=renew + 20)
            exited = time.monotonic() - away
        finally:
            bring_back(plane, how)
        print(f"apiserver {how}: leader exited {exited:.1f}s later (renew deadline {renew}s)")
        log = app.log()
        assert code == EXIT_LEADERSHIP_LOST, log[-3000:]
        # It held on until the deadline (counted from its last renewal, at most one retry
        # period before the outage), then stopped at once.
        assert renew - retry - 0.5 <= exited < renew + 10
        assert "Leader lease lost" in log
        assert "All workers finished" in log
        assert "Manager stopped" in log
    finally:
        app.stop()
