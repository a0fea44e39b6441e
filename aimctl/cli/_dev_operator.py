"""``aimctl dev``'s operator: ``aimctl run`` as a detached process, recorded and stopped by pid.

Owns ``DIR/dev-state.json`` (envtest's process records: pid and start time, so a reused pid is
never signalled) and ``DIR/operator.log``; the operator is ready when its ``/readyz`` answers.
"""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from aimctl.cli._exit import ExitCode
from aimctl.envtest import (
    ManagedProcess,
    ProcessRecord,
    ProcessStartError,
    log_tail,
    read_records,
    stop_records,
    write_records,
)

__all__ = [
    "OPERATOR",
    "STATE_FILE",
    "operator_argv",
    "record_process",
    "running_operator",
    "start_operator",
    "stop_recorded",
]

STATE_FILE = "dev-state.json"
OPERATOR = "operator"


def operator_argv(
    kubeconfig: Path,
    *,
    metrics_bind_address: str = "127.0.0.1:8080",
    health_probe_bind_address: str = "127.0.0.1:8081",
    extra: Sequence[str] = (),
) -> list[str]:
    """``aimctl run`` for a local cluster: console logs, no leader election, loopback ports,
    plain-HTTP metrics without authentication."""
    return [
        sys.executable,
        "-m",
        "aimctl",
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--log-format",
        "console",
        "--no-leader-elect",
        "--metrics-bind-address",
        metrics_bind_address,
        "--no-metrics-secure",  # plain HTTP on loopback: scrape it with curl, no token
        "--health-probe-bind-address",
        health_probe_bind_address,
        *extra,
    ]


def stop_recorded(directory: Path, names: Sequence[str] | None = None) -> list[str]:
    """Stop recorded processes (all, or ``names``), newest first; returns the stopped ones.

    Only the operator is recorded now; a list, so that ``down`` also stops the second kwok
    (``kwok-fast-ssd``) that older versions of ``dev up`` recorded."""
    records = read_records(directory / STATE_FILE)
    chosen = [r for r in records if names is None or r.name in names]
    # The operator shuts down gracefully (finishes reconciles) within its 30 s default.
    stopped = stop_records(chosen, timeout=lambda name: 35.0 if name == OPERATOR else 10.0)
    kept = [r for r in records if r not in chosen]
    if kept:
        write_records(directory / STATE_FILE, kept)
    else:
        (directory / STATE_FILE).unlink(missing_ok=True)
    return stopped


def running_operator(directory: Path) -> ProcessRecord | None:
    return next((r for r in read_records(directory / STATE_FILE) if r.name == OPERATOR), None)


def record_process(directory: Path, process: ManagedProcess) -> ProcessRecord:
    try:
        record = ProcessRecord.of(process)
    except RuntimeError as e:
        raise click.ClickException(
            f"{process.name} exited at once; its log ({process.log_path}):\n{process.log_tail()}"
        ) from e
    others = [r for r in read_records(directory / STATE_FILE) if r.name != record.name]
    write_records(directory / STATE_FILE, [*others, record])
    return record


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _port_free(address: str) -> bool:
    host, port = _host_port(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the operator's server does: a port whose last connections are in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _ready(address: str) -> bool:
    host, port = _host_port(address)
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=2.0) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start_operator(
    directory: Path,
    kubeconfig: Path,
    metrics: str,
    health: str,
    timeout: float,
    say: Callable[[str], None],
) -> ProcessRecord:
    """Reuse the recorded operator once its ``/readyz`` answers, or start one, detached, logging
    to ``DIR/operator.log``, and wait until it is ready.

    Raises :class:`click.ClickException` naming the cause: a port in use, an operator that exited
    while starting (with :class:`ExitCode`'s name for its code), or one not ready in time.
    """
    log = directory / "operator.log"
    current = running_operator(directory)
    if current is not None and current.alive:
        deadline = time.monotonic() + timeout
        while not _ready(health):
            if time.monotonic() > deadline or not current.alive:
                raise click.ClickException(
                    f"the running operator (pid {current.pid}) is not ready "
                    f"(http://{health}/readyz); last lines of {log}:\n{log_tail(log, 30)}\n"
                    f"Restart it: aimctl dev down --dir {directory}, then up again."
                )
            time.sleep(0.2)
        say(f"operator: running (pid {current.pid}); log: {log}")
        return current
    for flag, address in (
        ("--metrics-bind-address", metrics),
        ("--health-probe-bind-address", health),
    ):
        if not _port_free(address):
            raise click.ClickException(
                f"{address} is in use (another `make dev`?); pass {flag} to `aimctl dev up`"
            )
    argv = operator_argv(kubeconfig, metrics_bind_address=metrics, health_probe_bind_address=health)
    process = ManagedProcess(OPERATOR, argv, log_path=log, detached=True)
    process.start()
    started = record_process(directory, process)
    began = time.monotonic()
    try:
        process.wait_ready(lambda: _ready(health), timeout=timeout)
    except ProcessStartError as e:
        stop_recorded(directory, [OPERATOR])
        reason = (
            f" (exit code {ExitCode.describe(e.returncode)})" if e.returncode is not None else ""
        )
        raise click.ClickException(f"the operator did not start{reason}; log: {log}\n{e}") from e
    ready_after = time.monotonic() - began
    say(f"operator: started, ready in {ready_after:.1f}s (pid {started.pid}); log: {log}")
    return started
