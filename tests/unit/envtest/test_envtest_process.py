"""Child processes: readiness, log capture on failure, group stop with SIGKILL fallback, and
stopping detached processes by pid without ever signalling a reused pid."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aimctl.envtest._process import (
    ManagedProcess,
    ProcessStartError,
    pid_alive,
    port_conflict,
    process_start_time,
    stop_pid,
)


def _python(code: str, tmp_path: Path, *, detached: bool = False) -> ManagedProcess:
    return ManagedProcess(
        "child",
        [sys.executable, "-c", code],
        log_path=tmp_path / "logs" / "child.log",
        detached=detached,
    )


def test_ready_probe_and_clean_stop(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    proc = _python(
        f"import pathlib,time; pathlib.Path({str(marker)!r}).touch(); time.sleep(60)", tmp_path
    )
    proc.start()
    try:
        proc.wait_ready(marker.exists, timeout=10)
        assert proc.running
        assert pid_alive(proc.pid)
    finally:
        proc.stop()
    assert not pid_alive(proc.pid)
    proc.stop()  # idempotent


def test_exit_during_start_raises_with_log_tail(tmp_path: Path) -> None:
    proc = _python("import sys; print('boom: bad flag'); sys.exit(3)", tmp_path)
    proc.start()
    with pytest.raises(ProcessStartError, match="exited with code 3") as err:
        proc.wait_ready(lambda: False, timeout=10)
    assert "boom: bad flag" in err.value.log
    assert "boom: bad flag" in str(err.value)
    assert proc.log_path.read_text().startswith("$ ")  # the command line is logged first


def test_timeout_raises_and_probe_errors_mean_not_ready(tmp_path: Path) -> None:
    proc = _python("import time; print('still booting', flush=True); time.sleep(60)", tmp_path)
    proc.start()

    def probe() -> bool:
        raise OSError("connection refused")

    try:
        with pytest.raises(ProcessStartError, match="not ready after") as err:
            proc.wait_ready(probe, timeout=0.5)
        assert "still booting" in err.value.log
    finally:
        proc.stop()


def test_sigterm_ignored_then_sigkill(tmp_path: Path) -> None:
    marker = tmp_path / "armed"
    proc = _python(
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(marker)!r}).touch(); time.sleep(60)",
        tmp_path,
    )
    proc.start()
    proc.wait_ready(marker.exists, timeout=10)
    began = time.monotonic()
    proc.stop(timeout=0.5)
    assert not proc.running
    assert time.monotonic() - began < 5


def test_stop_reaches_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    proc = _python(
        "import pathlib, subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"pathlib.Path({str(pidfile)!r}).write_text(str(p.pid)); time.sleep(60)",
        tmp_path,
    )
    proc.start()
    proc.wait_ready(pidfile.exists, timeout=10)
    grandchild = int(pidfile.read_text())
    proc.stop()
    deadline = time.monotonic() + 5
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(grandchild)


def test_stop_pid_stops_a_detached_process(tmp_path: Path) -> None:
    proc = _python("import time; time.sleep(60)", tmp_path, detached=True)
    proc.start()
    start_time = process_start_time(proc.pid)
    assert start_time is not None
    stop_pid(proc.pid, start_time, timeout=5)
    proc.stop()  # reap (in real use init reaps; the test process is the parent here)
    assert not pid_alive(proc.pid, start_time)


def test_stop_pid_ignores_a_reused_pid() -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start_time = process_start_time(victim.pid)
        assert start_time is not None
        stop_pid(victim.pid, start_time + 1, timeout=0.5)  # "another process" with this pid
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_process_start_time_of_missing_pid_is_none() -> None:
    assert process_start_time(2**22 + 12345) is None
    assert process_start_time(os.getpid()) is not None


def test_port_conflict_detection() -> None:
    assert port_conflict("listen tcp 127.0.0.1:2379: bind: address already in use")
    assert not port_conflict("unknown flag: --foo")


def test_children_die_with_a_killed_test_process(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a SIGKILLed parent leaves no orphan behind."""
    code = (
        "import os, pathlib, signal, sys\n"
        "from aimctl.envtest._process import ManagedProcess\n"
        "p = ManagedProcess('c', [sys.executable, '-c', 'import time; time.sleep(60)'],"
        f" log_path=pathlib.Path({str(tmp_path / 'c.log')!r}))\n"
        "p.start()\n"
        "print(p.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    child = int(parent.stdout.strip())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)
