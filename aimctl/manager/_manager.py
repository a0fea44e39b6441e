"""Manager: owns the shared pieces and runs everything in the right order.

Start order (controller-runtime's): metrics and probe servers -> informers (every kind the
controllers registered) -> wait for the caches to sync (``/readyz`` turns 200) -> leader
election (standbys keep their caches warm) -> controllers.

Stop order, on SIGTERM/SIGINT or :meth:`Manager.stop`: controllers stop taking work and drain
in-flight reconciles within ``graceful_shutdown_timeout`` -> the lease is released -> informers
stop -> servers stop.

Losing the lease stops the controllers at once (no drain: another replica may already be
acting) and makes :meth:`Manager.run` raise :class:`LeaderElectionLost`; the process should
exit and be restarted, as controller-runtime's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)

from aimctl.client import GVK, Client, ClusterConfig, EventRecorder, RestClient, RESTMapper
from aimctl.client._recent import RecentWrites
from aimctl.controller import Controller, ControllerBuilder
from aimctl.informers import EventHandler, InformerFactory, SharedInformer
from aimctl.manager._leader import LeaderElectionConfig, LeaderElector
from aimctl.manager._server import Check, HttpServer, metrics_app, parse_bind_address, probe_app
from aimctl.metrics import FamilyCollector, GaugeFamily

if TYPE_CHECKING:
    from aimctl.metrics import Gauge

__all__ = ["CacheSyncError", "LeaderElectionLost", "Manager", "default_identity"]

log = structlog.get_logger("aimctl.manager")


class LeaderElectionLost(Exception):
    """The lease was lost while leading; the controllers were stopped."""


class CacheSyncError(Exception):
    """An informer did not sync; the message names the kind and the server's reason."""


