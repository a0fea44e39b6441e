"""Acceptance (issue #7): ``make dev`` brings up the playground and ``make dev-down`` leaves
nothing running.

``make dev`` is ``make install control-plane`` then ``aimctl dev up --dir $(DEV_DIR)``
(tests/unit/ship/test_ship_make.py checks that wiring); this runs the command itself, from the
working tree with a fresh DEV_DIR, as a fresh clone would (uncommitted work cannot be cloned).
``install`` is left out: it would reinstall the shared virtualenv. The operator's ports are
chosen free ones instead of 8080/8081, which something else on the machine may hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from aimctl.cli._dev_operator import STATE_FILE
from aimctl.envtest import KWOK_PROVISIONER, find_assets, read_state, stop_detached
from aimctl.envtest._ports import free_ports
from aimctl.envtest._state import read_records

from .ship_env import dev_up_args

pytestmark = pytest.mark.full

CLUSTER = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]


def aimctl(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aimctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def recorded_pids(directory: Path) -> dict[str, int]:
    pids = {}
    state = read_state(directory / "cluster")
    if state is not None:
        pids.update({p.name: p.pid for p in state.processes})
    pids.update({p.name: p.pid for p in read_records(directory / STATE_FILE)})
    return pids


def running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def listening(pids: set[int], ports: set[int]) -> set[int]:
    return {
        c.laddr.port
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and (c.pid in pids or c.laddr.port in ports)
    }


def kubectl_json(kubeconfig: Path, *args: str) -> Any:
    out = subprocess.run(
        [str(find_assets(full=True).path("kubectl")), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_dev_up_twice_then_down_leaves_nothing(tmp_path: Path) -> None:
    assets = find_assets(full=True)  # a clear error, not a CLI failure, without binaries
    directory = tmp_path / "dev"
    metrics, health = free_ports(2)
    up_args = dev_up_args(directory, metrics, health)
    pids: dict[str, int] = {}
    try:
        up = aimctl(*up_args)
        assert up.returncode == 0, up.stdout + up.stderr
        pids = recorded_pids(directory)
        assert sorted(pids) == sorted([*CLUSTER, "operator"])  # one kwok: the cluster's
        assert all(running(pid) for pid in pids.values()), pids

        # What it prints: the table, then how to use the cluster with the pinned kubectl.
        kubeconfig = directory / "cluster" / "kubeconfig"
        out = up.stdout
        assert "$ kubectl get aimkvcache,aimservice -A -o wide" in out
        assert "aimkvcache.aim.silogen.ai/shared-cache   redis   Ready" in out
        assert f"export KUBECONFIG={kubeconfig}" in out
        assert f"export PATH={assets.path('kubectl').parent}:$PATH" in out
        assert "make dev-down" in out
        assert (directory / "operator.log").is_file()

        # The guide's state: the shared cache on fast-ssd, both services using it.
        fast_ssd = kubectl_json(kubeconfig, "get", "storageclass", "fast-ssd", "-o", "json")
        assert fast_ssd["provisioner"] == KWOK_PROVISIONER
        assert fast_ssd["allowVolumeExpansion"] is True
        cache = kubectl_json(
            kubeconfig, "get", "aimkvcache", "shared-cache", "-n", "ml-team", "-o", "json"
        )
        assert cache["status"]["status"] == "Ready"
        pvc = kubectl_json(
            kubeconfig,
            "get",
            "pvc",
            "redis-data-shared-cache-statefulset-0",
            "-n",
            "ml-team",
            "-o",
            "json",
        )
        assert pvc["spec"]["storageClassName"] == "fast-ssd"
        assert pvc["status"]["phase"] == "Bound"
        services = kubectl_json(kubeconfig, "get", "aimservices", "-n", "ml-team", "-o", "json")
        for svc in services["items"]:
            kv = next(c for c in svc["status"]["conditions"] if c["type"] == "KVCacheReady")
            assert (svc["metadata"]["name"], kv["status"]) in {
                ("llama-chat", "True"),
                ("llama-completion", "True"),
            }

        # Idempotent: a second `up` reuses every process and re-applies nothing.
        again = aimctl(*up_args)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "cluster: reusing" in again.stdout
        assert f"operator: running (pid {pids['operator']})" in again.stdout
        assert "samples: applied earlier" in again.stdout
        assert recorded_pids(directory) == pids

        down = aimctl("dev", "down", "--dir", str(directory))
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopped operator, kwok" in down.stdout
    finally:
        aimctl("dev", "down", "--dir", str(directory), timeout=120)
        stop_detached(directory / "cluster")

    assert not [name for name, pid in pids.items() if running(pid)]
    assert not listening(set(pids.values()), {metrics, health})
    leftovers = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if str(directory) in " ".join(p.info["cmdline"] or []) and running(p.info["pid"])
    ]
    assert not leftovers
    assert (directory / "operator.log").is_file()  # logs stay for post-mortems
    assert not (directory / STATE_FILE).exists()
