"""``aimctl dev up|down``: the local playground behind ``make dev`` / ``make dev-down``.

``up`` brings a fresh machine (with the control-plane binaries) to a working operator in one
command, and reuses whatever already runs when called again:

1. the full local cluster, detached, in ``DIR/cluster`` (the machinery of ``aimctl cluster up
   --full --dir DIR/cluster``; its pids and start times in ``DIR/cluster/state.json``);
2. the ``fast-ssd`` StorageClass the guide's shared cache asks for (expandable; the cluster's
   kwok binds its claims, as it does for every class with kwok's provisioner);
3. the AIM CRDs (``manifests/crds``) and the namespace ``ml-team``;
4. the operator, ``aimctl run`` with the dev kubeconfig, detached, logging to
   ``DIR/operator.log``, until its ``/readyz`` answers;
5. the guide's samples (Quick Start, then the shared cache and its two services), until every
   AIMKVCache is Ready and every AIMService reports ``KVCacheReady``;

then prints ``kubectl get aimkvcache,aimservice -A -o wide`` and what to try next. The operator
is recorded in ``DIR/dev-state.json`` (pid and start time, like ``cluster up``). ``down`` stops
it and the cluster; only a pid whose start time still matches is signalled. Logs stay in ``DIR``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from aimctl.envtest import (
    NODE_NAME,
    BinariesNotFound,
    ControlPlane,
    ManagedProcess,
    ProcessStartError,
    find_assets,
    kwok_storage_class,
    log_tail,
    pid_alive,
    process_start_time,
    read_state,
    stop_detached,
    stop_pid,
    write_state,
)

__all__ = ["DEFAULT_DIR", "FAST_SSD", "NAMESPACE", "Kubectl", "dev", "operator_argv"]

DEFAULT_DIR = Path(".dev")
NAMESPACE = "ml-team"
FAST_SSD = "fast-ssd"
STATE_FILE = "dev-state.json"
OPERATOR = "operator"
QUICK_START = "quick-start.yaml"
SHARED = ("shared-cache.yaml", "shared-cache-services.yaml")
SAMPLES_ANNOTATION = "aimctl.silogen.ai/dev-samples"
CRD_NAMES = ("aimkvcaches.aim.silogen.ai", "aimservices.aim.silogen.ai")
# Operator exit codes (docs/architecture.md, "The operator process").
EXIT_CODES = {
    2: "bad flags",
    3: "cluster unreachable or credentials refused",
    4: "AIM CRDs not installed",
    5: "caches did not sync (usually RBAC)",
    6: "leader election lost",
}


# -- pieces shared with the tests ------------------------------------------------------------


def operator_argv(
    kubeconfig: Path,
    *,
    metrics_bind_address: str = "127.0.0.1:8080",
    health_probe_bind_address: str = "127.0.0.1:8081",
    extra: Sequence[str] = (),
) -> list[str]:
    """``aimctl run`` for a local cluster: console logs, no leader election, loopback ports."""
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
        "--health-probe-bind-address",
        health_probe_bind_address,
        *extra,
    ]


class Kubectl:
    """The pinned kubectl with one kubeconfig."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise click.ClickException(
                f"kubectl {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply_objects(self, objects: Sequence[dict[str, Any]]) -> None:
        self.run(
            "apply",
            "--server-side",
            "--field-manager=aimctl-dev",
            "-f",
            "-",
            input=yaml.safe_dump_all(objects),
        )


# -- state -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevProcess:
    name: str
    pid: int
    start_time: int
    log: str

    @property
    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_time)


