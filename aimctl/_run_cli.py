"""``aimctl run``: the operator process.

Exit codes (documented in docs/architecture.md): 0 clean shutdown; 2 bad flags; 3 cluster
unreachable or credentials refused; 4 AIM CRDs not installed; 5 caches did not sync; 6 leader
election lost.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click
import structlog

from aimctl.client import (
    ApiError,
    ClusterConfig,
    Forbidden,
    NoKindMatch,
    TransportError,
    Unauthorized,
    load_incluster,
    load_kubeconfig,
)
from aimctl.log import configure_logging
from aimctl.manager import (
    CacheSyncError,
    LeaderElectionConfig,
    LeaderElectionLost,
    Manager,
    default_identity,
)

EXIT_UNREACHABLE = 3
EXIT_NO_CRDS = 4
EXIT_SYNC = 5
EXIT_LEADERSHIP = 6
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

log = structlog.get_logger("aimctl.run")


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and SA_NAMESPACE.exists()


@click.command("run")
@click.option(
    "--kubeconfig",
    envvar="AIMCTL_KUBECONFIG",
    help="Kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, or the in-cluster account.",
)
@click.option(
    "--context", envvar="AIMCTL_CONTEXT", help="Kubeconfig context. Default: the current one."
)
@click.option(
    "--namespace",
    "namespaces",
    envvar="AIMCTL_NAMESPACE",
    multiple=True,
    help="Watch only this namespace (repeatable, or comma-separated). Default: all.",
)
@click.option(
    "--metrics-bind-address",
    envvar="AIMCTL_METRICS_BIND_ADDRESS",
    default=":8080",
    show_default=True,
    help='Where /metrics listens; "0" disables.',
)
@click.option(
    "--health-probe-bind-address",
    envvar="AIMCTL_HEALTH_PROBE_BIND_ADDRESS",
    default=":8081",
    show_default=True,
    help='Where /healthz and /readyz listen; "0" disables.',
)
@click.option(
    "--leader-elect/--no-leader-elect",
    envvar="AIMCTL_LEADER_ELECT",
    default=False,
    show_default=True,
    help="Run only while holding the leader lease (for more than one replica).",
)
@click.option(
    "--leader-election-namespace",
    envvar="AIMCTL_LEADER_ELECTION_NAMESPACE",
    help="Namespace of the lease. Default: the pod's namespace in a cluster.",
)
@click.option(
    "--leader-election-id",
    envvar="AIMCTL_LEADER_ELECTION_ID",
    default="aimctl-operator-lock",
    show_default=True,
    help="Name of the lease.",
)
@click.option(
    "--log-format",
    envvar="AIMCTL_LOG_FORMAT",
    type=click.Choice(["json", "console"]),
    default=None,
    help="Default: json in a cluster, console otherwise.",
)
@click.option(
    "--log-level",
    envvar="AIMCTL_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--kvcache-concurrency",
    envvar="AIMCTL_KVCACHE_CONCURRENCY",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="AIMKVCache reconciles in parallel.",
)
@click.option(
    "--service-concurrency",
    envvar="AIMCTL_SERVICE_CONCURRENCY",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="AIMService reconciles in parallel.",
)
@click.option(
    "--graceful-shutdown-timeout",
    envvar="AIMCTL_GRACEFUL_SHUTDOWN_TIMEOUT",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to finish in-flight reconciles on SIGTERM.",
)
def run(
    kubeconfig: str | None,
    context: str | None,
    namespaces: tuple[str, ...],
    metrics_bind_address: str,
    health_probe_bind_address: str,
    leader_elect: bool,
    leader_election_namespace: str | None,
    leader_election_id: str,
    log_format: str | None,
    log_level: str,
    kvcache_concurrency: int,
    service_concurrency: int,
    graceful_shutdown_timeout: float,
) -> None:
    """Run the AIM KV-cache operator (the AIMKVCache and AIMService controllers)."""
    in_cluster = kubeconfig is None and _in_cluster()
    configure_logging(
        "json" if log_format == "json" or (log_format is None and in_cluster) else "console",
        log_level,
    )
    ns = [n.strip() for item in namespaces for n in item.replace(",", " ").split() if n.strip()]
    lease_ns = leader_election_namespace or (
        SA_NAMESPACE.read_text().strip() if in_cluster else None
    )
    if leader_elect and not lease_ns:
        raise click.UsageError("--leader-elect needs --leader-election-namespace outside a cluster")
    election = (
        LeaderElectionConfig(
            namespace=lease_ns, name=leader_election_id, identity=default_identity()
        )
        if leader_elect and lease_ns
        else None
    )
    sys.exit(
        asyncio.run(
            _run(
                kubeconfig=kubeconfig,
                context=context,
                in_cluster=in_cluster,
                namespaces=ns or None,
                metrics=metrics_bind_address,
                probes=health_probe_bind_address,
                election=election,
                kvcache_workers=kvcache_concurrency,
                service_workers=service_concurrency,
                grace=graceful_shutdown_timeout,
            )
        )
    )


def _fail(code: int, message: str) -> int:
    log.error(message)
    click.echo(f"aimctl run: {message}", err=True)
    return code


async def _run(
    *,
    kubeconfig: str | None,
    context: str | None,
    in_cluster: bool,
    namespaces: list[str] | None,
    metrics: str,
    probes: str,
    election: LeaderElectionConfig | None,
    kvcache_workers: int,
    service_workers: int,
    grace: float,
) -> int:
    from aimctl.reconcilers import add_to_manager
    from aimctl.reconcilers._common import AIMKVCACHE, AIMSERVICE

    try:
        config: ClusterConfig = await (
            load_incluster() if in_cluster else load_kubeconfig(kubeconfig, context)
        )
    except Exception as err:  # kubernetes_asyncio raises ConfigException and friends
        return _fail(EXIT_UNREACHABLE, f"cannot load cluster credentials: {err}")
    mgr = Manager(
        config,
        namespaces=namespaces,
        metrics_bind_address=metrics,
        health_probe_bind_address=probes,
        leader_election=election,
        graceful_shutdown_timeout=grace,
    )
    try:
        # Preflight: a clear message and exit code beats a stack trace from deep inside.
        try:
            version = await mgr.rest.request("GET", "/version")
        except (TransportError, Unauthorized, Forbidden) as err:
            return _fail(EXIT_UNREACHABLE, f"cannot reach the cluster at {config.host}: {err}")
        for gvk in (AIMKVCACHE, AIMSERVICE):
            try:
                await mgr.mapper.resource_for(gvk)
            except NoKindMatch:
                return _fail(
                    EXIT_NO_CRDS,
                    f"the {gvk.kind} CRD ({gvk.group}/{gvk.version}) is not installed; install the "
                    "CRDs first: kubectl apply --server-side -k manifests/crds",
                )
            except ApiError as err:
                return _fail(EXIT_UNREACHABLE, f"discovery of {gvk} failed: {err}")
        log.info(
            "Starting aimctl operator",
            server=config.host,
            kubernetes=version.get("gitVersion"),
            namespaces=namespaces or "all",
            leader_election=election.name if election else False,
        )
        add_to_manager(mgr, kvcache_workers=kvcache_workers, service_workers=service_workers)
        try:
            await mgr.run(handle_signals=True)
        except CacheSyncError as err:
            return _fail(EXIT_SYNC, f"caches did not sync: {err}")
        except LeaderElectionLost:
            return _fail(
                EXIT_LEADERSHIP, "leader election lost; exiting so a fresh process can rejoin"
            )
        return 0
    finally:
        await mgr.rest.aclose()
