"""What a real node changes on this host, recorded before it changes it, and undone after.

Owns ``<node dir>/host.json`` (:class:`HostRecord`): the node's directory, cgroup root, bridge,
pod range and the sysctl values found before the node started. :func:`restore_host` reads only
that record, so ``aimctl cluster down`` (another process, maybe after a crash) undoes a node it
did not start. Undoing is idempotent and leaves (checked by the node tests):

- no process: everything in the node's cgroups, then every ``containerd-shim`` serving the
  node's containerd socket, is SIGKILLed (a shim lives in its own session: stopping containerd
  does not stop it);
- no mount under the node directory (deepest first; a busy one is detached lazily);
- no network namespace holding an address of the node's pod range, no bridge;
- no ``KUBE-*`` iptables chain (kube-proxy's, removed by ``kube-proxy --cleanup``, and the
  kubelet's canary and firewall chains) in iptables or ip6tables, and no rule of the node's CNI
  network;
- no cgroup under the node's cgroup root;
- every sysctl back at its recorded value: the kubelet sets ``vm.overcommit_memory``,
  ``kernel.panic``, ``kernel.panic_on_oops`` and the key quotas (``setupKernelTunables`` in
  k8s.io/kubernetes pkg/kubelet/cm/container_manager_linux.go); kube-proxy ``route_localnet``;
  the node itself ``ip_forward``.

One real node per host: kube-proxy owns the host's ``KUBE-*`` chains and the sysctls are global,
so :func:`claim_host` refuses a second node while the first one's record names live processes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "HOST_FILE",
    "SYSCTLS",
    "HostBusy",
    "HostRecord",
    "claim_host",
    "leftovers",
    "make_cgroup_root",
    "node_processes",
    "read_sysctls",
    "restore_host",
]

HOST_FILE = "host.json"
# The host-wide claim: which node directory owns the host's real node (see the module docstring).
CLAIM = Path("/run/aimctl-real-node.json")
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
CGROUP_FS = Path("/sys/fs/cgroup")


class HostBusy(RuntimeError):
    """Another real node runs on this host (its directory is in the message)."""


@dataclass(frozen=True)
class HostRecord:
    """Everything :func:`restore_host` needs, written before the node changes anything."""

    node_dir: str
    cgroup_root: str
    bridge: str
    cni_network: str
    pod_cidr: str
    containerd_socket: str
    kube_proxy: str
    sysctls: dict[str, str]

    def write(self) -> None:
        path = Path(self.node_dir) / HOST_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, node_dir: Path) -> HostRecord | None:
        try:
            doc = json.loads((node_dir / HOST_FILE).read_text())
            return cls(**doc)
        except (OSError, ValueError, TypeError):
            return None


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls(names: Iterable[str] = SYSCTLS) -> dict[str, str]:
    """The current values of the sysctls that exist here (a module not loaded has none)."""
    found: dict[str, str] = {}
    for name in names:
        with contextlib.suppress(OSError):
            found[name] = _sysctl_path(name).read_text().strip()
    return found


def _write_sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError):
        path = _sysctl_path(name)
        if path.read_text().strip() != value:
            path.write_text(value + "\n")


# -- the host-wide claim -----------------------------------------------------------------------


def _claim_holder() -> Path | None:
    try:
        doc = json.loads(CLAIM.read_text())
        return Path(doc["node_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claim_host(node_dir: Path) -> None:
    """Record ``node_dir`` as the host's real node.

    A holder none of whose components runs any more (a crashed or killed cluster: its shims and
    containers may still run) has its leftovers undone first, so it does not block the next
    node.

    Raises:
        HostBusy: another directory's node still has a component running.
    """
    holder = _claim_holder()
    if holder is not None and holder != node_dir:
        if node_processes(holder, components_only=True):
            raise HostBusy(
                f"a real node already runs on this host (state in {holder}); one per host, "
                f"since kube-proxy owns the host's KUBE-* iptables chains: stop that cluster "
                f"first (aimctl cluster down --dir {holder.parent})"
            )
        record = HostRecord.read(holder)
        if record is not None:
            restore_host(record)
    tmp = CLAIM.with_name(CLAIM.name + f".{os.getpid()}")
    tmp.write_text(json.dumps({"node_dir": str(node_dir)}) + "\n")
    tmp.replace(CLAIM)


def _release(node_dir: Path) -> None:
    if _claim_holder() == node_dir:
        CLAIM.unlink(missing_ok=True)


# -- undoing -----------------------------------------------------------------------------------


def _cgroup_dirs(root: str) -> Iterator[Path]:
    """Every cgroup directory under ``root`` in every v1 hierarchy (or the v2 one), deepest
    first."""
    if not root:
        return
    bases = [CGROUP_FS] if (CGROUP_FS / "cgroup.controllers").exists() else []
    if not bases:
        bases = [p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink()]
    for base in bases:
        top = base / root.strip("/")
        if top.is_dir():
            dirs = [Path(d) for d, _, _ in os.walk(top)]
            yield from sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def make_cgroup_root(root: str) -> None:
    """Create ``root`` in every cgroup hierarchy: the kubelet requires its ``cgroupRoot`` to
    exist. A v1 cpuset cgroup admits no task until it has CPUs and memory nodes, so it gets
    its parent's."""
    v2 = (CGROUP_FS / "cgroup.controllers").exists()
    bases = (
        [CGROUP_FS] if v2 else [p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink()]
    )
    for base in bases:
        if base.name == "unified":  # the v2 mount of a hybrid host: no controller there
            continue
        top = base / root.strip("/")
        top.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (top / name).exists() and not (top / name).read_text().strip():
                (top / name).write_text((base / name).read_text())


