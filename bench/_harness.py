"""Shared machinery of the benchmarks: control plane, CRDs, namespaces, caches, convergence,
request counting, peer processes and their memory.

Owns the I/O; the arithmetic is in :mod:`bench._stats`. Every benchmark follows one shape::

    with control_plane(args.kubeconfig) as plane:          # envtest, or an existing cluster
        asyncio.run(main(plane))                           # async with Bench(plane) as bench: ...

Requests the harness makes itself (creating caches, watching for convergence, cleaning up) are
recorded in :attr:`Bench.own`, keyed like the API server's ``apiserver_request_total``, so
:meth:`Bench.requests_since` can report only what the peer under test sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil
import yaml

from aimctl.client import ApiError, NotFound, RestClient, TransportError, load_kubeconfig
from aimctl.envtest import ControlPlane
from bench._stats import (
    RequestKey,
    counter_delta,
    open_watches,
    parse_samples,
    request_counts,
    subtract,
)
from bench.peers._kvcache import API_VERSION, GROUP, PLURAL, VERSION, cache_path

__all__ = [
    "APISERVER_ARGS",
    "CRD_DIR",
    "REPO",
    "RESULTS_DIR",
    "Bench",
    "Convergence",
    "Peer",
    "Plane",
    "cache_names",
    "control_plane",
    "free_port",
    "http_get",
    "http_session",
    "load_now",
    "machine_info",
    "python",
    "request_key",
]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
REPO = Path(__file__).resolve().parent.parent
CRD_DIR = REPO / "manifests" / "crds"
RESULTS_DIR = REPO / "docs" / "bench-results"

# API Priority and Fairness: the admin kubeconfig the peers use is in system:masters, which the
# "exempt" FlowSchema serves without queuing, so these limits only matter for other clients.
# They are raised anyway so no run is bounded by the apiserver's default 400 + 200 in flight.
# envtest's service range is a /24: 1000 Services would fail with "range is full".
APISERVER_ARGS: dict[str, str] = {
    "max-requests-inflight": "3000",
    "max-mutating-requests-inflight": "1000",
    "service-cluster-ip-range": "10.0.0.0/16",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_now() -> str:
    """``uptime``'s load averages, e.g. ``0.52, 0.61, 0.70``."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def cache_names(n: int) -> list[str]:
    return [f"cache-{i:04d}" for i in range(n)]


def request_key(
    method: str, path: str, params: Mapping[str, Any] | None = None, content_type: str = ""
) -> RequestKey:
    """How the API server counts a request in ``apiserver_request_total``.

    ``GET`` of a collection is ``LIST`` (``WATCH`` with ``watch=true``), a server-side apply
    ``PATCH`` is ``APPLY``, a ``DELETE`` of a collection is ``DELETECOLLECTION``.
    """
    method = method.upper()
    parts = [p for p in urlsplit(path).path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return RequestKey(method, "", "", "/" + "/".join(parts))
    if len(rest) >= 2 and rest[0] == "namespaces":
        rest = rest[2:] if len(rest) > 2 else ["namespaces", rest[1]]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    verb = method
    if method == "GET" and not name:
        verb = "WATCH" if str((params or {}).get("watch", "")).lower() in ("true", "1") else "LIST"
    elif method == "PATCH" and content_type.startswith("application/apply-patch"):
        verb = "APPLY"
    elif method == "DELETE" and not name:
        verb = "DELETECOLLECTION"
    return RequestKey(verb, group, resource, sub)


# -- machine ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(versions: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a result depends on: cores, CPU, RAM, Python, kube versions, load, date."""
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "load (1, 5, 15 min)": load_now(),
    }
    info.update(versions or {})
    return info


# -- the control plane ------------------------------------------------------------------------


@dataclass
class Plane:
    """Where the benchmark runs: a kubeconfig, and the ControlPlane when we started one."""

    kubeconfig: Path
    control_plane: ControlPlane | None
    apiserver_args: dict[str, str]


@contextlib.contextmanager
def control_plane(
    kubeconfig: str | None = None, apiserver_args: Mapping[str, str] | None = None
) -> Iterator[Plane]:
    """Start an envtest control plane with the AIM CRDs (stopped on exit), or use
    ``kubeconfig`` as it is (then the caller's cluster must serve the CRDs or let us apply them).

    Must run in the main thread, outside the event loop: the children are tied to it
    (``PR_SET_PDEATHSIG``), so a killed benchmark leaves no apiserver behind.
    """
    if kubeconfig is not None:
        yield Plane(Path(kubeconfig), None, {})
        return
    args = dict(APISERVER_ARGS if apiserver_args is None else apiserver_args)
    cp = ControlPlane(apiserver_args=args)
    with cp:
        cp.install_crds([CRD_DIR])
        yield Plane(cp.kubeconfig, cp, args)


