"""One child process: start it, wait until it is ready, stop it, and read its log.

Owns the process lifecycle only; the command lines come from ``_etcd``, ``_apiserver`` and
``_full``. Every child runs in its own session (process group), so a stop reaches anything it
spawned. Output (stdout and stderr) goes to a log file; a failed start raises with the log's tail.

Children started for a test process get ``PR_SET_PDEATHSIG=SIGKILL``: if the test process dies
without tearing down (SIGKILL, OOM), the kernel kills them. The kernel ties that signal to the
*thread* that forked, so it is set only when starting from the main thread (a child started from
an executor thread would otherwise die when that thread ends). Detached children (``aimctl cluster
up``) don't, and are stopped later by pid with :func:`stop_pid`, which checks the process start
time first so a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "ManagedProcess",
    "ProcessStartError",
    "log_tail",
    "pid_alive",
    "port_conflict",
    "process_start_time",
    "run_kubectl",
    "stop_pid",
]

_PR_SET_PDEATHSIG = 1
POLL_INTERVAL = 0.1


class ProcessStartError(RuntimeError):
    """A child exited or did not become ready in time. ``log`` holds the tail of its output;
    ``returncode`` is the child's exit status when it exited (None when it timed out)."""

    def __init__(self, message: str, *, name: str, log: str, returncode: int | None = None) -> None:
        super().__init__(f"{message}\n--- last lines of {name}'s output ---\n{log}")
        self.name = name
        self.log = log
        self.returncode = returncode


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def port_conflict(log: str) -> bool:
    """Whether a start failed because another process took one of our ports."""
    return "address already in use" in log.lower()


def process_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after it are space-separated.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` runs (and, given ``start_time``, is still the same process)."""
    now = process_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


def run_kubectl(
    kubectl: Path,
    kubeconfig: Path,
    *args: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``kubectl --kubeconfig=KUBECONFIG ARGS`` to completion, output captured as text.

    The one kubectl runner of the harness: ``ControlPlane.kubectl`` for a cluster this process
    started, ``aimctl dev`` for one it finds by its kubeconfig.

    Raises:
        subprocess.CalledProcessError: kubectl failed and ``check`` is set.
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds.
    """
    return subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_pid(pid: int, start_time: int, *, timeout: float = 10.0) -> None:
    """Stop a detached session leader and its group: SIGTERM, then SIGKILL after ``timeout``.

    Does nothing when ``pid`` no longer names the process that started at ``start_time``.
    """
    if not pid_alive(pid, start_time):
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid, start_time) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
    if pid_alive(pid, start_time):
        _signal_group(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while pid_alive(pid, start_time) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)


class ManagedProcess:
    """A child process with a log file.

    Guarantees: after :meth:`stop` or :meth:`kill` returns, the child is reaped and its process
    group has been signalled; calling either twice is harmless. :meth:`start` may be called again
    after a stop (same argv, same log file, appended).

    Caller obligations: call :meth:`stop` (or :meth:`kill`) unless the process is meant to outlive
    the caller (``detached``).

    Raises: :class:`ProcessStartError` from :meth:`wait_ready`.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        detached: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._cwd = cwd
        self._env = dict(env) if env is not None else None
        self._detached = detached
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        die_with_parent = (
            not self._detached and threading.current_thread() is threading.main_thread()
        )
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._cwd,
                env=self._env,
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float) -> None:
        """Poll ``probe`` every 100 ms until it returns True (exceptions count as "not yet")."""
        deadline = time.monotonic() + timeout
        while True:
            code = self._popen.poll() if self._popen is not None else -1
            if code is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {code} while starting",
                    name=self.name,
                    log=self.log_tail(),
                    returncode=code,
                )
            try:
                if probe():
                    return
            except Exception:  # a probe error means "not ready yet"
                pass
            if time.monotonic() >= deadline:
                raise ProcessStartError(
                    f"{self.name} was not ready after {timeout:.0f}s",
                    name=self.name,
                    log=self.log_tail(),
                )
            time.sleep(POLL_INTERVAL)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds, reap the child."""
        self._terminate(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL the process group at once and reap the child."""
        self._terminate(signal.SIGKILL, 10.0)

    def _terminate(self, sig: int, timeout: float) -> None:
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            _signal_group(popen.pid, sig)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(popen.pid, signal.SIGKILL)
                popen.wait()
        # The leader is gone; make sure nothing it left in its group survives.
        _signal_group(popen.pid, signal.SIGKILL)
