"""``aimctl cluster up --full --real-node`` / ``cluster down``: the real node leaves nothing on
the host (no process, mount, bridge, network namespace, iptables rule, cgroup or changed
sysctl), one real node per host, and a crashed node's leftovers do not block the next one.

Its own package, after tests/integration/node: the host takes one real node at a time, and that
package's cluster is gone once its tests are done.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimctl.envtest import (
    ControlPlane,
    HostBusy,
    find_assets,
    read_state,
    real_pod_scheduling,
    run_kubectl,
)
from aimctl.envtest._host import CLAIM, HostRecord, leftovers, node_processes, read_sysctls
from aimctl.envtest._images import BUSYBOX_IMAGE

pytestmark = [pytest.mark.integration, pytest.mark.full]


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    # Short: the containerd socket lives under it (unix socket paths are limited to 107 bytes).
    directory = Path(tempfile.mkdtemp(prefix="aimctl-nodecli-", dir="/tmp"))
    yield directory
    _aimctl("cluster", "down", "--dir", str(directory), check=False)
    shutil.rmtree(directory, ignore_errors=True)


def _aimctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "aimctl", *args], capture_output=True, text=True, timeout=300
    )
    if check and done.returncode != 0:
        raise AssertionError(f"aimctl {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def _kubectl(directory: Path, *args: str, input: str | None = None) -> str:
    kubectl = find_assets(full=True).path("kubectl")
    return run_kubectl(kubectl, directory / "kubeconfig", *args, input=input).stdout


def _workload(directory: Path) -> None:
    """A pod on the real node with what makes mounts: a claim (a local-path directory), a
    projected token and a Secret (tmpfs), and a network namespace."""
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "stringData": {"k": "v"},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "writer", "namespace": "default"},
        "spec": {
            **real_pod_scheduling(),
            "containers": [
                {
                    "name": "c",
                    "image": BUSYBOX_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "echo hi > /data/f && sleep 3600"],
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "s", "mountPath": "/s"},
                    ],
                }
            ],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "s", "secret": {"secretName": "s"}},
            ],
        },
    }
    for obj in (claim, secret, pod):
        _kubectl(directory, "apply", "-f", "-", input=json.dumps(obj))
    _kubectl(directory, "wait", "--for=condition=Ready", "pod/writer", "--timeout=120s")


def test_down_leaves_nothing_and_a_second_node_is_refused(cluster_dir: Path) -> None:
    before = read_sysctls()
    _aimctl("cluster", "up", "--full", "--real-node", "--dir", str(cluster_dir))
    _workload(cluster_dir)
    record = HostRecord.read(cluster_dir / "node")
    assert record is not None
    there = leftovers(record)
    assert any(line.startswith("mount ") for line in there), there
    assert any(line.startswith("netns ") for line in there), there
    assert read_sysctls()["net.ipv4.ip_forward"] == "1"
    (volume,) = (cluster_dir / "node" / "volumes").iterdir()
    assert (volume / "f").read_text() == "hi\n"  # the claim is a real directory

    with pytest.raises(HostBusy, match=str(cluster_dir)):
        ControlPlane(full=True, real_node=True, start_timeout=60).start()
    assert node_processes(cluster_dir / "node")  # the refused start touched nothing of ours

    _aimctl("cluster", "down", "--dir", str(cluster_dir))
    assert leftovers(record) == []
    assert read_sysctls() == before
    assert not CLAIM.exists()
    assert sorted(p.name for p in cluster_dir.iterdir()) == ["logs"]


def test_a_crashed_nodes_leftovers_are_undone_by_the_next_one(cluster_dir: Path) -> None:
    before = read_sysctls()
    crashed = Path(tempfile.mkdtemp(prefix="aimctl-crash-", dir="/tmp"))
    try:
        _aimctl("cluster", "up", "--full", "--real-node", "--dir", str(crashed))
        _workload(crashed)
        state = read_state(crashed)
        assert state is not None
        for process in state.processes:  # everything dies at once, nothing cleans up
            os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(p.alive for p in state.processes) and time.monotonic() < deadline:
            time.sleep(0.1)
        record = HostRecord.read(crashed / "node")
        assert record is not None
        assert leftovers(record)  # the containers (shims), mounts, bridge, rules are still there

        _aimctl("cluster", "up", "--full", "--real-node", "--dir", str(cluster_dir))
        # The bridge, rules and sysctls now belong to the new node; the crashed one's own
        # containers, mounts and cgroups are gone.
        left = leftovers(record)
        assert not [line for line in left if line.startswith(("mount", "process", "cgroup"))]
        _aimctl("cluster", "down", "--dir", str(cluster_dir))
        assert read_sysctls() == before
    finally:
        _aimctl("cluster", "down", "--dir", str(crashed), check=False)
        shutil.rmtree(crashed, ignore_errors=True)