# -- the harness's client ---------------------------------------------------------------------


class Bench:
    """An admin client for the harness's own requests, which it records in :attr:`own`."""

    def __init__(self, plane: Plane) -> None:
        self.plane = plane
        self.own: Counter[RequestKey] = Counter()
        self._rest: RestClient | None = None

    async def __aenter__(self) -> Bench:
        self._rest = RestClient(await load_kubeconfig(str(self.plane.kubeconfig)))
        if self.plane.control_plane is None:
            await self.install_crds()
        await self.ensure_default_storage_class()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._rest is not None:
            await self._rest.aclose()

    @property
    def rest(self) -> RestClient:
        assert self._rest is not None, "use `async with Bench(plane)`"
        return self._rest

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        self.own[request_key(method, path, params, content_type or "")] += 1
        return await self.rest.request(
            method, path, params=params, body=body, content_type=content_type
        )

    # -- cluster facts ---------------------------------------------------------------------

    async def versions(self) -> dict[str, str]:
        v = await self.request("GET", "/version")
        out = {"kube-apiserver": str(v.get("gitVersion", "?"))}
        cp = self.plane.control_plane
        if cp is not None:
            from aimctl.envtest import ETCD_VERSION

            out["etcd"] = ETCD_VERSION
            args = " ".join(f"--{k}={v}" for k, v in self.plane.apiserver_args.items())
            out["apiserver flags"] = args or "(defaults)"
        return out

    async def install_crds(self) -> None:
        """Server-side apply the CRDs in ``manifests/crds`` and wait until they serve lists."""
        for path in sorted(CRD_DIR.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc:
                    continue
                await self.request(
                    "PATCH",
                    f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{doc['metadata']['name']}",
                    params={"fieldManager": "aimctl-bench", "force": "true"},
                    body=doc,
                    content_type="application/apply-patch+yaml",
                )
        deadline = time.monotonic() + 60
        while True:
            try:
                await self.request("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}", params={"limit": 1})
                return
            except (ApiError, TransportError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def ensure_default_storage_class(self) -> None:
        """A default StorageClass, as every real cluster has, so aimctl's storage diagnosis
        reports the normal ``CreatingClaim`` rather than ``NoDefaultStorageClass`` (envtest has
        none, and no provisioner: claims are never created without a StatefulSet controller)."""
        classes = await self.request("GET", "/apis/storage.k8s.io/v1/storageclasses")
        if any(
            (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
            for c in classes.get("items", [])
        ):
            return
        await self.request(
            "POST",
            "/apis/storage.k8s.io/v1/storageclasses",
            body={
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": "bench-default",
                    "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                },
                "provisioner": "bench.aimctl.example/none",
            },
        )

    def server_cpu_seconds(self) -> float | None:
        """User + system CPU seconds used so far by etcd and kube-apiserver (None when the
        control plane is not ours)."""
        cp = self.plane.control_plane
        if cp is None:
            return None
        total = 0.0
        for proc in cp.processes:
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(proc.pid).cpu_times()
                total += t.user + t.system
        return total

    # -- requests seen by the server --------------------------------------------------------

    async def scrape(self, path: str = "/metrics") -> str:
        """The apiserver's metrics text (a non-resource request: never counted as a peer's)."""
        self.own[request_key("GET", path)] += 1
        body = await self.rest.request("GET", path)
        return str(body.get("body", ""))

    async def request_counts(self) -> Counter[RequestKey]:
        return request_counts(parse_samples(await self.scrape()))

    async def open_watches(self) -> Counter[RequestKey]:
        """Watches the server serves now, by resource (the harness's own included)."""
        return open_watches(parse_samples(await self.scrape()))

    def own_snapshot(self) -> Counter[RequestKey]:
        return Counter(self.own)

    async def requests_since(
        self, before: Mapping[RequestKey, int], own_before: Mapping[RequestKey, int]
    ) -> Counter[RequestKey]:
        """What others (the peer under test) sent since ``before`` was scraped."""
        after = await self.request_counts()
        ours = counter_delta(own_before, self.own)
        return subtract(counter_delta(before, after), ours)

    # -- namespaces and caches --------------------------------------------------------------

    async def create_namespace(self, name: str) -> None:
        await self.request(
            "POST",
            "/api/v1/namespaces",
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )

    async def delete_namespace(self, name: str) -> None:
        """Delete everything the benchmark put in ``name``, then the namespace.

        envtest has no garbage collector and no namespace controller, so the caches and their
        children are deleted explicitly (finalizers removed first, as no operator runs now), and
        the namespace itself stays Terminating, which is harmless: every run uses a new one.
        """
        caches = await self.request("GET", cache_path(name))
        for item in caches.get("items", []):
            if item["metadata"].get("finalizers"):
                with contextlib.suppress(NotFound):
                    await self.request(
                        "PATCH",
                        cache_path(name, item["metadata"]["name"]),
                        body={"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
        for path in (
            cache_path(name),
            f"/apis/apps/v1/namespaces/{name}/statefulsets",
            f"/api/v1/namespaces/{name}/services",
            f"/apis/networking.k8s.io/v1/namespaces/{name}/networkpolicies",
            f"/api/v1/namespaces/{name}/events",
        ):
            with contextlib.suppress(NotFound):
                await self.request("DELETE", path)
        with contextlib.suppress(NotFound):
            await self.request("DELETE", f"/api/v1/namespaces/{name}")

    async def create_caches(
        self,
        namespace: str,
        names: Sequence[str],
        *,
        concurrency: int = 64,
        on_created: Any = None,
    ) -> None:
        """Create one AIMKVCache per name (empty spec: the server fills in the defaults), at
        most ``concurrency`` at a time; ``on_created(name)`` runs after each."""
        sem = asyncio.Semaphore(concurrency)
        path = cache_path(namespace)

        async def one(name: str) -> None:
            body = {
                "apiVersion": API_VERSION,
                "kind": "AIMKVCache",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {},
            }
            async with sem:
                await self.request("POST", path, body=body)
            if on_created is not None:
                on_created(name)

        await asyncio.gather(*(one(n) for n in names))


# -- convergence ------------------------------------------------------------------------------


@dataclass
class Convergence:
    """Watches a namespace until every expected cache is converged: its StatefulSet and
    Service exist and its status names the StatefulSet for the current generation.

    Times are ``time.monotonic()``; ``created[name]`` is set by the caller when the cache's
    POST returned, ``converged[name]`` when the last of its three conditions held.
    """

    bench: Bench
    namespace: str
    names: Sequence[str]
    created: dict[str, float] = field(default_factory=dict)
    converged: dict[str, float] = field(default_factory=dict)
    done_at: float | None = None
    events: int = 0
    _sts: set[str] = field(default_factory=set)
    _svc: set[str] = field(default_factory=set)
    _status_ok: set[str] = field(default_factory=set)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _done: asyncio.Event = field(default_factory=asyncio.Event)
    _synced: int = 0

    def __post_init__(self) -> None:
        self._expected = set(self.names)

    def _check(self, cache: str) -> None:
        if cache in self.converged or cache not in self._expected:
            return
        if cache in self._status_ok and cache in self._sts and cache in self._svc:
            now = time.monotonic()
            self.converged[cache] = now
            if len(self.converged) == len(self._expected):
                self.done_at = now
                self._done.set()

    def _on(self, kind: str, etype: str, obj: Mapping[str, Any]) -> None:
        self.events += 1
        name = obj["metadata"]["name"]
        if kind == "sts" and name.endswith("-statefulset"):
            cache = name.removesuffix("-statefulset")
            (self._sts.discard if etype == "DELETED" else self._sts.add)(cache)
        elif kind == "svc" and name.endswith("-svc"):
            cache = name.removesuffix("-svc")
            (self._svc.discard if etype == "DELETED" else self._svc.add)(cache)
        elif kind == "cache":
            cache = name
            status = obj.get("status") or {}
            ok = bool(status.get("statefulSetName")) and status.get("observedGeneration") == obj[
                "metadata"
            ].get("generation")
            (self._status_ok.add if ok and etype != "DELETED" else self._status_ok.discard)(cache)
        else:
            return
        self._check(cache)

    async def _watch(self, kind: str, path: str, synced: asyncio.Event) -> None:
        listed = await self.bench.request("GET", path)
        for item in listed.get("items", []):
            self._on(kind, "ADDED", item)
        rv = listed["metadata"]["resourceVersion"]
        synced.set()
        while True:
            params = {"resourceVersion": rv, "allowWatchBookmarks": True, "timeoutSeconds": 1800}
            self.bench.own[request_key("GET", path, {"watch": True})] += 1
            async with self.bench.rest.watch(path, params) as stream:
                async for ev in stream:
                    rv = ev.object.get("metadata", {}).get("resourceVersion", rv)
                    if ev.type != "BOOKMARK":
                        self._on(kind, ev.type, ev.object)

    async def start(self) -> None:
        """List and start watching; returns once the three lists are in."""
        ns = self.namespace
        paths = {
            "cache": cache_path(ns),
            "sts": f"/apis/apps/v1/namespaces/{ns}/statefulsets",
            "svc": f"/api/v1/namespaces/{ns}/services",
        }
        events = []
        for kind, path in paths.items():
            synced = asyncio.Event()
            events.append(synced)
            self._tasks.append(asyncio.create_task(self._watch(kind, path, synced)))
        for e in events:
            await e.wait()

    async def wait(self, within: float) -> bool:
        """Until every cache converged (True) or ``within`` seconds passed (False)."""
        try:
            async with asyncio.timeout(within):
                while not self._done.is_set():
                    for t in self._tasks:
                        failed = t.exception() if t.done() and not t.cancelled() else None
                        if failed is not None:
                            raise failed
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await self._done.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t

    def per_object_latencies(self) -> list[float]:
        """Seconds from each cache's creation to its convergence."""
        return [
            self.converged[n] - self.created[n]
            for n in self.names
            if n in self.converged and n in self.created
        ]


# -- peer processes ---------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Peer:
    """A peer (operator or ceiling) as a child process, with sampled memory and CPU.

    Guarantees: the child runs in its own process group and dies with the benchmark
    (``PR_SET_PDEATHSIG``; start it from the main thread); :meth:`stop` reaps it and kills
    whatever is left in its group. A sampler thread records the peak RSS of the process and its
    children every ``interval`` seconds (the kernel's own high-water mark ``VmHWM`` is read too,
    so a short spike between samples is not missed).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        interval: float = 0.05,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.interval = interval
        self.peak_rss = 0
        self.last_cpu = 0.0
        self.rss_samples: list[tuple[float, int]] = []
        self.exit_code: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._proc: psutil.Process | None = None
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,
                start_new_session=True,
                preexec_fn=_die_with_parent
                if threading.current_thread() is threading.main_thread()
                else None,
            )
        self._proc = psutil.Process(self._popen.pid)
        self._stop_sampling.clear()
        self._sampler = threading.Thread(target=self._sample, name=f"rss-{self.name}", daemon=True)
        self._sampler.start()

    def _rss(self) -> int:
        assert self._proc is not None
        total = 0
        with contextlib.suppress(psutil.Error):
            procs = [self._proc, *self._proc.children(recursive=True)]
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        return total

    def _hwm(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _sample(self) -> None:
        while not self._stop_sampling.is_set():
            rss = self._rss()
            hwm = self._hwm()
            self.peak_rss = max(self.peak_rss, rss, hwm)
            self.rss_samples.append((time.monotonic(), rss))
            cpu = self._cpu()
            if cpu == cpu:  # not NaN: the process still exists
                self.last_cpu = cpu
            self._stop_sampling.wait(self.interval)

    def rss_now(self) -> int:
        return self._rss()

    def _cpu(self) -> float:
        assert self._proc is not None
        try:
            t = self._proc.cpu_times()
        except psutil.Error:
            return float("nan")
        return float(t.user + t.system + t.children_user + t.children_system)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the process (and its reaped children);
        after the process exited, the last value the sampler saw."""
        cpu = self._cpu()
        return cpu if cpu == cpu else self.last_cpu

    def signal(self, sig: int) -> None:
        if self.running:
            os.kill(self.pid, sig)

    def check_alive(self) -> None:
        if self._popen is not None and self._popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with code {self._popen.returncode}; log: {self.log_path}\n"
                + self.log_tail()
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_exit(self, within: float) -> int | None:
        deadline = time.monotonic() + within
        while self._popen is not None and self._popen.poll() is None:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)
        return self._popen.returncode if self._popen is not None else None

    async def stop(self, within: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``within`` seconds; returns the exit code."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
            if await self.wait_exit(within) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                await asyncio.to_thread(popen.wait)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        self._stop_sampling.set()
        if self._sampler is not None:
            self._sampler.join()
        self.exit_code = popen.returncode
        return self.exit_code


async def http_get(
    url: str, *, within: float = 2.0, session: aiohttp.ClientSession | None = None
) -> tuple[int, str]:
    """GET a plain-HTTP URL; (status, text), or (0, error) when nothing answered."""
    own = session is None
    s = session or aiohttp.ClientSession()
    try:
        async with s.get(url, timeout=aiohttp.ClientTimeout(total=within)) as resp:
            return resp.status, await resp.text()
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        return 0, str(e)
    finally:
        if own:
            await s.close()


@contextlib.asynccontextmanager
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def python() -> str:
    return sys.executable
