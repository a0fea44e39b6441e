"""Machinery shared by the reliability tests: manifests, bulk apply, a convergence audit read
live from the API server, an in-process operator (on the test's event loop or on a thread of its
own), metric scraping, a TCP proxy that can partition the operator from the API server, and the
figures each test prints (and, with ``AIMCTL_RELIABILITY_RESULTS=<dir>``, writes as JSON; that is
what docs/reliability.md is built from).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aimctl.client import (
    ApiError,
    ClientError,
    ClusterConfig,
    NotFound,
    RestClient,
    TooManyRequests,
    TransportError,
    load_kubeconfig,
)
from aimctl.controller import Request
from aimctl.manager import Manager
from aimctl.reconcilers import add_to_manager
from aimctl.reconcilers.kvcache import _desired as kvcache_desired

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[3]
CRDS = sorted((ROOT / "manifests" / "crds").glob("aim.silogen.ai_*.yaml"))
GROUP_VERSION = "aim.silogen.ai/v1alpha1"
DEFAULT_IMAGE = kvcache_desired.DEFAULT_IMAGE
KVCACHE_CONTROLLER = "aimkvcache-controller"
SERVICE_CONTROLLER = "aimservice-controller"
MANAGED_BY = "app.kubernetes.io/managed-by"
# Small enough that hundreds of caches fit on the one kwok node (32 CPUs) in full mode.
SMALL_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"memory": "16Mi"},
}
APPLY = "application/apply-patch+yaml"
TEST_MANAGER = "reliability-test"


# -- manifests and paths -------------------------------------------------------------------------


def kvcaches_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/aimkvcaches"
    return f"{base}/{name}" if name else base


def aimservices_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/aimservices"
    return f"{base}/{name}" if name else base


def statefulsets_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/apps/v1/namespaces/{namespace}/statefulsets"
    return f"{base}/{name}" if name else base


def cache_manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """An AIMKVCache with small resources (``spec`` keys override or add fields)."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "AIMKVCache",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"resources": SMALL_RESOURCES, **spec},
    }


def path_of(obj: Mapping[str, Any]) -> str:
    md = obj["metadata"]
    kind = obj["kind"]
    if kind == "AIMKVCache":
        return kvcaches_path(md["namespace"], md["name"])
    if kind == "AIMService":
        return aimservices_path(md["namespace"], md["name"])
    if kind == "StatefulSet":
        return statefulsets_path(md["namespace"], md["name"])
    raise ValueError(f"no path for {kind}")


async def with_retries(
    call: Callable[[], Awaitable[T]], *, attempts: int = 20, delay: float = 0.25
) -> T:
    """Retry transient failures (no answer, 429, 5xx) of a test-side request."""
    for attempt in range(attempts):
        try:
            return await call()
        except (TransportError, TooManyRequests) as err:
            last: ClientError = err
        except ApiError as err:
            if err.status < 500:
                raise
            last = err
        await asyncio.sleep(min(delay * 2**attempt, 3.0))
    raise last


async def apply_all(
    rest: RestClient,
    objects: Iterable[Mapping[str, Any]],
    *,
    field_manager: str = TEST_MANAGER,
    concurrency: int = 32,
) -> int:
    """Server-side apply every object (creating it), ``concurrency`` requests at a time."""
    sem = asyncio.Semaphore(concurrency)

    async def one(obj: Mapping[str, Any]) -> None:
        async with sem:
            await with_retries(
                lambda: rest.request(
                    "PATCH",
                    path_of(obj),
                    params={"fieldManager": field_manager, "force": "true"},
                    body=dict(obj),
                    content_type=APPLY,
                )
            )

    objs = list(objects)
    await asyncio.gather(*(one(o) for o in objs))
    return len(objs)


async def _get(rest: RestClient, path: str, params: Mapping[str, str]) -> dict[str, Any]:
    page: dict[str, Any] = await with_retries(lambda: rest.request("GET", path, params=params))
    return page


