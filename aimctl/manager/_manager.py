"""Manager: owns the shared pieces and runs everything in the right order.

Start order (controller-runtime's): metrics, probe and webhook servers -> informers (every kind the
controllers registered) -> wait for the caches to sync (``/readyz`` turns 200) -> runnables
that do not need leader election -> leader election (standbys keep their caches warm) ->
controllers and the runnables that need leader election.

Stop order, on SIGTERM/SIGINT, :meth:`Manager.stop` or a failed runnable: controllers stop
taking work and, with the runnables, drain within one ``graceful_shutdown_timeout`` -> the
lease is released -> informers stop -> servers stop. A stop requested while starting (caches
still syncing, a standby waiting for the lease) interrupts the start at once.

Losing the lease stops the controllers and runnables at once (no drain: another replica may
already be acting), also when it happens during the graceful drain, and makes
:meth:`Manager.run` raise :class:`LeaderElectionLost`; the process should exit and be
restarted, as controller-runtime's does (kubernetes-sigs/controller-runtime:
pkg/manager/internal.go, ``OnStoppedLeading``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import uuid
from collections.abc import Coroutine, Sequence
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
from aimctl.informers import ByObject, EventHandler, IndexFunc, InformerFactory, SharedInformer
from aimctl.manager._leader import LeaderElectionConfig, LeaderElector
from aimctl.manager._runnable import (
    ManagedRunnable,
    Runnable,
    RunnableFunc,
    needs_leader_election,
)
from aimctl.manager._server import (
    Check,
    HttpServer,
    metrics_server,
    parse_bind_address,
    probe_app,
)
from aimctl.metrics import FamilyCollector, GaugeFamily
from aimctl.webhook import WebhookBuilder, WebhookServer

if TYPE_CHECKING:
    from aimctl.metrics import Gauge

__all__ = ["CacheSyncError", "LeaderElectionLost", "Manager", "default_identity"]

log = structlog.get_logger("aimctl.manager")


class LeaderElectionLost(Exception):
    """The lease was lost while leading (or while draining); the controllers and runnables
    were stopped at once."""


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
    - ``metrics_secure``: serve ``/metrics`` over HTTPS and let through only requests whose
      bearer token the apiserver authenticates (TokenReview) and authorizes for ``get`` on
      ``/metrics`` (SubjectAccessReview), with the manager's own client; default False (plain
      HTTP, no authentication), as controller-runtime's ``SecureServing``. ``aimctl run``
      turns it on by default (kubebuilder's scaffold), on ``:8443``.
    - ``metrics_cert_dir``: with ``metrics_secure``, the directory holding ``tls.crt`` and
      ``tls.key`` (re-read when they change); default None: a self-signed certificate made at
      start (needs ``cryptography``).
    - ``health_probe_bind_address``: ``":8081"`` by default; ``"0"`` disables.
    - ``leader_election``: a :class:`LeaderElectionConfig`, or None (default) to always lead.
    - ``graceful_shutdown_timeout``: seconds to drain in-flight reconciles; default 30.
    - ``cache_sync_timeout``: seconds for informers to sync before start fails; default 120.
    - ``registry``: the Prometheus registry; default a fresh one with the process collectors.
    - ``qps``, ``burst``: client-side rate limit of the manager's REST client; default none
      (rely on API Priority and Fairness, as controller-runtime does since v0.21).
    - ``webhook_server``: the :class:`~aimctl.webhook.WebhookServer` that :meth:`webhook`
      registers on; default one on port 9443 with the certificates in its default directory,
      created on the first :meth:`webhook` call. It starts with the metrics and probe servers
      (before the caches: they may need its conversion webhook) when a webhook is registered.

    The manager owns its REST client (``manager.rest``) and closes it when :meth:`run` returns.

    Probes: ``/healthz`` checks ``ping`` and ``controllers`` (fails when a started controller
    has no live worker left, so the kubelet restarts a process that can no longer reconcile);
    ``/readyz`` checks ``informers-synced``. Add more with :meth:`add_healthz_check` and
    :meth:`add_readyz_check`.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        namespaces: Sequence[str] | None = None,
        metrics_bind_address: str = ":8080",
        metrics_secure: bool = False,
        metrics_cert_dir: str | os.PathLike[str] | None = None,
        health_probe_bind_address: str = ":8081",
        leader_election: LeaderElectionConfig | None = None,
        graceful_shutdown_timeout: float = 30.0,
        cache_sync_timeout: float = 120.0,
        registry: CollectorRegistry | None = None,
        qps: float | None = None,
        burst: int = 10,
        webhook_server: WebhookServer | None = None,
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
        if metrics_cert_dir is not None and not metrics_secure:
            raise ValueError("metrics_cert_dir is used only with metrics_secure=True")
        self._metrics_bind = metrics_bind_address
        self._metrics_secure = metrics_secure
        self._metrics_cert_dir = metrics_cert_dir
        self._probe_bind = health_probe_bind_address
        self.leader_election = leader_election
        self.graceful_shutdown_timeout = graceful_shutdown_timeout
        self.cache_sync_timeout = cache_sync_timeout
        self._controllers: list[Controller] = []
        self._runnables: list[ManagedRunnable] = []
        self._watches: list[tuple[GVK, EventHandler]] = []
        self._indexes: dict[GVK, dict[str, IndexFunc]] = {}
        self._recent = RecentWrites()  # read-your-own-writes, shared by this manager's clients
        self._resolved: dict[GVK, list[SharedInformer]] = {}
        self._synced = False
        self._recorders: list[EventRecorder] = []
        self._healthz: dict[str, Check] = {
            "ping": lambda: None,
            "controllers": self._controllers_alive,
        }
        self._readyz: dict[str, Check] = {"informers-synced": self._informers_synced}
        # Set by stop(), a signal, a failed runnable or a lost lease; once set, the start is
        # abandoned and the shutdown begins (later runnable failures are only logged).
        self._stop = asyncio.Event()
        self._started = False
        self._failure: BaseException | None = None  # what run() raises after the shutdown
        self._lost = False  # the lease was lost: no graceful drain
        self._hold: asyncio.Task[None] | None = None  # renews the lease while leading
        self._signalled = False  # a SIGTERM/SIGINT arrived (a second one exits at once)
        self.metrics_server: HttpServer | None = None
        self.probe_server: HttpServer | None = None
        self.webhook_server = webhook_server
        if webhook_server is not None:
            webhook_server.register_metrics(registry)
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

    def webhook(self) -> WebhookBuilder:
        """Start a webhook builder (controller-runtime's ``WebhookManagedBy(mgr)``) on the
        manager's webhook server."""
        if self.webhook_server is None:
            self.webhook_server = WebhookServer()
            self.webhook_server.register_metrics(self.registry)
        return WebhookBuilder(self.webhook_server)

    async def informers_for(self, gvk: GVK) -> list[SharedInformer]:
        """The shared informers serving ``gvk``: one per watched namespace, or one cluster-wide
        (cluster-scoped kinds are always watched cluster-wide). Raises ``NoKindMatch`` when the
        server does not serve the kind (a CRD not installed)."""
        known = self._resolved.get(gvk)
        if known is not None:
            return known  # on every cached read: worth skipping discovery and the factory
        # The kind's own options (ByObject: namespaces, selectors, metadata-only) decide, the
        # manager's namespaces are the default.
        informers = await self.informers.resolve(gvk, self.namespaces)
        known = self._resolved.get(gvk)
        if known is not None:
            return known  # resolved by a concurrent caller during discovery
        for inf in informers:
            inf.add_handler(self._recent.forget_when_seen(gvk))
            inf.take_echoes(self._recent.echoes(gvk))
            for index, fn in self._indexes.get(gvk, {}).items():
                if index not in inf.store.indexers:
                    inf.store.add_indexer(index, fn)
        self._resolved[gvk] = informers
        return informers

    def cache_only(
        self,
        gvk: GVK,
        label_selector: str | None = None,
        *,
        field_selector: str | None = None,
        metadata_only: bool = False,
        resync_period: float | None = None,
    ) -> None:
        """Cache only objects of ``gvk`` matching ``label_selector`` and ``field_selector``
        (controller-runtime's ``ByObject``), optionally only their metadata
        (``PartialObjectMetadata``) and with a default resync period for their handlers.
        Every reader and watch of the kind then shares that one scoped informer: use it for
        kinds such as Pods that are numerous in a cluster but few of which the controllers
        care about. Objects outside the selectors are invisible to cached reads; a controller
        must label what it creates so it can see it. For a transform, use
        ``manager.informers.set_by_object`` with an ``aimctl.informers.ByObject``."""
        if self._started:
            raise RuntimeError("cache options must be set before the manager starts")
        self.informers.set_by_object(
            gvk,
            ByObject(
                label_selector=label_selector,
                field_selector=field_selector,
                metadata_only=metadata_only,
                resync_period=resync_period,
            ),
        )

    def add_index(self, gvk: GVK, name: str, fn: IndexFunc) -> None:
        """Index every cached ``gvk`` object under ``name`` by what ``fn`` returns
        (controller-runtime's ``FieldIndexer.IndexField``); read with ``client.by_index``.
        Register before the first read of the kind."""
        if gvk in self._resolved:
            raise RuntimeError(f"add the index {name!r} before the first read of {gvk.kind}")
        self._indexes.setdefault(gvk, {})[name] = fn

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

    def add(
        self,
        runnable: Runnable | RunnableFunc,
        *,
        need_leader_election: bool | None = None,
        name: str | None = None,
    ) -> None:
        """Run ``runnable`` with the manager (controller-runtime's ``mgr.Add``).

        ``runnable`` is ``async def start(stop: asyncio.Event) -> None`` or an object with that
        method (see :class:`Runnable`): it starts after the caches sync and must return soon
        after ``stop`` is set. ``need_leader_election`` overrides the runnable's own attribute
        of that name; default True: start only while leading, with the controllers. ``name``
        labels its logs and task; default the function's or class's qualified name.

        If it raises, the manager shuts down and :meth:`run` raises that exception. One still
        running after ``graceful_shutdown_timeout`` is cancelled; on a lost lease every runnable
        is cancelled at once.

        Raises:
            TypeError: ``start`` is not an async function.
            RuntimeError: the manager has already started.
        """
        if self._started:
            raise RuntimeError("runnables must be added before the manager starts")
        need = (
            needs_leader_election(runnable)
            if need_leader_election is None
            else bool(need_leader_election)
        )
        self._runnables.append(ManagedRunnable.of(runnable, name=name, need_leader_election=need))

    def add_healthz_check(self, name: str, check: Check) -> None:
        self._healthz[name] = check

    def add_readyz_check(self, name: str, check: Check) -> None:
        self._readyz[name] = check

    @property
    def controllers(self) -> list[Controller]:
        return list(self._controllers)

    def _controllers_alive(self) -> str | None:
        # Controller.workers_alive() is False when a started controller has lost every worker
        # task (crashed or cancelled from outside): the process still answers probes but will
        # never reconcile again, so liveness must fail. A controller object without the method
        # counts as alive.
        dead = [c.name for c in self._controllers if not getattr(c, "workers_alive", _alive)()]
        return f"no live worker in controller {', '.join(dead)}" if dead else None

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
        """Ask :meth:`run` to shut down gracefully (also while it is still starting)."""
        self._stop.set()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT when ``handle_signals``), a failed
        runnable, or a lost lease; then shut down (see the module docstring) and return.

        A stop during the start (caches syncing, waiting for the lease) takes effect at once.
        A manager runs once: its REST client is closed when this returns.

        Raises:
            CacheSyncError: an informer did not sync (a 401/403 at once, else at
                ``cache_sync_timeout``).
            LeaderElectionLost: the lease was lost while leading or while draining.
            Exception: the first exception a runnable raised, after the shutdown.
            RuntimeError: the manager already ran.
        """
        if self._started:
            raise RuntimeError("a manager runs once")
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        self._started = True
        try:
            await self._start_servers()
            await self._unless_stopped(self._start())
            await self._stop.wait()
        finally:
            await self._shutdown()
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        if self._failure is not None:
            raise self._failure

    async def _start(self) -> None:
        for gvk, handler in self._watches:
            for informer in await self.informers_for(gvk):
                informer.add_handler(handler)
        await self.informers.start()
        await self._wait_for_sync()
        self._synced = True
        log.info("Caches synced", informers=len(self.informers.informers))
        for r in self._runnables:
            if not r.need_leader_election:
                r.launch(self._on_runnable_failure)
        if self.leader_election is not None:
            self.elector = elector = LeaderElector(self.rest, self.leader_election)
            if self._leader_gauge is not None:
                self._leader_gauge.set(0)
            await elector.acquire()
            if self._leader_gauge is not None:
                self._leader_gauge.set(1)
            self._hold = asyncio.create_task(elector.hold(), name="aimctl-leader-renew")
            self._hold.add_done_callback(self._on_hold_done)
        for c in self._controllers:
            c.start()
        for r in self._runnables:
            if r.need_leader_election:
                r.launch(self._on_runnable_failure)

    async def _unless_stopped(self, start: Coroutine[Any, Any, None]) -> None:
        """Run ``start`` until it returns or a stop is requested (then cancel it: an
        informer that cannot sync or a lease held elsewhere must not delay a SIGTERM)."""
        task = asyncio.create_task(start, name="aimctl-manager-start")
        stopped = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not task.done():
                log.info("Stop requested while starting: abandoning the start")
                task.cancel()
                await asyncio.wait({task})
        if not task.cancelled():
            task.result()

    def _on_runnable_failure(self, runnable: ManagedRunnable, err: BaseException) -> None:
        if self._stop.is_set():
            # controller-runtime logs errors that arrive after the stop procedure began.
            log.error("Runnable failed during shutdown", runnable=runnable.name, error=repr(err))
            return
        log.error("Runnable failed: stopping the manager", runnable=runnable.name, error=repr(err))
        self._failure = err
        self._stop.set()

    def _on_hold_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return  # our own shutdown stopped renewing
        err = task.exception()
        if err is not None:  # hold() never raises by contract; still, stop as if lost
            log.error("Leader lease renewal failed", error=repr(err))
        self._lost = True
        if self._leader_gauge is not None:
            self._leader_gauge.set(0)
        if self._failure is None:
            self._failure = LeaderElectionLost("leader election lost")
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        # Only a second *signal* forces the exit: a shutdown begun by a failed runnable or a
        # lost lease still deserves its drain when the kubelet's SIGTERM arrives meanwhile.
        if self._signalled:
            log.warning("Second signal: exiting immediately", signal=sig.name)
            os._exit(1)
        self._signalled = True
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
            self.metrics_server = metrics_server(
                self.registry,
                *bind,
                secure=self._metrics_secure,
                rest=self.rest,
                cert_dir=self._metrics_cert_dir,
            )
            await self.metrics_server.start()
            log.info(
                "Serving metrics",
                address=f"{bind[0]}:{self.metrics_server.port}",
                secure=self._metrics_secure,
            )
        bind = parse_bind_address(self._probe_bind)
        if bind is not None:
            self.probe_server = HttpServer(probe_app(self._healthz, self._readyz), *bind)
            await self.probe_server.start()
            log.info("Serving health probes", address=f"{bind[0]}:{self.probe_server.port}")
        if self.webhook_server is not None and self.webhook_server.paths:
            await self.webhook_server.start()
            log.info("Serving webhooks", port=self.webhook_server.port)

    async def _drain(self, grace: float) -> None:
        """Stop the controllers and runnables, together, within ``grace`` seconds (0: at
        once). Never raises: a runnable's error has already been seen by its callback."""
        await asyncio.gather(
            *(c.stop(grace) for c in self._controllers),
            *(r.shut_down(grace) for r in self._runnables),
            return_exceptions=True,
        )

    async def _shutdown(self) -> None:
        self._stop.set()  # from here on, runnable failures are only logged
        grace = 0.0 if self._lost else self.graceful_shutdown_timeout
        log.info("Stopping controllers and runnables", drain_timeout=grace)
        drain = asyncio.create_task(self._drain(grace), name="aimctl-manager-drain")
        hold = self._hold
        if hold is not None and not hold.done():
            # The lease is renewed during the drain; losing it there ends the drain at once.
            await asyncio.wait({drain, hold}, return_when=asyncio.FIRST_COMPLETED)
            if not drain.done():
                log.error("Leader lease lost during the graceful shutdown: stopping at once")
                drain.cancel()
                await asyncio.wait({drain})
                await self._drain(0.0)
            if not hold.done():
                hold.cancel()
                await asyncio.wait({hold})
        else:
            await drain
        if self.elector is not None:
            await self.elector.release()
            if self._leader_gauge is not None:
                self._leader_gauge.set(0)
        for rec in self._recorders:
            await rec.aclose()
        await self.informers.stop()
        if self.webhook_server is not None:
            await self.webhook_server.stop()
        for server in (self.probe_server, self.metrics_server):
            if server is not None:
                await server.stop()
        await self.rest.aclose()
        log.info("Manager stopped")


def _alive() -> bool:
    return True
