"""The detached-cluster state file and `cluster down` by pid."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aimctl.envtest._process import ManagedProcess, pid_alive, process_start_time
from aimctl.envtest._state import STATE_FILE, read_state, stop_detached


def _record(directory: Path, procs: list[dict[str, object]]) -> None:
    doc = {"url": "https://127.0.0.1:1", "full": False, "kubeconfig": "k", "processes": procs}
    (directory / STATE_FILE).write_text(json.dumps(doc))


def test_missing_or_corrupt_state_reads_as_none(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None
    (tmp_path / STATE_FILE).write_text("{not json")
    assert read_state(tmp_path) is None


def test_down_stops_recorded_processes_and_removes_files_but_logs(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "etcd",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        log_path=tmp_path / "logs" / "etcd.log",
        detached=True,
    )
    proc.start()
    try:
        start_time = process_start_time(proc.pid)
        assert start_time is not None
        _record(
            tmp_path,
            [{"name": "etcd", "pid": proc.pid, "start_time": start_time, "binary": "x"}],
        )
        (tmp_path / "certs").mkdir()
        (tmp_path / "kubeconfig").write_text("")
        state = read_state(tmp_path)
        assert state is not None
        assert [p.name for p in state.alive] == ["etcd"]
        assert stop_detached(tmp_path, timeout=5) == ["etcd"]
        assert not pid_alive(proc.pid, start_time)
    finally:
        proc.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]


def test_down_with_dead_processes_only_cleans_up(tmp_path: Path) -> None:
    _record(tmp_path, [{"name": "etcd", "pid": 2**22 + 7, "start_time": 1, "binary": "x"}])
    assert stop_detached(tmp_path) == []
    assert not (tmp_path / STATE_FILE).exists()
