"""The registry-free images in a real containerd: imported under every reference, and runnable
with runc (Debian's redis-server serving as uid 999, the busybox commands local-path-provisioner's
helper runs, the client image's default command, the static pause binary).

A throwaway containerd with :func:`aimctl.envtest._containerd.containerd_config` keeps its root
and state in ``tmp_path`` and its socket under a short ``/tmp`` directory (unix socket addresses
are limited to 107 bytes). Needs root (containerd, overlayfs mounts, runc).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aimctl.envtest._containerd import containerd_config
from aimctl.envtest._images import (
    BUSYBOX_IMAGE,
    PAUSE_IMAGE,
    REDIS_CLIENT_IMAGE,
    Image,
    ImageImportFailed,
    build_images,
    import_images,
)

REPO = Path(__file__).resolve().parents[3]
PAUSE_SOURCE = REPO / "hack" / "real-node" / "pause.c"
REDIS_REFERENCES = ("docker.io/library/redis:7.2.12", "docker.io/library/redis:7.0")

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0, reason="containerd, overlayfs and runc need root (run as root)"
    ),
    pytest.mark.skipif(
        not all(shutil.which(b) for b in ("containerd", "ctr", "runc", "gcc")),
        reason="needs containerd, runc and gcc: run `bash hack/real-node.sh`",
    ),
]

# Used only when hack/real-node/pause.c (the node build's source) is not in the tree.
_FALLBACK_PAUSE = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
static void quit(int s) { (void)s; _exit(0); }
int main(void) {
    signal(SIGCHLD, reap); signal(SIGINT, quit); signal(SIGTERM, quit);
    for (;;) pause();
}
"""


@dataclass(frozen=True)
class Containerd:
    address: Path
    # cgroup parent of the containers the tests run, removed (empty) on teardown
    cgroup_parent: str

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.address), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run(self, image: str, *command: str) -> str:
        """``ctr run --rm`` one container to completion; its output (stdout + stderr)."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        result = self.ctr(
            "run", "--rm", "--cgroup", f"{self.cgroup_parent}/{name}", image, name, *command
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr


def _mounts_under(*roots: Path) -> list[str]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # "\040" is a space
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            found.append(point)
    return found


def _shims_of(address: Path) -> list[int]:
    """The shims this containerd started (their command line names its address)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"containerd-shim" in argv[0] and str(address).encode() in argv:
            pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    base = tmp_path_factory.mktemp("containerd")
    root, state = base / "root", base / "state"
    socket_dir = Path(tempfile.mkdtemp(prefix="ctd-", dir="/tmp"))
    address = socket_dir / "c.sock"
    config = base / "config.toml"
    config.write_text(containerd_config(root, state, address, base / "net.d"))
    log = (base / "containerd.log").open("wb")
    process = subprocess.Popen(
        ["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    handle = Containerd(address, f"/aimctl-images-test-{uuid.uuid4().hex[:8]}")
    try:
        deadline = time.monotonic() + 60
        while handle.ctr("version", timeout=10).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"containerd did not serve {address}:\n{(base / 'containerd.log').read_text()}"
                )
            time.sleep(0.1)
        yield handle
    finally:
        for pid in _shims_of(address):
            os.kill(pid, signal.SIGKILL)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        for point in reversed(_mounts_under(root, state)):
            subprocess.run(["umount", "-l", point], check=False)
        leftover = _mounts_under(root, state)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            cgroup = hierarchy / handle.cgroup_parent.lstrip("/")
            if cgroup.is_dir():
                for child in cgroup.iterdir():  # left by a container that was not removed
                    if child.is_dir():
                        child.rmdir()
                cgroup.rmdir()
        shutil.rmtree(socket_dir, ignore_errors=True)
        if not leftover:
            shutil.rmtree(base, ignore_errors=True)
        assert not leftover, f"mounts left under {base}: {leftover}"


@pytest.fixture(scope="module")
def pause_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pause")
    source = PAUSE_SOURCE
    if not source.is_file():
        source = out / "pause.c"
        source.write_text(_FALLBACK_PAUSE)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out / "pause"), str(source)], check=True)
    return out / "pause"


@pytest.fixture(scope="module")
def images(
    containerd: Containerd, pause_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Image]:
    built = build_images(
        tmp_path_factory.mktemp("images"),
        pause_binary=pause_binary,
        redis_references=REDIS_REFERENCES,
    )
    import_images("ctr", containerd.address, built)
    return built


