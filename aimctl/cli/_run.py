"""``aimctl run``: the operator process.

Exits with an :class:`~aimctl.cli.ExitCode` (documented in docs/architecture.md): 0 clean
shutdown; 2 bad flags; 3 cluster unreachable or credentials refused; 4 AIM CRDs not installed;
5 caches did not sync; 6 leader election lost.

Only click is imported with the module: the operator, its client (aiohttp, kubernetes-asyncio)
and logging load when the command runs, so ``aimctl run --help`` and bad flags answer at once.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aimctl.cli._exit import ExitCode

if TYPE_CHECKING:
    from aimctl.client import ClusterConfig
    from aimctl.manager import LeaderElectionConfig

__all__ = ["run"]

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


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
    default=":8443",
    show_default=True,
    help='Where /metrics listens; "0" disables.',
)
@click.option(
    "--metrics-secure/--no-metrics-secure",
    envvar="AIMCTL_METRICS_SECURE",
    default=True,
    show_default=True,
    help="Serve /metrics over HTTPS to bearer tokens that the apiserver authenticates "
    "(TokenReview) and allows to get /metrics (SubjectAccessReview). "
    "--no-metrics-secure: plain HTTP, no authentication (local development).",
)
@click.option(
    "--metrics-cert-dir",
    envvar="AIMCTL_METRICS_CERT_DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory with the metrics serving certificate, tls.crt and tls.key (re-read when "
    "they change). Default: a self-signed certificate made at start.",
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
    metrics_secure: bool,
    metrics_cert_dir: Path | None,
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
    from aimctl.log import configure_logging
    from aimctl.manager import LeaderElectionConfig, default_identity

    if metrics_cert_dir is not None:
        if not metrics_secure:
            raise click.UsageError("--metrics-cert-dir needs --metrics-secure")
        missing = [n for n in ("tls.crt", "tls.key") if not (metrics_cert_dir / n).is_file()]
        if missing:
            raise click.UsageError(
                f"--metrics-cert-dir {metrics_cert_dir}: no {', '.join(missing)}"
            )
    if metrics_secure and metrics_cert_dir is None and metrics_bind_address not in ("", "0"):
        import importlib.util

        if importlib.util.find_spec("cryptography") is None:
            raise click.UsageError(
                "a self-signed metrics certificate needs the 'cryptography' package: install "
                "it, or pass --metrics-cert-dir, or --no-metrics-secure"
            )
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
                metrics_secure=metrics_secure,
                metrics_cert_dir=metrics_cert_dir,
                probes=health_probe_bind_address,
                election=election,
                kvcache_workers=kvcache_concurrency,
                service_workers=service_concurrency,
                grace=graceful_shutdown_timeout,
            )
        )
    )


# Young-generation threshold for the cyclic GC (CPython's default is 700 allocations).
_GC_GEN0_THRESHOLD = 50_000


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheaper for a long-running cache (CPU only; nothing
    else changes). Cached objects are acyclic JSON freed by reference counting, but every
    container allocated counts towards a collection, and each full collection walks every
    object alive, the imported modules included: in a 1000-cache converge the collector took
    ~7% of the operator's CPU. So what start-up loaded is moved out of the collector's sight
    (``gc.freeze``: it lives as long as the process anyway; no collection first, its garbage
    is small and a full collection costs more) and young collections run every 50,000
    allocations instead of 700 (older generations keep their default ratios); peak RSS grows
    by a few MiB (docs/benchmarks.md)."""
    import gc

    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(_GC_GEN0_THRESHOLD, gen1, gen2)


def _fail(code: ExitCode, message: str) -> int:
    import structlog

    structlog.get_logger("aimctl.run").error(message)  # one line on stderr, in the log format
    return code


async def _run(
    *,
    kubeconfig: str | None,
    context: str | None,
    in_cluster: bool,
    namespaces: list[str] | None,
    metrics: str,
    metrics_secure: bool,
    metrics_cert_dir: Path | None,
    probes: str,
    election: LeaderElectionConfig | None,
    kvcache_workers: int,
    service_workers: int,
    grace: float,
) -> int:
    import structlog

    from aimctl.client import (
        ApiError,
        Forbidden,
        NoKindMatch,
        TransportError,
        Unauthorized,
        load_incluster,
        load_kubeconfig,
    )
    from aimctl.manager import CacheSyncError, LeaderElectionLost, Manager
    from aimctl.reconcilers import add_to_manager
    from aimctl.reconcilers._common import AIMKVCACHE, AIMSERVICE

    log = structlog.get_logger("aimctl.run")
    try:
        config: ClusterConfig = await (
            load_incluster() if in_cluster else load_kubeconfig(kubeconfig, context)
        )
    except Exception as err:  # kubernetes_asyncio raises ConfigException and friends
        return _fail(ExitCode.UNREACHABLE, f"cannot load cluster credentials: {err}")
    mgr = Manager(
        config,
        namespaces=namespaces,
        metrics_bind_address=metrics,
        metrics_secure=metrics_secure,
        metrics_cert_dir=metrics_cert_dir,
        health_probe_bind_address=probes,
        leader_election=election,
        graceful_shutdown_timeout=grace,
    )
    try:
        # Preflight: a clear message and exit code beats a stack trace from deep inside.
        try:
            version = await mgr.rest.request("GET", "/version")
        except (TransportError, Unauthorized, Forbidden) as err:
            return _fail(ExitCode.UNREACHABLE, f"cannot reach the cluster at {config.host}: {err}")
        for gvk in (AIMKVCACHE, AIMSERVICE):
            try:
                await mgr.mapper.resource_for(gvk)
            except NoKindMatch:
                return _fail(
                    ExitCode.NO_CRDS,
                    f"the {gvk.kind} CRD ({gvk.group}/{gvk.version}) is not installed; install the "
                    "CRDs first (they ship with aimctl): "
                    "aimctl manifests | kubectl apply --server-side -f -",
                )
            except ApiError as err:
                return _fail(ExitCode.UNREACHABLE, f"discovery of {gvk} failed: {err}")
        log.info(
            "Starting aimctl operator",
            server=config.host,
            kubernetes=version.get("gitVersion"),
            namespaces=namespaces or "all",
            leader_election=election.name if election else False,
        )
        add_to_manager(mgr, kvcache_workers=kvcache_workers, service_workers=service_workers)
        _tune_gc()
        try:
            await mgr.run(handle_signals=True)
        except CacheSyncError as err:
            return _fail(ExitCode.SYNC, f"caches did not sync: {err}")
        except LeaderElectionLost:
            return _fail(
                ExitCode.LEADERSHIP, "leader election lost; exiting so a fresh process can rejoin"
            )
        return ExitCode.OK
    finally:
        await mgr.rest.aclose()