def _kill_cgroups(root: str) -> None:
    for _ in range(50):
        pids: set[int] = set()
        for directory in _cgroup_dirs(root):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _remove_cgroups(root: str) -> None:
    for directory in _cgroup_dirs(root):
        with contextlib.suppress(OSError):
            directory.rmdir()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


# The node's own processes, by executable name; containerd's shims and the containers outlive
# them when the node is killed, and are leftovers, not a running node.
COMPONENTS = frozenset({"containerd", "kubelet", "kube-proxy", "coredns", "local-path-provisioner"})


def node_processes(node_dir: Path | str, *, components_only: bool = False) -> list[int]:
    """Pids of the processes whose command line names ``node_dir`` (every node component is
    given a path in it, and so is every containerd shim); only the node's own components
    (:data:`COMPONENTS`) with ``components_only``."""
    needle = str(node_dir).rstrip("/") + "/"
    found = []
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else os.getpid()
        argv = _cmdline(pid) if pid != os.getpid() else []
        if not any(needle in a for a in argv):
            continue
        if components_only and Path(argv[0]).name not in COMPONENTS:
            continue
        found.append(pid)
    return found


def _kill_shims(socket: str) -> None:
    """SIGKILL the containerd shims started by the containerd listening on ``socket``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if argv and "containerd-shim" in Path(argv[0]).name and socket in argv:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


def _mounts_under(directory: str) -> list[str]:
    """Mount points at or under ``directory`` (from /proc/self/mountinfo), deepest first."""
    found: list[str] = []
    prefix = directory.rstrip("/") + "/"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            # Field 5 is the mount point, with spaces and friends octal-escaped.
            point = line.split()[4].encode().decode("unicode_escape")
            if point == directory or point.startswith(prefix):
                found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def _unmount_under(directory: str) -> None:
    for _ in range(3):
        points = _mounts_under(directory)
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _namespaces_in(cidr: str) -> list[str]:
    """Named network namespaces holding an IPv4 address of ``cidr`` (the node's pods')."""
    network = ipaddress.ip_network(cidr)
    found = []
    for name in _run("ip", "netns", "list").stdout.split():
        if not name or name.startswith("("):
            continue
        out = _run("ip", "-n", name, "-4", "-o", "addr", "show").stdout
        for word in out.split():
            with contextlib.suppress(ValueError):
                if ipaddress.ip_interface(word).ip in network:
                    found.append(name)
                    break
    return found


def _delete_namespaces(cidr: str) -> None:
    for name in _namespaces_in(cidr):
        if _run("ip", "netns", "delete", name).returncode != 0:
            # containerd mounts its netns files under /run/netns like `ip netns add` does; one
            # whose mount is busy is detached lazily, then the file goes.
            path = Path("/run/netns") / name
            _run("umount", "-l", str(path))
            path.unlink(missing_ok=True)


_TOOLS = ("iptables", "ip6tables")
_TABLES = ("nat", "filter", "mangle")


def _iptables(tool: str, table: str) -> list[str]:
    return _run(tool, "-t", table, "-S").stdout.splitlines()


def _ours(line: str, network: str) -> bool:
    return "KUBE-" in line or (bool(network) and network in line)


def _delete_iptables(network: str) -> None:
    """Every ``KUBE-*`` chain (kube-proxy's and the kubelet's) with the rules jumping to them,
    and the CNI network's masquerade rules and chains (their comments name the network)."""
    for tool in _TOOLS:
        for table in _TABLES:
            lines = _iptables(tool, table)
            chains: set[str] = set()
            for line in lines:
                if line.startswith("-A ") and _ours(line, network):
                    argv = shlex.split(line)
                    if "-j" in argv:
                        chains.add(argv[argv.index("-j") + 1])
                    _run(tool, "-t", table, "-D", *argv[1:])
            declared = [line.split()[1] for line in lines if line.startswith("-N ")]
            chains = {c for c in declared if c in chains or c.startswith("KUBE-")}
            for chain in chains:
                _run(tool, "-t", table, "-F", chain)
            for chain in chains:
                _run(tool, "-t", table, "-X", chain)