def default_identity() -> str:
    """``<hostname>_<uuid>``, as controller-runtime builds its lease holder identity."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class Manager:
    """Shared informers, a client, metrics, probes, leader election and controllers.

    Options (keyword-only; each documents its default):

    - ``namespaces``: watch only these namespaces (one informer per kind and namespace).
      Default: all namespaces.
    - ``metrics_bind_address``: ``":8080"`` by default; ``"0"`` disables.
    - ``health_probe_bind_address``: ``":8081"`` by default; ``"0"`` disables.
    - ``leader_election``: a :class:`LeaderElectionConfig`, or None (default) to always lead.
    - ``graceful_shutdown_timeout``: seconds to drain in-flight reconciles; default 30.
    - ``cache_sync_timeout``: seconds for informers to sync before start fails; default 120.
    - ``registry``: the Prometheus registry; default a fresh one with the process collectors.
    - ``qps``, ``burst``: client-side rate limit of the manager's REST client; default none
      (rely on API Priority and Fairness, as controller-runtime does since v0.21).

    The manager owns its REST client (``manager.rest``) and closes it when :meth:`run` returns.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        namespaces: Sequence[str] | None = None,
        metrics_bind_address: str = ":8080",
        health_probe_bind_address: str = ":8081",
        leader_election: LeaderElectionConfig | None = None,
        graceful_shutdown_timeout: float = 30.0,
        cache_sync_timeout: float = 120.0,
        registry: CollectorRegistry | None = None,
        qps: float | None = None,
        burst: int = 10,
    ) -> None:
        self.namespaces = list(namespaces) if namespaces else None
        if registry is None:
            registry = CollectorRegistry()
            for c in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                with contextlib.suppress(ValueError):
                    registry.register(c)
        self.registry = registry
        self.rest = rest = RestClient(config, registry=registry, qps=qps, burst=burst)
        self.mapper = RESTMapper(rest)
        self.informers = InformerFactory(rest, self.mapper, registry=registry)
        self._metrics_bind = metrics_bind_address
        self._probe_bind = health_probe_bind_address
        self.leader_election = leader_election
        self.graceful_shutdown_timeout = graceful_shutdown_timeout
        self.cache_sync_timeout = cache_sync_timeout
        self._controllers: list[Controller] = []
        self._watches: list[tuple[GVK, EventHandler]] = []
        self._selectors: dict[GVK, str] = {}
        self._recent = RecentWrites()  # read-your-own-writes, shared by this manager's clients
        self._resolved: dict[GVK, list[SharedInformer]] = {}
        self._synced = False
        self._recorders: list[EventRecorder] = []
        self._healthz: dict[str, Check] = {"ping": lambda: None}
        self._readyz: dict[str, Check] = {"informers-synced": self._informers_synced}
        self._stop = asyncio.Event()
        self._started = False
        self.metrics_server: HttpServer | None = None
        self.probe_server: HttpServer | None = None
        self.elector: LeaderElector | None = None
        leader = GaugeFamily(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
            "backup, 1 indicates master. 'name' is the string used to identify the lease. "
            "Please make sure to group by name.",
            ["name"],
        )
        self._leader_gauge: Gauge | None = None
        if leader_election is not None:
            self._leader_gauge = leader.labels(leader_election.name)
            FamilyCollector([leader]).register(registry)

    # -- wiring ------------------------------------------------------------------------------

    def client(self, field_manager: str) -> Client:
        """A client reading from this manager's cache and writing as ``field_manager``."""
        return Client(
            self.rest,
            self.mapper,
            self,
            field_manager=field_manager,
            sync_timeout=self.cache_sync_timeout,
            recent=self._recent,
        )

    def event_recorder(self, reporting_controller: str) -> EventRecorder:
        rec = EventRecorder(
            self.rest,
            reporting_controller,
            reporting_instance=f"{reporting_controller}-{socket.gethostname()}",
        )
        self._recorders.append(rec)
        return rec

    def controller(self) -> ControllerBuilder:
        """Start a controller builder bound to this manager."""
        return ControllerBuilder(self)

    async def informers_for(self, gvk: GVK) -> list[SharedInformer]:
        """The shared informers serving ``gvk``: one per watched namespace, or one cluster-wide
        (cluster-scoped kinds are always watched cluster-wide). Raises ``NoKindMatch`` when the
        server does not serve the kind (a CRD not installed)."""
        known = self._resolved.get(gvk)
        if known is not None:
            return known  # on every cached read: worth skipping discovery and the factory
        resource = await self.mapper.resource_for(gvk)
        selector = self._selectors.get(gvk)
        if self.namespaces is None or not resource.namespaced:
            informers = [self.informers.informer(gvk, label_selector=selector)]
        else:
            informers = [
                self.informers.informer(gvk, namespace=ns, label_selector=selector)
                for ns in self.namespaces
            ]
        known = self._resolved.get(gvk)
        if known is not None:
            return known  # resolved by a concurrent caller during discovery
        for inf in informers:
            inf.add_handler(self._recent.forget_when_seen(gvk))
        self._resolved[gvk] = informers
        return informers

    def cache_only(self, gvk: GVK, label_selector: str) -> None:
        """Cache only objects of ``gvk`` matching ``label_selector`` (controller-runtime's
        ``ByObject`` label option). Every reader and watch of the kind then shares that one
        scoped informer: use it for kinds such as Pods that are numerous in a cluster but few
        of which the controllers care about. Objects outside the selector are invisible to
        cached reads; a controller must label what it creates so it can see it."""
        if self._started:
            raise RuntimeError("cache options must be set before the manager starts")
        self._selectors[gvk] = label_selector

    def watch(self, gvk: GVK, handler: EventHandler) -> None:
        """Attach ``handler`` to the informers of ``gvk`` at start (used by the builder)."""
        if self._started:
            raise RuntimeError("watches must be added before the manager starts")
        self._watches.append((gvk, handler))

    def add_controller(self, controller: Controller) -> None:
        if any(c.name == controller.name for c in self._controllers):
            raise ValueError(f"a controller named {controller.name!r} already exists")
        if self._started:
            raise RuntimeError("controllers must be added before the manager starts")
        self._controllers.append(controller)

    def add_healthz_check(self, name: str, check: Check) -> None:
        self._healthz[name] = check

    def add_readyz_check(self, name: str, check: Check) -> None:
        self._readyz[name] = check

    @property
    def controllers(self) -> list[Controller]:
        return list(self._controllers)

    def _informers_synced(self) -> str | None:
        if not self._synced:
            pending = [
                f"{i.kind} ({i.scope})" for i in self.informers.informers if not i.has_synced
            ]
            return f"waiting for {', '.join(pending) or 'the informers to start'}"
        pending = [f"{i.kind} ({i.scope})" for i in self.informers.informers if not i.has_synced]
        return f"waiting for {', '.join(pending)}" if pending else None

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to shut down gracefully."""
        self._stop.set()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT when ``handle_signals``)."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        self._started = True
        lost = False
        hold: asyncio.Task[None] | None = None
        try:
            await self._start_servers()
            for gvk, handler in self._watches:
                for informer in await self.informers_for(gvk):
                    informer.add_handler(handler)
            await self.informers.start()
            await self._wait_for_sync()
            self._synced = True
            log.info("Caches synced", informers=len(self.informers.informers))
            if self.leader_election is not None:
                self.elector = LeaderElector(self.rest, self.leader_election)
                if self._leader_gauge is not None:
                    self._leader_gauge.set(0)
                acquire = asyncio.create_task(self.elector.acquire())
                stop_wait = asyncio.create_task(self._stop.wait())
                done, _ = await asyncio.wait(
                    {acquire, stop_wait}, return_when=asyncio.FIRST_COMPLETED
                )
                if acquire not in done:
                    acquire.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await acquire
                    return
                stop_wait.cancel()
                acquire.result()
                if self._leader_gauge is not None:
                    self._leader_gauge.set(1)
                hold = asyncio.create_task(self.elector.hold())
            for c in self._controllers:
                c.start()
            waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._stop.wait())}
            if hold is not None:
                waiters.add(hold)
            finished, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for p in pending:
                if p is not hold:
                    p.cancel()
            lost = hold is not None and hold in finished
        finally:
            await self._shutdown(lost, hold)
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        if lost:
            raise LeaderElectionLost("leader election lost")

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            log.warning("Second signal: exiting immediately", signal=sig.name)
            os._exit(1)
        log.info("Signal received, shutting down", signal=sig.name)
        self._stop.set()

    async def _wait_for_sync(self) -> None:
        try:
            await self.informers.wait_for_sync(self.cache_sync_timeout)
        except Exception as err:
            raise CacheSyncError(str(err)) from err

    async def _start_servers(self) -> None:
        bind = parse_bind_address(self._metrics_bind)
        if bind is not None:
            self.metrics_server = HttpServer(metrics_app(self.registry), *bind)
            await self.metrics_server.start()
            log.info("Serving metrics", address=f"{bind[0]}:{self.metrics_server.port}")
        bind = parse_bind_address(self._probe_bind)
        if bind is not None:
            self.probe_server = HttpServer(probe_app(self._healthz, self._readyz), *bind)
            await self.probe_server.start()
            log.info("Serving health probes", address=f"{bind[0]}:{self.probe_server.port}")

    async def _shutdown(self, lost: bool, hold: asyncio.Task[None] | None) -> None:
        drain = 0.0 if lost else self.graceful_shutdown_timeout
        log.info("Stopping controllers", drain_timeout=drain)
        await asyncio.gather(*(c.stop(drain) for c in self._controllers), return_exceptions=True)
        if hold is not None and not hold.done():
            hold.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hold
        if self.elector is not None:
            await self.elector.release()
            if self._leader_gauge is not None:
                self._leader_gauge.set(0)
        for rec in self._recorders:
            await rec.aclose()
        await self.informers.stop()
        for server in (self.probe_server, self.metrics_server):
            if server is not None:
                await server.stop()
        await self.rest.aclose()
        log.info("Manager stopped")
