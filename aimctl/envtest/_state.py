"""The state file of a detached control plane (``aimctl cluster up``), and stopping it by pid.

Owns ``DIR/state.json``: which processes belong to the cluster in ``DIR`` (pid, start time and
binary), its URL and mode. ``aimctl cluster down`` reads it and stops the processes in reverse
start order; a pid whose start time changed belongs to someone else now and is left alone.

The process records are the one format for anything detached: ``aimctl dev`` keeps its operator
in a file of its own with :func:`read_records` / :func:`write_records` / :func:`stop_records`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aimctl.envtest._controlplane import ControlPlane
from aimctl.envtest._host import HostRecord, leftovers, restore_host
from aimctl.envtest._process import ManagedProcess, pid_alive, process_start_time, stop_pid

__all__ = [
    "STATE_FILE",
    "ClusterState",
    "ProcessRecord",
    "read_records",
    "read_state",
    "stop_detached",
    "stop_records",
    "write_records",
    "write_state",
]

STATE_FILE = "state.json"
# What `cluster down` removes from DIR; logs/ stays for post-mortems.
CREATED = (
    STATE_FILE,
    "kubeconfig",
    "certs",
    "etcd",
    "users",
    "kwok-stages.yaml",
    "kube-controller-manager",
    "kube-scheduler",
    "node",
)


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_time: int
    binary: str

    @property
    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_time)

    @classmethod
    def of(cls, process: ManagedProcess) -> ProcessRecord:
        """Record a started process (its start time tells a reused pid apart later).

        Raises:
            RuntimeError: the process is not running (it exited at once).
        """
        start_time = process_start_time(process.pid)
        if start_time is None:
            raise RuntimeError(f"{process.name} (pid {process.pid}) is not running")
        return cls(process.name, process.pid, start_time, process.argv[0])

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ProcessRecord:
        """Read one record; fields it does not know (older formats) are ignored."""
        return cls(str(doc["name"]), int(doc["pid"]), int(doc["start_time"]), doc.get("binary", ""))


def write_records(path: Path, records: Iterable[ProcessRecord], **extra: Any) -> None:
    """Write ``{**extra, "processes": [...]}`` to ``path`` atomically (rename of a temp file)."""
    doc = {**extra, "processes": [asdict(r) for r in records]}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def _read_doc(path: Path) -> tuple[dict[str, Any], list[ProcessRecord]]:
    doc = json.loads(path.read_text())
    return doc, [ProcessRecord.from_json(p) for p in doc["processes"]]


def read_records(path: Path) -> list[ProcessRecord]:
    """The records in ``path`` in start order; [] when it is missing or unreadable."""
    try:
        return _read_doc(path)[1]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def stop_records(
    records: Sequence[ProcessRecord], *, timeout: float | Callable[[str], float] = 10.0
) -> list[str]:
    """Stop the records' live processes, newest first; returns the names that got stopped.

    ``timeout`` (seconds before SIGKILL) may depend on the process name: an operator finishing
    its reconciles needs longer than etcd.
    """
    stopped: list[str] = []
    for record in reversed(records):
        if record.alive:
            wait = timeout(record.name) if callable(timeout) else timeout
            stop_pid(record.pid, record.start_time, timeout=wait)
            stopped.append(record.name)
    return stopped


@dataclass(frozen=True)
class ClusterState:
    url: str
    full: bool
    kubeconfig: str
    processes: tuple[ProcessRecord, ...]

    @property
    def alive(self) -> list[ProcessRecord]:
        return [p for p in self.processes if p.alive]

    @property
    def real_node(self) -> bool:
        """Whether the cluster has a real (kubelet) node."""
        return any(p.name == "kubelet" for p in self.processes)


def write_state(cp: ControlPlane, directory: Path) -> ClusterState:
    """Record a started control plane's processes in ``directory/state.json``."""
    records = tuple(ProcessRecord.of(proc) for proc in cp.processes)
    state = ClusterState(cp.url, cp.full, str(cp.kubeconfig), records)
    write_records(
        directory / STATE_FILE, records, url=state.url, full=state.full, kubeconfig=state.kubeconfig
    )
    return state


def read_state(directory: Path) -> ClusterState | None:
    """The recorded state, or None when ``directory`` holds no (readable) state file."""
    try:
        doc, records = _read_doc(directory / STATE_FILE)
        return ClusterState(
            url=doc["url"], full=doc["full"], kubeconfig=doc["kubeconfig"], processes=tuple(records)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_detached(directory: Path, *, timeout: float = 10.0) -> list[str]:
    """Stop the cluster recorded in ``directory`` and remove its files (not ``logs/``).

    Returns the names of the processes that were still running and got stopped.
    """
    state = read_state(directory)
    stopped = stop_records(state.processes if state else (), timeout=timeout)
    record = HostRecord.read(directory / "node")
    if record is not None:
        restore_host(record)
        left = leftovers(record)
        if any(line.startswith("mount ") for line in left):
            # Removing the directory would follow a mount into whatever it mounts.
            raise RuntimeError(
                f"the real node's mounts are still there, so {directory} was kept: "
                + "; ".join(left)
            )
    for name in CREATED:
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stopped
