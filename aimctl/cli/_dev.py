"""``aimctl dev up|down``: the local playground behind ``make dev`` / ``make dev-down``.

``up`` brings a fresh machine (with the control-plane binaries) to a working operator in one
command, and reuses whatever already runs when called again:

1. the full local cluster, detached, in ``DIR/cluster`` (the machinery of ``aimctl cluster up
   --full --dir DIR/cluster``; its pids and start times in ``DIR/cluster/state.json``);
2. the ``fast-ssd`` StorageClass the guide's shared cache asks for (expandable; the cluster's
   kwok binds its claims, as it does for every class with kwok's provisioner);
3. the AIM CRDs (the shipped ``manifests/crds``) and the namespace ``ml-team``;
4. the operator, ``aimctl run`` with the dev kubeconfig, detached, logging to
   ``DIR/operator.log``, until its ``/readyz`` answers;
5. the guide's samples (Quick Start, then the shared cache and its two services), until every
   AIMKVCache is Ready and every AIMService reports ``KVCacheReady``;

then prints ``kubectl get aimkvcache,aimservice -A -o wide`` and what to try next. The operator
is recorded in ``DIR/dev-state.json`` with envtest's process records (pid and start time, as
``cluster up`` records the cluster). ``down`` stops it and the cluster; only a pid whose start
time still matches is signalled. Logs stay in ``DIR``. The CRDs and samples are the ones shipped
in the package (:mod:`aimctl.cli._manifests`): no repository checkout is needed.

This module owns the commands and steps 1-3; the operator (step 4) is
:mod:`aimctl.cli._dev_operator`, the samples (step 5) :mod:`aimctl.cli._dev_samples`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from aimctl.cli._cluster import dir_option, start_detached
from aimctl.cli._dev_operator import start_operator, stop_recorded
from aimctl.cli._dev_samples import NAMESPACE, QUICK_START, apply_samples
from aimctl.cli._manifests import shipped_dir
from aimctl.envtest import (
    NODE_NAME,
    REAL_NODE_NAME,
    BinariesNotFound,
    find_assets,
    kwok_storage_class,
    local_path_class,
    read_state,
    real_node_policy,
    run_kubectl,
    stop_detached,
    wait_for_real_node_policy,
)

__all__ = ["DEFAULT_DIR", "FAST_SSD", "Kubectl", "dev"]

DEFAULT_DIR = Path(".dev")
FAST_SSD = "fast-ssd"
REAL_NODE_POLICY = "aimctl-dev-kvcache-real-node"
CRD_NAMES = ("aimkvcaches.aim.silogen.ai", "aimservices.aim.silogen.ai")


class Kubectl:
    """The pinned kubectl with one kubeconfig (envtest's :func:`run_kubectl`); a failure is a
    :class:`click.ClickException` carrying kubectl's own message."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        try:
            return run_kubectl(
                self.binary, self.kubeconfig, *args, input=input, check=check, timeout=timeout
            )
        except subprocess.CalledProcessError as e:
            raise click.ClickException(
                f"kubectl {' '.join(args)} failed ({e.returncode}): "
                f"{(e.stderr or '').strip() or (e.stdout or '').strip()}"
            ) from e

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


# -- steps -----------------------------------------------------------------------------------


def _say(message: str) -> None:
    click.echo(f"[dev] {message}")


def _cluster(directory: Path, timeout: float | None, real_node: bool) -> Path:
    """Start (or reuse) the full cluster in ``directory``; returns its kubeconfig."""
    state = read_state(directory)
    if state is not None and state.alive and not state.full:
        raise click.ClickException(
            f"an envtest-mode cluster (no controller-manager, no node) runs in {directory}; "
            f"stop it first: aimctl cluster down --dir {directory}"
        )
    if state is not None and state.alive and state.real_node != real_node:
        has = "has" if state.real_node else "has no"
        raise click.ClickException(
            f"the cluster running in {directory} {has} real node; stop it first "
            f"(make dev-down) or ask for the same kind of cluster"
        )
    if state is not None and len(state.alive) == len(state.processes):
        _say(f"cluster: reusing the one running in {directory} ({state.url})")
        return Path(state.kubeconfig)
    # Nothing (or a broken cluster) runs there: whatever ran against it is stale too.
    stale = stop_recorded(directory.parent)
    if stale:
        _say(f"stopped {', '.join(stale)} of a cluster that is gone")
    cp = start_detached(directory, full=True, timeout=timeout, real_node=real_node)
    nodes = f"{NODE_NAME} and the real node {REAL_NODE_NAME}" if real_node else NODE_NAME
    _say(f"cluster: started in {cp.start_duration:.1f}s ({cp.url}; nodes {nodes})")
    return cp.kubeconfig


def _storage(kubectl: Kubectl, real_node: bool) -> None:
    """``fast-ssd``, as ``ControlPlane.add_storage_class(FAST_SSD, expandable=True)`` makes it
    (applied with kubectl: a reused cluster is known by its kubeconfig only); with a real node,
    a class of its local-path provisioner, and the policy that runs the caches' Redis there."""
    if not real_node:
        kubectl.apply_objects([kwok_storage_class(FAST_SSD, expandable=True)])
        _say(f"storage: StorageClass {FAST_SSD} (expandable; the cluster's kwok binds its claims)")
        return
    kubectl.apply_objects(
        [
            local_path_class(FAST_SSD, default=False),
            *real_node_policy(REAL_NODE_POLICY, {"app.kubernetes.io/name": "aimkvcache"}),
        ]
    )
    try:
        wait_for_real_node_policy(
            lambda pod: (
                kubectl.run("create", "--dry-run=server", "-o", "json", "-f", "-", input=pod).stdout
            ),
            {"app.kubernetes.io/name": "aimkvcache"},
        )
    except TimeoutError as e:
        raise click.ClickException(str(e)) from e
    _say(
        f"storage: StorageClass {FAST_SSD} (directories on {REAL_NODE_NAME}); policy "
        f"{REAL_NODE_POLICY}: the caches' Redis pods run on {REAL_NODE_NAME}, the rest on kwok"
    )


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


def _next_steps(
    directory: Path, kubectl: Kubectl, manifests: Path, metrics: str, health: str, real: bool
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
        *([f"  kubectl logs -n {NAMESPACE} shared-cache-statefulset-0"] if real else []),
        f"  kubectl apply -f {samples / 'custom-storage-size.yaml'}",
        f"  kubectl patch aimkvcache shared-cache -n {NAMESPACE} --type=merge -p '{grow}'",
        f"Operator: log {directory / 'operator.log'}; metrics http://{metrics}/metrics; "
        f"readiness http://{health}/readyz",
        f"Stop everything: make dev-down   (aimctl dev down --dir {directory})",
    ]
    return "\n".join(lines)


# -- commands --------------------------------------------------------------------------------

_dir_option = dir_option(
    DEFAULT_DIR, "Where the cluster (DIR/cluster), the operator's log and the pids live."
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
    help="A manifests/ directory (CRDs and samples). Default: the ones shipped with aimctl.",
)
@click.option(
    "--real-node/--no-real-node",
    default=False,
    show_default=True,
    help="Run the caches' Redis for real on a kubelet node (root on Linux; `make real-node` "
    "builds it). `make dev` turns it on.",
)
def up(
    directory: Path,
    timeout: float,
    metrics_bind_address: str,
    health_probe_bind_address: str,
    manifests: Path | None,
    real_node: bool,
) -> None:
    """Start (or reuse) everything, apply the samples, wait until they are Ready."""
    began = time.monotonic()
    directory = directory.resolve()
    manifests = (manifests or shipped_dir()).resolve()
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
    kubeconfig = _cluster(directory / "cluster", None, real_node)
    kubectl = Kubectl(assets.path("kubectl"), kubeconfig)
    _storage(kubectl, real_node)
    _crds(kubectl, manifests, timeout)
    start_operator(
        directory, kubeconfig, metrics_bind_address, health_probe_bind_address, timeout, _say
    )
    apply_samples(kubectl, directory, manifests, timeout, _say)
    _say(f"ready in {time.monotonic() - began:.1f}s\n")
    click.echo("$ kubectl get aimkvcache,aimservice -A -o wide")
    click.echo(kubectl.run("get", "aimkvcache,aimservice", "-A", "-o", "wide").stdout.rstrip())
    click.echo(
        _next_steps(
            directory,
            kubectl,
            manifests,
            metrics_bind_address,
            health_probe_bind_address,
            real_node,
        )
    )


@dev.command()
@_dir_option
def down(directory: Path) -> None:
    """Stop the operator and the cluster started in DIR (logs stay)."""
    directory = directory.resolve()
    stopped = stop_recorded(directory)
    cluster_dir = directory / "cluster"
    if read_state(cluster_dir) is not None:
        stopped += stop_detached(cluster_dir)
    click.echo(
        f"stopped {', '.join(stopped)}" if stopped else f"nothing was running in {directory}"
    )
