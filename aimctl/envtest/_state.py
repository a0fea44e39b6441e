"""The state file of a detached control plane (``aimctl cluster up``), and stopping it by pid.

Owns ``DIR/state.json``: which processes belong to the cluster in ``DIR`` (pid, start time and
binary), its URL and mode. ``aimctl cluster down`` reads it and stops the processes in reverse
start order; a pid whose start time changed belongs to someone else now and is left alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aimctl.envtest._controlplane import ControlPlane
from aimctl.envtest._process import pid_alive, process_start_time, stop_pid

__all__ = [
    "STATE_FILE",
    "ClusterState",
    "ProcessRecord",
    "read_state",
    "stop_detached",
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


@dataclass(frozen=True)
class ClusterState:
    url: str
    full: bool
    kubeconfig: str
    processes: tuple[ProcessRecord, ...]

    @property
    def alive(self) -> list[ProcessRecord]:
        return [p for p in self.processes if p.alive]


def write_state(cp: ControlPlane, directory: Path) -> ClusterState:
    """Record a started control plane's processes in ``directory/state.json``."""
    records = []
    for proc in cp.processes:
        start_time = process_start_time(proc.pid)
        if start_time is None:
            raise RuntimeError(f"{proc.name} (pid {proc.pid}) is not running")
        records.append(ProcessRecord(proc.name, proc.pid, start_time, proc.argv[0]))
    state = ClusterState(cp.url, cp.full, str(cp.kubeconfig), tuple(records))
    doc: dict[str, Any] = asdict(state)
    (directory / STATE_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    return state


def read_state(directory: Path) -> ClusterState | None:
    """The recorded state, or None when ``directory`` holds no (readable) state file."""
    try:
        doc = json.loads((directory / STATE_FILE).read_text())
        return ClusterState(
            url=doc["url"],
            full=doc["full"],
            kubeconfig=doc["kubeconfig"],
            processes=tuple(ProcessRecord(**p) for p in doc["processes"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_detached(directory: Path, *, timeout: float = 10.0) -> list[str]:
    """Stop the cluster recorded in ``directory`` and remove its files (not ``logs/``).

    Returns the names of the processes that were still running and got stopped.
    """
    state = read_state(directory)
    stopped: list[str] = []
    for record in reversed(state.processes if state else ()):
        if record.alive:
            stop_pid(record.pid, record.start_time, timeout=timeout)
            stopped.append(record.name)
    for name in CREATED:
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stopped