def restore_host(record: HostRecord) -> None:
    """Undo what the node in ``record`` changed on the host (see the module docstring).

    Idempotent, and safe on a half-started node: each step does nothing when there is nothing.
    Its processes (kubelet, containerd, ...) must be stopped first; the containers they left are
    killed here.
    """
    _kill_cgroups(record.cgroup_root)
    _kill_shims(record.containerd_socket)
    _unmount_under(record.node_dir)
    _delete_namespaces(record.pod_cidr)
    if Path(f"/sys/class/net/{record.bridge}").exists():
        _run("ip", "link", "delete", record.bridge)
    if record.kube_proxy and Path(record.kube_proxy).exists():
        _run(record.kube_proxy, "--cleanup")
    _delete_iptables(record.cni_network)
    _remove_cgroups(record.cgroup_root)
    for name, value in record.sysctls.items():
        _write_sysctl(name, value)
    _release(Path(record.node_dir))


def leftovers(record: HostRecord) -> list[str]:
    """What of the node is still on the host, one line each ([] after a clean restore)."""
    found: list[str] = []
    found += [f"mount {p}" for p in _mounts_under(record.node_dir)]
    found += [f"cgroup {d}" for d in _cgroup_dirs(record.cgroup_root)]
    if Path(f"/sys/class/net/{record.bridge}").exists():
        found.append(f"bridge {record.bridge}")
    found += [f"netns {n}" for n in _namespaces_in(record.pod_cidr)]
    for tool in _TOOLS:
        for table in _TABLES:
            found += [
                f"{tool} -t {table} {line}"
                for line in _iptables(tool, table)
                if _ours(line, record.cni_network)
            ]
    now = read_sysctls(record.sysctls)
    found += [
        f"sysctl {k}={now.get(k)} (was {v})" for k, v in record.sysctls.items() if now.get(k) != v
    ]
    for pid in node_processes(record.node_dir):
        found.append(f"process {pid} {' '.join(_cmdline(pid))[:120]}")
    return found