def test_every_reference_is_listed_after_import(
    containerd: Containerd, images: list[Image]
) -> None:
    listed = containerd.ctr("images", "ls", "-q").stdout.split()
    for reference in (PAUSE_IMAGE, REDIS_CLIENT_IMAGE, BUSYBOX_IMAGE, *REDIS_REFERENCES):
        assert reference in listed
    # Unpacked for the overlayfs snapshotter (the CRI's), so the kubelet never unpacks.
    check = containerd.ctr("images", "check").stdout
    assert "complete" in check and "incomplete" not in check
    snapshots = containerd.ctr("snapshots", "--snapshotter", "overlayfs", "ls").stdout
    assert len(snapshots.splitlines()) - 1 >= 4  # one committed layer per image


def test_importing_again_is_harmless(containerd: Containerd, images: list[Image]) -> None:
    import_images("ctr", containerd.address, images)


def test_redis_image_runs_debian_redis(containerd: Containerd, images: list[Image]) -> None:
    host = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=True
    ).stdout
    for reference in REDIS_REFERENCES:
        assert containerd.run(reference, "redis-server", "--version") == host
    assert "redis-cli 7.0.15" in containerd.run(REDIS_REFERENCES[0], "redis-cli", "--version")


def test_redis_image_serves_and_persists_as_uid_999(
    containerd: Containerd, images: list[Image]
) -> None:
    script = (
        "id -u; redis-server --port 6380 --save '' >/dev/null &"
        " until redis-cli -p 6380 ping 2>/dev/null; do sleep 0.1; done;"
        " redis-cli -p 6380 set k v >/dev/null; redis-cli -p 6380 save; ls -n /data"
    )
    out = containerd.run(REDIS_REFERENCES[0], "sh", "-c", script)
    lines = out.splitlines()
    assert lines[0] == "999"  # the image's User
    assert "PONG" in lines and "OK" in lines
    assert any(line.split()[2:4] == ["999", "999"] and "dump.rdb" in line for line in lines)


def test_busybox_image_runs_the_provisioner_helper(
    containerd: Containerd, images: list[Image]
) -> None:
    # local-path-provisioner's helper pod runs `sh /script/setup` with mkdir/rm/chmod.
    script = "mkdir -m 0777 -p /tmp/pv/a && chmod 0700 /tmp/pv/a && rm -rf /tmp/pv && echo done"
    assert containerd.run(BUSYBOX_IMAGE, "sh", "-c", script).strip() == "done"


def _start_detached(containerd: Containerd, image: str) -> str:
    name = f"d-{uuid.uuid4().hex[:12]}"
    cgroup = f"{containerd.cgroup_parent}/{name}"
    result = containerd.ctr("run", "-d", "--cgroup", cgroup, image, name)
    assert result.returncode == 0, result.stderr
    return name


def _status(containerd: Containerd, name: str) -> str:
    for line in containerd.ctr("tasks", "ls").stdout.splitlines()[1:]:
        task, _pid, status = line.split()
        if task == name:
            return status
    return "MISSING"


def _stop(containerd: Containerd, name: str, sig: str) -> str:
    """Signal the task, wait for it to stop, remove it; its final status."""
    containerd.ctr("tasks", "kill", "-s", sig, name)
    deadline = time.monotonic() + 30
    while (status := _status(containerd, name)) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    containerd.ctr("tasks", "delete", "-f", name)
    containerd.ctr("containers", "delete", name)
    return status


def test_client_image_sleeps_by_default(containerd: Containerd, images: list[Image]) -> None:
    name = _start_detached(containerd, REDIS_CLIENT_IMAGE)
    try:
        time.sleep(1)  # `sleep infinity` must still be running, not have failed at once
        assert _status(containerd, name) == "RUNNING"
        out = containerd.ctr("tasks", "exec", "--exec-id", "x", name, "redis-cli", "--version")
        assert "redis-cli 7.0.15" in out.stdout
    finally:
        _stop(containerd, name, "SIGKILL")


def test_pause_image_runs_until_terminated(containerd: Containerd, images: list[Image]) -> None:
    name = _start_detached(containerd, PAUSE_IMAGE)
    try:
        time.sleep(1)
        assert _status(containerd, name) == "RUNNING"
    finally:
        assert _stop(containerd, name, "SIGTERM") == "STOPPED"


def test_import_failure_carries_ctrs_error(
    containerd: Containerd, images: list[Image], tmp_path: Path
) -> None:
    broken = Image(references=("aimctl.local/broken:1",), archive=tmp_path / "broken.tar")
    broken.archive.write_bytes(b"not a tar archive")
    with pytest.raises(ImageImportFailed, match=r"broken\.tar.* exited \d+: ctr: .+"):
        import_images("ctr", containerd.address, [broken])
    with pytest.raises(ImageImportFailed, match="no containerd socket at"):
        import_images("ctr", tmp_path / "nothing.sock", images)
