"""``aimctl cluster up|down``: a detached local control plane for development.

``up`` starts the same control plane as the test fixtures, but detached: the processes outlive
the command, and their pids go to ``DIR/state.json``. ``down`` stops them and removes the files
(the logs stay in ``DIR/logs``). The default DIR is ``.dev/cluster`` (``/.dev/`` is git-ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from aimctl.envtest import (
    REAL_NODE_NAME,
    BinariesNotFound,
    ControlPlane,
    HostBusy,
    ProcessStartError,
    read_state,
    stop_detached,
    write_state,
)

__all__ = ["DEFAULT_DIR", "cluster", "dir_option", "start_detached"]

FC = TypeVar("FC", bound=Callable[..., object])

DEFAULT_DIR = Path(".dev/cluster")


def dir_option(default: Path, help: str) -> Callable[[FC], FC]:
    """The ``--dir DIR`` option of the commands that keep state in a directory."""
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help,
    )


_dir_option = dir_option(
    DEFAULT_DIR, "Where the cluster keeps its kubeconfig, certificates, etcd data, logs and pids."
)


def start_detached(
    directory: Path, *, full: bool, timeout: float | None, real_node: bool = False
) -> ControlPlane:
    """Start a detached control plane in ``directory`` and record it in its state file.

    Whatever a previous state file names is stopped first (its start times tell a reused pid
    apart). With ``real_node`` the cluster also gets a kubelet node whose containerd holds a
    Redis image tagged as the operator's default. Raises :class:`click.ClickException` when the
    binaries are missing, another real node runs on this host, or a component does not start.
    """
    stop_detached(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # The operator's default Redis image, tagged locally (no registry here); imported lazily:
    # the reconcilers are not needed for an envtest-mode cluster.
    from aimctl.reconcilers import DEFAULT_REDIS_IMAGE

    try:
        cp = ControlPlane(
            full=full,
            work_dir=directory,
            start_timeout=timeout,
            detached=True,
            real_node=real_node,
            redis_images=(DEFAULT_REDIS_IMAGE,),
        )
        cp.start()
    except (BinariesNotFound, HostBusy, ProcessStartError) as e:
        raise click.ClickException(str(e)) from e
    write_state(cp, directory)
    return cp


@click.group()
def cluster() -> None:
    """A local control plane (etcd + kube-apiserver, optionally the full set) on 127.0.0.1."""


@cluster.command()
@click.option(
    "--full",
    is_flag=True,
    help="Also run kube-controller-manager, kube-scheduler and kwok (one simulated node, a "
    "default StorageClass whose claims bind).",
)
@click.option(
    "--real-node",
    is_flag=True,
    help="With --full: add a real node (kubelet, containerd, kube-proxy, CoreDNS, local-path "
    "storage) that runs pods tolerating its taint; needs root on Linux and `make real-node`.",
)
@click.option(
    "--timeout", type=float, default=None, help="Seconds each component may take to start."
)
@_dir_option
def up(full: bool, real_node: bool, timeout: float | None, directory: Path) -> None:
    """Start a control plane in the background and write DIR/kubeconfig."""
    directory = directory.resolve()
    state = read_state(directory)
    if state is not None and state.alive:
        pids = ", ".join(f"{p.name}={p.pid}" for p in state.alive)
        raise click.ClickException(
            f"a cluster is already running in {directory} ({pids}); "
            f"run `aimctl cluster down --dir {directory}` first"
        )
    if real_node and not full:
        raise click.UsageError("--real-node needs --full")
    # stops a crashed one's leftovers
    cp = start_detached(directory, full=full, timeout=timeout, real_node=real_node)
    kubectl = cp.assets.path("kubectl")
    mode = "full (controller-manager, scheduler, kwok node kwok-node-0)" if full else "envtest"
    if real_node:
        mode = mode[:-1] + f", real node {REAL_NODE_NAME})"
    click.echo(f"Control plane up in {cp.start_duration:.1f}s: {cp.url} [{mode}]")
    click.echo(f"  export KUBECONFIG={cp.kubeconfig}")
    click.echo(f"  {kubectl} --kubeconfig {cp.kubeconfig} get ns")
    click.echo(f"Logs in {directory / 'logs'}; stop with: aimctl cluster down --dir {directory}")


@cluster.command()
@_dir_option
def down(directory: Path) -> None:
    """Stop the control plane started in DIR and remove its files (logs stay); a real node's
    containers, mounts, network and host settings are undone too."""
    directory = directory.resolve()
    if read_state(directory) is None:
        click.echo(f"no cluster state in {directory}; nothing to stop")
        return
    try:
        stopped = stop_detached(directory)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"stopped {', '.join(stopped) if stopped else 'nothing (no process was running)'}")
