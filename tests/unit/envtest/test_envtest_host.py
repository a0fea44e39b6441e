"""The real node's host record and claim (aimctl.envtest._host), without a node: the claim is
refused while the holder's processes run, and a dead holder is cleaned up and replaced."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimctl.envtest import _host
from aimctl.envtest._host import HostBusy, HostRecord, claim_host, node_processes


@pytest.fixture
def claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "claim.json"
    monkeypatch.setattr(_host, "CLAIM", path)
    return path


def _record(node_dir: Path) -> HostRecord:
    return HostRecord(
        node_dir=str(node_dir),
        cgroup_root="",
        bridge="aimctl-test-none",
        cni_network="",
        pod_cidr="10.255.255.0/24",
        containerd_socket=str(node_dir / "c.sock"),
        kube_proxy="",
        sysctls={},
    )


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line names the holder's node directory, as each component's does."""
    node_dir = tmp_path / "a" / "node"
    node_dir.mkdir(parents=True)
    # Named like a node component (a shell under the name "kubelet"; `; :` keeps it from
    # exec-ing sleep), with the node directory on its command line.
    kubelet = tmp_path / "kubelet"
    kubelet.symlink_to("/bin/sh")
    process = subprocess.Popen([str(kubelet), "-c", "sleep 60; :", f"{node_dir}/config"])
    yield process
    process.kill()
    process.wait()


def _listed(
    process: subprocess.Popen[bytes], node_dir: Path, *, components_only: bool = False
) -> list[int]:
    """``node_processes`` once it lists ``process`` (or after 10 s): on a loaded machine a just
    started process has been missing from the scan (CI, twice in a run); the assertion then
    also names whether it is still alive."""
    deadline = time.monotonic() + 10
    while True:
        found = node_processes(node_dir, components_only=components_only)
        if process.pid in found or time.monotonic() > deadline:
            if process.pid not in found:
                cmdline = (
                    Path(f"/proc/{process.pid}/cmdline").read_bytes()
                    if Path(f"/proc/{process.pid}").exists()
                    else b"(gone)"
                )
                state = f"returncode {process.poll()}, cmdline {cmdline!r}"
                raise AssertionError(f"pid {process.pid} not listed: {state}")
            return found
        time.sleep(0.05)


def test_record_round_trips(tmp_path: Path) -> None:
    record = _record(tmp_path)
    record.write()
    assert HostRecord.read(tmp_path) == record
    assert HostRecord.read(tmp_path / "missing") is None


def test_a_live_holder_blocks_a_second_node(
    claim: Path, holder: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    first, second = tmp_path / "a" / "node", tmp_path / "b" / "node"
    claim_host(first)
    # (the shell's forked child shares its command line until it execs sleep)
    assert holder.pid in _listed(holder, first, components_only=True)
    with pytest.raises(HostBusy, match=str(first)):
        claim_host(second)
    assert json.loads(claim.read_text()) == {"node_dir": str(first)}
    claim_host(first)  # the holder itself may claim again (a restart in the same directory)


def test_a_holder_with_only_shims_left_is_dead(
    claim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    undone: list[HostRecord] = []
    monkeypatch.setattr(_host, "restore_host", undone.append)
    first, second = tmp_path / "a" / "node", tmp_path / "b" / "node"
    first.mkdir(parents=True)
    shim = tmp_path / "containerd-shim-runc-v2"
    shim.symlink_to("/bin/sh")
    process = subprocess.Popen([str(shim), "-c", "sleep 60; :", f"{first}/c.sock"])
    try:
        claim_host(first)
        _record(first).write()
        assert process.pid in _listed(process, first)  # a leftover, not a running node
        claim_host(second)
        assert undone == [_record(first)]
    finally:
        process.kill()
        process.wait()


def test_a_dead_holder_is_undone_and_replaced(
    claim: Path,
    holder: subprocess.Popen[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Undoing touches the host (iptables, sysctls): the node tests run it for real
    # (tests/integration/nodecli); here only that it is asked for.
    undone: list[HostRecord] = []
    monkeypatch.setattr(_host, "restore_host", undone.append)
    first, second = tmp_path / "a" / "node", tmp_path / "b" / "node"
    claim_host(first)
    _record(first).write()
    holder.kill()
    holder.wait()
    claim_host(second)
    assert json.loads(claim.read_text()) == {"node_dir": str(second)}
    assert undone == [_record(first)]


def test_mount_points_are_read_unescaped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "1 0 0:1 / / rw - ext4 /dev/vda rw\n"
        "2 1 0:2 / /x/node/a\\040b rw - tmpfs tmpfs rw\n"
        "3 2 0:3 / /x/node/a\\040b/c rw - tmpfs tmpfs rw\n"
        "4 1 0:4 / /x/nodes rw - tmpfs tmpfs rw\n"
    )
    real = Path

    def fake(path: str) -> Path:
        return info if path == "/proc/self/mountinfo" else real(path)

    monkeypatch.setattr(_host, "Path", fake)
    assert _host._mounts_under("/x/node") == ["/x/node/a b/c", "/x/node/a b"]