async def list_items(rest: RestClient, path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of a (paginated) list."""
    items: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "500", **params}
    while True:
        page = await _get(rest, path, query)
        items.extend(page.get("items") or [])
        cont = (page.get("metadata") or {}).get("continue")
        if not cont:
            return items
        query = {"limit": "500", "continue": cont, **params}


async def get_or_none(rest: RestClient, path: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = await with_retries(lambda: rest.request("GET", path))
    except NotFound:
        return None
    return obj


# -- the convergence audit (always read live from the server) ------------------------------------

CHILD_KINDS = {
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "Service": "/api/v1/namespaces/{ns}/services",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
}


@dataclass
class Audit:
    """The state of every AIMKVCache of a namespace and its children, from one live read.

    A cache is *converged* when its status was written for its current generation and it has
    exactly one password Secret, StatefulSet, Service and NetworkPolicy controlled by it (the
    StatefulSet running the image its spec asks for).
    """

    caches: int = 0
    converged: int = 0
    children: Counter[str] = field(default_factory=Counter)
    not_converged: list[str] = field(default_factory=list)
    # Children a cache has more than one of, per kind ("kind/cache": count).
    duplicates: dict[str, int] = field(default_factory=dict)
    # Children whose controller ownerReferences are not exactly one.
    bad_owner_refs: list[str] = field(default_factory=list)
    # Children controlled by a cache that no longer exists.
    orphans: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.bad_owner_refs)

    def complete(self, expected: int) -> bool:
        return self.caches == expected and self.converged == expected and self.clean

    def summary(self) -> str:
        return (
            f"{self.converged}/{self.caches} converged, children {dict(self.children)}, "
            f"duplicates {len(self.duplicates)}, bad ownerRefs {len(self.bad_owner_refs)}, "
            f"orphans {len(self.orphans)}; not converged e.g. {self.not_converged[:3]}"
        )


def want_image(cache: Mapping[str, Any]) -> str:
    spec = cache.get("spec")
    image = spec.get("image") if isinstance(spec, Mapping) else None
    return str(image or DEFAULT_IMAGE)


async def audit(rest: RestClient, namespace: str) -> Audit:
    caches = await list_items(rest, kvcaches_path(namespace))
    by_uid = {c["metadata"]["uid"]: c for c in caches}
    owned: dict[str, dict[str, list[dict[str, Any]]]] = {k: {} for k in CHILD_KINDS}
    result = Audit(caches=len(caches))
    selector = f"{MANAGED_BY}={KVCACHE_CONTROLLER}"
    for kind, template in CHILD_KINDS.items():
        for child in await list_items(rest, template.format(ns=namespace), labelSelector=selector):
            result.children[kind] += 1
            name = f"{kind}/{child['metadata']['name']}"
            refs = child["metadata"].get("ownerReferences") or []
            controllers = [r for r in refs if r.get("controller")]
            if len(controllers) != 1:
                result.bad_owner_refs.append(name)
                continue
            uid = controllers[0].get("uid")
            if uid not in by_uid or controllers[0].get("kind") != "AIMKVCache":
                result.orphans.append(name)
                continue
            owned[kind].setdefault(uid, []).append(child)
    for uid, cache in by_uid.items():
        name = cache["metadata"]["name"]
        ok = True
        for kind in CHILD_KINDS:
            mine = owned[kind].get(uid, [])
            if len(mine) > 1:
                result.duplicates[f"{kind}/{name}"] = len(mine)
            if len(mine) != 1:
                ok = False
            elif kind == "StatefulSet":
                containers = mine[0]["spec"]["template"]["spec"]["containers"]
                ok = ok and containers[0].get("image") == want_image(cache)
        status = cache.get("status") or {}
        if status.get("observedGeneration") != cache["metadata"].get("generation"):
            ok = False
        if ok:
            result.converged += 1
        else:
            result.not_converged.append(name)
    result.not_converged.sort()
    return result


# -- metrics -------------------------------------------------------------------------------------


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of ``registry``, as ``generate_latest`` renders it for /metrics."""
    return parse_metrics(generate_latest(registry).decode())


def parse_metrics(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = float(s.value)
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


# -- waiting -------------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    what: str,
    interval: float = 0.5,
    alive: asyncio.Task[Any] | None = None,
) -> T:
    """Await ``check()`` until it returns something truthy; transient client errors count as
    "not yet". Fails at once when ``alive`` (the operator's task) has ended."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        if alive is not None and alive.done():
            exc = alive.exception() if not alive.cancelled() else None
            raise AssertionError(f"the operator stopped while waiting for {what}: {exc!r}")
        try:
            value = await check()
            last = value
            if value:
                return value
        except ClientError as err:
            last = err
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}; last: {last}")
        await asyncio.sleep(interval)


# -- the operator, in-process --------------------------------------------------------------------


@dataclass
class InProcessOperator:
    """``Manager`` + ``add_to_manager``, as ``aimctl run`` wires them, scoped to one namespace."""

    namespace: str
    mgr: Manager
    task: asyncio.Task[None]

    def metrics(self) -> Samples:
        return scrape(self.mgr.registry)

    def drained(self) -> bool:
        """No key due or being worked on in any controller."""
        samples = self.metrics()
        return (
            all(len(c.queue) == 0 for c in self.mgr.controllers)
            and total(samples, "controller_runtime_active_workers") == 0
        )

    def enqueue(self, controller: str, *keys: Request) -> None:
        """Reconcile ``keys`` again now, as a resync would."""
        queue = next(c.queue for c in self.mgr.controllers if c.name == controller)
        for key in keys:
            queue.add(key)

    def retrying(self, keys: Iterable[Request]) -> list[Request]:
        """Keys whose last reconcile failed and that wait for a backoff retry."""
        out: list[Request] = []
        for c in self.mgr.controllers:
            out.extend(k for k in keys if c.queue.num_requeues(k) > 0)
        return out

    def reconciles(self, controller: str = KVCACHE_CONTROLLER, result: str | None = None) -> float:
        labels = {"controller": controller}
        if result is not None:
            labels["result"] = result
        return total(self.metrics(), "controller_runtime_reconcile_total", **labels)

    def writes(self) -> int:
        return self.mgr.rest.stats.writes

    def patches(self) -> int:
        return self.mgr.rest.stats.requests["PATCH"]

    def refused_patches(self) -> int:
        """PATCHes the server answered 409: create-only applies of a child that exists but had
        left the label-filtered cache (no write happened; the operator then reads it live)."""
        return int(
            sum(
                sample.value
                for family in self.mgr.registry.collect()
                if family.name == "rest_client_requests"
                for sample in family.samples
                if sample.name == "rest_client_requests_total"
                and sample.labels.get("method") == "PATCH"
                and sample.labels.get("code") == "409"
            )
        )

    def assert_alive(self) -> None:
        if self.task.done():
            exc = self.task.exception() if not self.task.cancelled() else None
            raise AssertionError(f"the operator's manager task ended: {exc!r}")


async def _synced(mgr: Manager) -> bool:
    infs = mgr.informers.informers
    return bool(infs) and all(i.has_synced for i in infs)


@contextlib.asynccontextmanager
async def run_operator(
    kubeconfig: Path | str,
    namespace: str,
    *,
    host: str | None = None,
    kvcache_workers: int = 2,
    service_workers: int = 2,
) -> AsyncIterator[InProcessOperator]:
    """Run the operator on this event loop; ``host`` redirects it (e.g. through a proxy)."""
    config: ClusterConfig = await load_kubeconfig(str(kubeconfig))
    if host is not None:
        config.host = host
    mgr = Manager(
        config,
        namespaces=[namespace],
        metrics_bind_address="0",
        health_probe_bind_address="0",
        graceful_shutdown_timeout=5,
    )
    add_to_manager(mgr, kvcache_workers=kvcache_workers, service_workers=service_workers)
    task = asyncio.create_task(mgr.run(), name=f"operator-{namespace}")
    op = InProcessOperator(namespace, mgr, task)
    try:
        await eventually(lambda: _synced(mgr), within=120, what="caches synced", alive=task)
        yield op
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


class ThreadedOperator:
    """The operator on an event loop of its own thread, for synchronous tests (hypothesis)."""

    def __init__(self, kubeconfig: Path | str, namespace: str) -> None:
        self._kubeconfig = kubeconfig
        self.namespace = namespace
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.op: InProcessOperator | None = None
        self._thread = threading.Thread(target=self._main, name="operator", daemon=True)

    def __enter__(self) -> ThreadedOperator:
        self._thread.start()
        if not self._ready.wait(180):
            raise AssertionError("the operator did not start within 180 s")
        if self._error is not None:
            raise AssertionError(f"the operator failed to start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as err:
            self._error = err
        finally:
            self._ready.set()
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with run_operator(self._kubeconfig, self.namespace) as op:
            self.op = op
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Callable[[InProcessOperator], T], timeout: float = 30) -> T:
        """Run ``fn(operator)`` on the operator's loop (its state is not thread-safe)."""
        assert self.op is not None
        op = self.op

        async def run() -> T:
            return fn(op)

        return self.run(run(), timeout)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive() and self.op is not None and not self.op.task.done()


# -- a network partition between the operator and the API server ---------------------------------


class PartitionProxy:
    """A TCP proxy (TLS passes through) in front of the API server.

    :meth:`partition` drops every open connection and holds new ones (accepted, nothing
    forwarded) until :meth:`heal`: to the client this is a network partition. Held requests
    then proceed, so a watch re-opened during the partition reaches the server only afterwards.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connections = 0
        self.dropped = 0
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def partition(self) -> None:
        self._open.clear()
        for w in list(self._live):
            self.dropped += 1
            w.transport.abort()
        self._live.clear()
        await asyncio.sleep(0)

    def heal(self) -> None:
        self._open.set()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await self._open.wait()
        if self._closed:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._live.update((writer, up_writer))
        for t in (self._pump(reader, up_writer), self._pump(up_reader, writer)):
            task = asyncio.create_task(t)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closed = True
        self._open.set()  # held connections are released, and aborted
        if self._server is not None:
            self._server.close()
        for w in list(self._live):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- figures -------------------------------------------------------------------------------------


def machine() -> str:
    cpus = os.cpu_count() or 0
    try:
        load = "load {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())
    except OSError:
        load = "load n/a"
    return f"{platform.machine()} {cpus} CPUs, Python {platform.python_version()}, {load}"


# Every report of this session, printed again in pytest's terminal summary (conftest.py).
REPORTS: list[dict[str, Any]] = []


def report(test: str, figures: Mapping[str, Any]) -> None:
    """Print the test's figures; with ``AIMCTL_RELIABILITY_RESULTS`` also write them as JSON."""
    record: dict[str, Any] = {
        "test": test,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        **figures,
    }
    REPORTS.append(record)
    print(f"\nRELIABILITY {test}: " + json.dumps(record, default=str))
    out = os.environ.get("AIMCTL_RELIABILITY_RESULTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{test}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


def log2_bound(elapsed: float, base: float = 0.005) -> float:
    """How many retries per-key exponential backoff (``base * 2**n``) allows in ``elapsed`` s."""
    return math.log2(max(elapsed, base) / base) + 1
