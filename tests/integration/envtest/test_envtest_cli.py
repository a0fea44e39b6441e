"""Acceptance: `aimctl cluster up --full` then `aimctl cluster down` leaves no process and no
listening port behind; the pinned kubectl works against DIR/kubeconfig in between."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from aimctl.envtest import find_assets
from aimctl.envtest._state import read_state, stop_detached

COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]


def _aimctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aimctl", "cluster", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _listening(pids: set[int]) -> set[int]:
    return {
        c.laddr.port
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


def _listen_ports(ports: set[int]) -> set[int]:
    return {
        c.laddr.port
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    }


def test_cluster_up_full_then_down_leaves_nothing(tmp_path: Path) -> None:
    find_assets(full=True)  # a clear error, not a CLI failure, when binaries are missing
    directory = tmp_path / "cluster"
    try:
        up = _aimctl("up", "--full", "--dir", str(directory))
        assert up.returncode == 0, up.stderr + up.stdout
        assert f"export KUBECONFIG={directory / 'kubeconfig'}" in up.stdout
        state = read_state(directory)
        assert state is not None
        assert [p.name for p in state.processes] == COMPONENTS
        pids = {p.pid for p in state.processes}
        # The processes outlived the command that started them.
        assert all(_running(pid) for pid in pids)
        ports = _listening(pids)
        assert ports
        assert all(
            c.laddr.ip == "127.0.0.1"
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids
        )
        kubectl = find_assets().path("kubectl")
        nodes = subprocess.run(
            [
                str(kubectl),
                "--kubeconfig",
                str(directory / "kubeconfig"),
                "get",
                "nodes",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert nodes.stdout.strip() == "node/kwok-node-0"
        again = _aimctl("up", "--dir", str(directory))
        assert again.returncode != 0
        assert "already running" in again.stderr

        down = _aimctl("down", "--dir", str(directory))
        assert down.returncode == 0, down.stderr
        assert not [pid for pid in pids if _running(pid)]
        assert not _listen_ports(ports)
        assert sorted(p.name for p in directory.iterdir()) == ["logs"]
    finally:
        stop_detached(directory)