def _read_processes(directory: Path) -> dict[str, DevProcess]:
    try:
        doc = json.loads((directory / STATE_FILE).read_text())
        return {p["name"]: DevProcess(**p) for p in doc["processes"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write_processes(directory: Path, processes: dict[str, DevProcess]) -> None:
    doc = {"processes": [asdict(p) for p in processes.values()]}
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(directory / STATE_FILE)


def _stop_processes(directory: Path, names: Sequence[str] | None = None) -> list[str]:
    """Stop recorded processes (all, or ``names``), newest first; returns the stopped ones.

    Only the operator is recorded now; a list, so that ``down`` also stops the second kwok
    (``kwok-fast-ssd``) that older versions of ``dev up`` recorded."""
    processes = _read_processes(directory)
    stopped = []
    for name in reversed(list(processes)):
        if names is not None and name not in names:
            continue
        record = processes.pop(name)
        if record.alive:
            # The operator shuts down gracefully (finishes reconciles) within its 30 s default.
            stop_pid(record.pid, record.start_time, timeout=35.0 if name == OPERATOR else 10.0)
            stopped.append(name)
    if processes:
        _write_processes(directory, processes)
    else:
        (directory / STATE_FILE).unlink(missing_ok=True)
    return stopped


def _record(directory: Path, process: ManagedProcess) -> DevProcess:
    start_time = process_start_time(process.pid)
    if start_time is None:
        raise click.ClickException(
            f"{process.name} exited at once; its log ({process.log_path}):\n{process.log_tail()}"
        )
    record = DevProcess(process.name, process.pid, start_time, str(process.log_path))
    processes = _read_processes(directory)
    processes[process.name] = record
    _write_processes(directory, processes)
    return record


# -- steps -----------------------------------------------------------------------------------


def _say(message: str) -> None:
    click.echo(f"[dev] {message}")


def _default_manifests() -> Path:
    """``manifests/`` of the source tree aimctl runs from, else of the current directory."""
    tree = Path(__file__).resolve().parent.parent / "manifests"
    return tree if (tree / "samples").is_dir() else Path("manifests").resolve()


def _cluster(directory: Path, timeout: float | None) -> Path:
    """Start (or reuse) the full cluster in ``directory``; returns its kubeconfig."""
    state = read_state(directory)
    if state is not None and state.alive and not state.full:
        raise click.ClickException(
            f"an envtest-mode cluster (no controller-manager, no node) runs in {directory}; "
            f"stop it first: aimctl cluster down --dir {directory}"
        )
    if state is not None and len(state.alive) == len(state.processes):
        _say(f"cluster: reusing the one running in {directory} ({state.url})")
        return Path(state.kubeconfig)
    # Nothing (or a broken cluster) runs there: whatever ran against it is stale too.
    stale = _stop_processes(directory.parent)
    if stale:
        _say(f"stopped {', '.join(stale)} of a cluster that is gone")
    stop_detached(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        cp = ControlPlane(full=True, work_dir=directory, start_timeout=timeout, detached=True)
        cp.start()
    except (BinariesNotFound, ProcessStartError) as e:
        raise click.ClickException(str(e)) from e
    write_state(cp, directory)
    _say(f"cluster: started in {cp.start_duration:.1f}s ({cp.url}; node {NODE_NAME})")
    return cp.kubeconfig


def _storage(kubectl: Kubectl) -> None:
    """``fast-ssd``, as ``ControlPlane.add_storage_class(FAST_SSD, expandable=True)`` makes it
    (applied with kubectl: a reused cluster is known by its kubeconfig only)."""
    kubectl.apply_objects([kwok_storage_class(FAST_SSD, expandable=True)])
    _say(f"storage: StorageClass {FAST_SSD} (expandable; the cluster's kwok binds its claims)")


def _crds(kubectl: Kubectl, manifests: Path, timeout: float) -> None:
    kubectl.run("apply", "--server-side", "--force-conflicts", "-k", str(manifests / "crds"))
    kubectl.run(
        "wait",
        "--for=condition=Established",
        f"--timeout={int(timeout)}s",
        *(f"crd/{name}" for name in CRD_NAMES),
    )
    # A new CRD answers 429 "storage is (re)initializing" for a moment after Established.
    deadline = time.monotonic() + timeout
    while kubectl.run("get", "aimkvcaches,aimservices", "-A", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise click.ClickException("the AIM CRDs are Established but cannot be listed")
        time.sleep(0.2)
    _say("CRDs: aimkvcaches, aimservices installed")


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


def _operator(
    directory: Path, kubeconfig: Path, metrics: str, health: str, timeout: float
) -> DevProcess:
    log = directory / "operator.log"
    current = _read_processes(directory).get(OPERATOR)
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
        _say(f"operator: running (pid {current.pid}); log: {log}")
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
    record = _record(directory, process)
    began = time.monotonic()
    try:
        process.wait_ready(lambda: _ready(health), timeout=timeout)
    except ProcessStartError as e:
        _stop_processes(directory, [OPERATOR])
        found = re.search(r"exited with code (-?\d+)", str(e))
        code = int(found.group(1)) if found else None
        reason = f" ({EXIT_CODES[code]})" if code in EXIT_CODES else ""
        raise click.ClickException(f"the operator did not start{reason}; log: {log}\n{e}") from e
    ready_after = time.monotonic() - began
    _say(f"operator: started, ready in {ready_after:.1f}s (pid {record.pid}); log: {log}")
    return record


def _objects(kubectl: Kubectl, kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", kind, "-n", NAMESPACE).get("items", [])
    return items


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions", []) or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def _not_ready(kubectl: Kubectl) -> list[str]:
    """What is not there yet, one line per object."""
    waiting = []
    for cache in _objects(kubectl, "aimkvcaches"):
        status = cache.get("status", {}) or {}
        if status.get("status") != "Ready":
            ready = _condition(cache, "Ready") or {}
            detail = ready.get("message") or ready.get("reason") or "no status yet"
            waiting.append(
                f"AIMKVCache {cache['metadata']['name']}: {status.get('status', '-')} ({detail})"
            )
    for service in _objects(kubectl, "aimservices"):
        cond = _condition(service, "KVCacheReady")
        if cond is None or cond.get("status") != "True":
            detail = (cond or {}).get("message") or "no KVCacheReady condition yet"
            waiting.append(f"AIMService {service['metadata']['name']}: {detail}")
    return waiting


def _wait_ready(kubectl: Kubectl, directory: Path, timeout: float, want: Sequence[str]) -> None:
    """Wait until the caches ``want`` exist and every cache/service in ml-team is ready."""
    deadline = time.monotonic() + timeout
    while True:
        names = {c["metadata"]["name"] for c in _objects(kubectl, "aimkvcaches")}
        waiting = [f"AIMKVCache {n}: not created yet" for n in want if n not in names]
        waiting += _not_ready(kubectl)
        if not waiting:
            return
        if time.monotonic() > deadline:
            log = directory / "operator.log"
            raise click.ClickException(
                f"not Ready after {timeout:.0f}s:\n  "
                + "\n  ".join(waiting)
                + f"\nThe operator's log is {log}; its last lines:\n{log_tail(log, 25)}\n"
                f"Everything is still running: inspect it (KUBECONFIG={kubectl.kubeconfig}), "
                f"then `make dev-down` (aimctl dev down --dir {directory})."
            )
        time.sleep(0.5)


def _samples(kubectl: Kubectl, directory: Path, manifests: Path, timeout: float) -> None:
    """Apply the samples once per cluster, then wait until everything in ml-team is ready.

    The namespace remembers it (annotation ``aimctl.silogen.ai/dev-samples``): a second
    ``dev up`` must not re-apply them over the user's changes (a grown cache cannot shrink back).
    """
    samples = manifests / "samples"
    found = kubectl.run("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "json").stdout
    metadata = (json.loads(found) if found.strip() else {}).get("metadata", {})
    if (metadata.get("annotations") or {}).get(SAMPLES_ANNOTATION) == "applied":
        _say(f"samples: applied earlier (namespace {NAMESPACE} says so); waiting until Ready")
        _wait_ready(kubectl, directory, timeout, [])
        return
    kubectl.apply_objects(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    )
    # quick-start.yaml and shared-cache-services.yaml both define llama-chat (as the guide does):
    # Quick Start first, until its own cache is Ready, then the shared cache takes it over.
    kubectl.run("apply", "-f", str(samples / QUICK_START))
    _say(f"samples: applied {QUICK_START}; waiting for its cache kvcache-llama-chat")
    _wait_ready(kubectl, directory, timeout, ["kvcache-llama-chat"])
    for name in SHARED:
        kubectl.run("apply", "-f", str(samples / name))
    kubectl.run("annotate", "namespace", NAMESPACE, f"{SAMPLES_ANNOTATION}=applied", "--overwrite")
    _say(
        f"samples: applied {', '.join(SHARED)} (llama-chat moves to shared-cache); "
        f"waiting until everything in {NAMESPACE} is Ready"
    )
    _wait_ready(kubectl, directory, timeout, ["shared-cache"])


def _next_steps(
    directory: Path, kubectl: Kubectl, manifests: Path, metrics: str, health: str
) -> str:
    samples = manifests / "samples"
    grow = '{"spec":{"storage":{"size":"300Gi"}}}'
    lines = [
        "",
        "Next, in this shell (the pinned kubectl first on PATH):",
        f"  export KUBECONFIG={kubectl.kubeconfig}",
        f"  export PATH={kubectl.binary.parent}:$PATH",
        f"  kubectl get aimkvcache -n {NAMESPACE} -o wide",
        f"  kubectl describe aimkvcache shared-cache -n {NAMESPACE}",
        f"  kubectl get pvc -n {NAMESPACE} -l app.kubernetes.io/managed-by=aimkvcache-controller",
        f"  kubectl apply -f {samples / 'custom-storage-size.yaml'}",
        f"  kubectl patch aimkvcache shared-cache -n {NAMESPACE} --type=merge -p '{grow}'",
        f"Operator: log {directory / 'operator.log'}; metrics http://{metrics}/metrics; "
        f"readiness http://{health}/readyz",
        f"Stop everything: make dev-down   (aimctl dev down --dir {directory})",
    ]
    return "\n".join(lines)


# -- commands --------------------------------------------------------------------------------

_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Where the cluster (DIR/cluster), the operator's log and the pids live.",
)


@click.group()
def dev() -> None:
    """A local playground: full cluster, CRDs, the operator and the guide's samples."""


@dev.command()
@_dir_option
@click.option(
    "--timeout",
    type=float,
    default=180.0,
    show_default=True,
    help="Seconds to wait for the operator to be ready, and again for the samples.",
)
@click.option("--metrics-bind-address", default="127.0.0.1:8080", show_default=True)
@click.option("--health-probe-bind-address", default="127.0.0.1:8081", show_default=True)
@click.option(
    "--manifests",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The manifests/ directory (CRDs and samples). Default: the source tree's.",
)
def up(
    directory: Path,
    timeout: float,
    metrics_bind_address: str,
    health_probe_bind_address: str,
    manifests: Path | None,
) -> None:
    """Start (or reuse) everything, apply the samples, wait until they are Ready."""
    began = time.monotonic()
    directory = directory.resolve()
    manifests = (manifests or _default_manifests()).resolve()
    if not (manifests / "samples" / QUICK_START).is_file():
        raise click.ClickException(f"no samples in {manifests}; pass --manifests")
    try:
        assets = find_assets(full=True)
    except BinariesNotFound as e:
        raise click.ClickException(str(e)) from e
    if not os.access(assets.path("kubectl"), os.X_OK):
        raise click.ClickException(
            f"no kubectl at {assets.path('kubectl')}; run `make control-plane`"
        )
    directory.mkdir(parents=True, exist_ok=True)
    kubeconfig = _cluster(directory / "cluster", None)
    kubectl = Kubectl(assets.path("kubectl"), kubeconfig)
    _storage(kubectl)
    _crds(kubectl, manifests, timeout)
    _operator(directory, kubeconfig, metrics_bind_address, health_probe_bind_address, timeout)
    _samples(kubectl, directory, manifests, timeout)
    _say(f"ready in {time.monotonic() - began:.1f}s\n")
    click.echo("$ kubectl get aimkvcache,aimservice -A -o wide")
    click.echo(kubectl.run("get", "aimkvcache,aimservice", "-A", "-o", "wide").stdout.rstrip())
    click.echo(
        _next_steps(directory, kubectl, manifests, metrics_bind_address, health_probe_bind_address)
    )


@dev.command()
@_dir_option
def down(directory: Path) -> None:
    """Stop the operator and the cluster started in DIR (logs stay)."""
    directory = directory.resolve()
    stopped = _stop_processes(directory)
    cluster_dir = directory / "cluster"
    if read_state(cluster_dir) is not None:
        stopped += stop_detached(cluster_dir)
    click.echo(
        f"stopped {', '.join(stopped)}" if stopped else f"nothing was running in {directory}"
    )
