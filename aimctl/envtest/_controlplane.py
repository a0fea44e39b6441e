"""ControlPlane: etcd + kube-apiserver (+ full-mode components) as one object.

Owns the working directory, the certificates, the admin kubeconfig and the order of start and
stop. Each process is driven by its own module (``_etcd``, ``_apiserver``, ``_full``,
``_node``); this module only composes them and adds the test-facing operations (users, CRDs,
namespaces, fault injection).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aimctl.envtest._apiserver import APIServer, CertFiles
from aimctl.envtest._binaries import (
    Assets,
    BinariesNotFound,
    default_cache_dir,
    find_assets,
    find_node_assets,
)
from aimctl.envtest._certs import (
    CertificateAuthority,
    service_account_key_pair,
    write_private,
)
from aimctl.envtest._crds import install_crds
from aimctl.envtest._etcd import Etcd
from aimctl.envtest._full import (
    DEFAULT_CLASS_ANNOTATION,
    FullComponents,
    kwok_storage_class,
    node_manifest,
    node_ready,
)
from aimctl.envtest._kubeconfig import write_kubeconfig
from aimctl.envtest._node import RealNode, apiserver_flags
from aimctl.envtest._node_config import LOCAL_PATH_CLASS, local_path_class
from aimctl.envtest._ports import LOOPBACK
from aimctl.envtest._process import ManagedProcess, ProcessStartError, port_conflict, run_kubectl
from aimctl.envtest._rest import ApiError, SyncClient

__all__ = ["DEFAULT_START_TIMEOUT", "ControlPlane", "User", "start_timeout_from_env"]

DEFAULT_START_TIMEOUT = 120.0
START_ATTEMPTS = 3
SERVING_HOSTS = (
    "localhost",
    LOOPBACK,
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "10.0.0.1",
)


def start_timeout_from_env(env: Mapping[str, str] | None = None) -> float:
    """``KUBEBUILDER_CONTROLPLANE_START_TIMEOUT`` (seconds, "90" or "90s"), else 120 s."""
    raw = (os.environ if env is None else env).get("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT", "")
    raw = raw.strip().removesuffix("s")
    return float(raw) if raw else DEFAULT_START_TIMEOUT


@dataclass(frozen=True)
class User:
    """Credentials of a user made by :meth:`ControlPlane.add_user`: a client certificate.

    ``kubeconfig`` is a file that kubectl and ``kubernetes_asyncio.config.load_kube_config`` read.
    """

    name: str
    groups: tuple[str, ...]
    kubeconfig: Path
    cert_file: Path
    key_file: Path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "user"


class ControlPlane:
    """etcd and kube-apiserver on loopback; in ``full`` mode also kube-controller-manager,
    kube-scheduler and kwok with one simulated node and a default StorageClass.

    Guarantees:
        - Everything binds to 127.0.0.1 on ports the OS chose; a start that lost a port race is
          retried with new ports (up to 3 attempts).
        - Authentication is by client certificate, authorization by RBAC. :attr:`kubeconfig` is
          an admin (``system:masters``) kubeconfig.
        - After :meth:`stop` no child process remains, and a working directory this object
          created is removed (one passed in as ``work_dir`` is left in place).
        - Each child's output is in ``work_dir/logs/<name>.log``; a failed start raises
          :class:`ProcessStartError` carrying the tail of that log.

    Caller obligations: call :meth:`stop` (or use ``with``), unless ``detached`` (then
    ``aimctl cluster down`` stops the processes by pid).

    Raises:
        BinariesNotFound: from the constructor when ``assets`` is not given and the binaries
            are missing.
        ProcessStartError: from :meth:`start`, after everything started so far was stopped.
    """

    def __init__(
        self,
        *,
        full: bool = False,
        assets: Assets | None = None,
        work_dir: Path | None = None,
        start_timeout: float | None = None,
        stop_timeout: float = 10.0,
        apiserver_args: Mapping[str, str] | None = None,
        detached: bool = False,
        real_node: bool = False,
        redis_images: Sequence[str] = (),
    ) -> None:
        if real_node and not full:
            raise ValueError("a real node needs a full-mode control plane (full=True)")
        self.full = full
        self.real_node = real_node
        self._redis_images = tuple(redis_images)
        # Checked before anything starts: a missing kubelet is said at once, not after etcd.
        self._node_assets = find_node_assets() if real_node else None
        self.assets = assets if assets is not None else find_assets(full=full)
        self.start_timeout = (
            start_timeout if start_timeout is not None else start_timeout_from_env()
        )
        self.stop_timeout = stop_timeout
        self.detached = detached
        self.start_duration = 0.0
        self._apiserver_args = dict(apiserver_args or {})
        self._owns_dir = work_dir is None
        self._work_dir = work_dir
        self._ca: CertificateAuthority | None = None
        self._users = 0
        self._etcd: Etcd | None = None
        self._apiserver: APIServer | None = None
        self._full: FullComponents | None = None
        self._node: RealNode | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def work_dir(self) -> Path:
        if self._work_dir is None:
            raise RuntimeError("the control plane has not been started")
        return self._work_dir

    @property
    def certs(self) -> CertFiles:
        return CertFiles(self.work_dir / "certs")

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (``system:masters``)."""
        return self.work_dir / "kubeconfig"

    @property
    def url(self) -> str:
        """The apiserver's URL, ``https://127.0.0.1:<port>``."""
        return self._server().url

    @property
    def ca_file(self) -> Path:
        """The CA that signed the serving certificate (and all client certificates)."""
        return self.certs.ca

    @property
    def processes(self) -> list[ManagedProcess]:
        """The child processes in start order."""
        procs = [p.process for p in (self._etcd, self._apiserver) if p is not None]
        procs += self._full.processes if self._full is not None else []
        return procs + (self._node.processes if self._node is not None else [])

    def _server(self) -> APIServer:
        if self._apiserver is None:
            raise RuntimeError("the control plane has not been started")
        return self._apiserver

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_certs(self) -> None:
        certs = self.certs
        certs.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._ca = ca = CertificateAuthority()
        certs.ca.write_bytes(ca.cert_pem)
        serving = ca.issue_serving(SERVING_HOSTS)
        certs.serving_cert.write_bytes(serving.cert_pem)
        write_private(certs.serving_key, serving.key_pem)
        sa = service_account_key_pair()
        certs.sa_public.write_bytes(sa.cert_pem)
        write_private(certs.sa_private, sa.key_pem)
        admin = ca.issue_client("admin", ["system:masters"])
        certs.admin_cert.write_bytes(admin.cert_pem)
        write_private(certs.admin_key, admin.key_pem)
        if self.real_node:
            self._apiserver_args = {**apiserver_flags(ca, certs), **self._apiserver_args}

    def start(self) -> ControlPlane:
        """Start every process and wait until the cluster is usable; returns ``self``.

        Calling it on a started control plane does nothing (``with ControlPlane() as cp``
        already starts it).
        """
        if self._apiserver is not None:
            return self
        began = time.monotonic()
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="aimctl-envtest-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._write_certs()
            self._start_core()
            admin = self.certs
            assert self._ca is not None
            write_kubeconfig(
                self.kubeconfig,
                server=self.url,
                ca_pem=self._ca.cert_pem,
                cert_pem=admin.admin_cert.read_bytes(),
                key_pem=admin.admin_key.read_bytes(),
            )
            client = self.client()
            self._server().process.wait_ready(
                lambda: client.ok("/api/v1/namespaces/default"), timeout=self.start_timeout
            )
            if self.full:
                self._full = FullComponents(
                    self.assets,
                    work_dir=self.work_dir,
                    certs=self.certs,
                    kubeconfig=self.kubeconfig,
                    detached=self.detached,
                )
                self._full.start(client, timeout=self.start_timeout)
            if self._node_assets is not None:
                self._start_node(client)
        except BaseException:
            self.stop()
            raise
        self.start_duration = time.monotonic() - began
        return self

    def _start_node(self, client: SyncClient) -> None:
        assert self._ca is not None and self._node_assets is not None
        self._node = RealNode(
            self._node_assets,
            work_dir=self.work_dir,
            ca=self._ca,
            certs=self.certs,
            server=self.url,
            redis_images=self._redis_images,
            image_cache=default_cache_dir() / "images",
            detached=self.detached,
        )
        self._node.start(client, timeout=self.start_timeout)
        self._make_default(client, LOCAL_PATH_CLASS)
        client.create("/apis/storage.k8s.io/v1/storageclasses", local_path_class(), exist_ok=True)

    def _start_core(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self._etcd = Etcd(
                self.assets.path("etcd"), work_dir=self.work_dir, detached=self.detached
            )
            self._apiserver = APIServer(
                self.assets.path("kube-apiserver"),
                work_dir=self.work_dir,
                certs=self.certs,
                service_account_admission=self.full,
                extra_args=self._apiserver_args,
                detached=self.detached,
            )
            try:
                self._etcd.start(timeout=self.start_timeout)
                self._apiserver.start(etcd_url=self._etcd.url, timeout=self.start_timeout)
                return
            except ProcessStartError as e:
                self._apiserver.stop(self.stop_timeout)
                self._etcd.stop(self.stop_timeout)
                if attempt == START_ATTEMPTS or not port_conflict(e.log):
                    raise
                shutil.rmtree(self._etcd.data_dir, ignore_errors=True)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after ``stop_timeout``); idempotent.

        A stopped control plane can be started again (new ports, new certificates).
        """
        if self._node is not None:
            self._node.stop(self.stop_timeout)
        if self._full is not None:
            self._full.stop(self.stop_timeout)
        if self._apiserver is not None:
            self._apiserver.stop(self.stop_timeout)
        if self._etcd is not None:
            self._etcd.stop(self.stop_timeout)
        self._node = None
        self._full = self._apiserver = self._etcd = None
        if self._owns_dir and self._work_dir is not None and not self.detached:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    # -- fault injection -------------------------------------------------------------------

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver (etcd and the other components keep running)."""
        self._server().kill()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port with the same certificates; wait ready."""
        assert self._etcd is not None
        self._server().start(etcd_url=self._etcd.url, timeout=self.start_timeout)

    def restart_apiserver(self) -> None:
        """:meth:`kill_apiserver` then :meth:`start_apiserver`."""
        self.kill_apiserver()
        self.start_apiserver()

    def compact_etcd(self) -> int:
        """Compact etcd to its current revision (returned): older resourceVersions are gone."""
        if self._etcd is None:
            raise RuntimeError("the control plane has not been started")
        return self._etcd.compact()

    def add_node(self, name: str, *, timeout: float = 60.0) -> None:
        """Add another simulated node (full mode; kwok manages every node) and wait until it is
        Ready. One node holds 110 pods and 32 CPUs, like kwokctl's default node."""
        if self._full is None:
            raise RuntimeError("add_node needs a full-mode control plane")
        client = self.client()
        client.create("/api/v1/nodes", node_manifest(name), exist_ok=True)
        deadline = time.monotonic() + timeout
        while not node_ready(client, name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {name} did not become Ready in {timeout}s")
            time.sleep(0.2)

    def add_storage_class(
        self, name: str, *, default: bool = False, expandable: bool = False
    ) -> dict[str, Any]:
        """Create (or update) a StorageClass whose claims kwok binds (full mode): provisioner
        ``kwok.x-k8s.io/volume``, Immediate binding, reclaim policy Delete. Returns it.

        ``expandable`` sets ``allowVolumeExpansion``: a bound claim's request may then grow, and
        kwok reports the new size as its capacity. ``default`` makes it the only default class
        (any other default, such as ``kwok-volume``, stops being one).
        """
        if self._full is None:
            raise RuntimeError("add_storage_class needs a full-mode control plane")
        client = self.client()
        path = "/apis/storage.k8s.io/v1/storageclasses"
        if default:
            self._make_default(client, name)
        applied: dict[str, Any] = client.request(
            "PATCH",
            f"{path}/{name}",
            kwok_storage_class(name, default=default, expandable=expandable),
            params={"fieldManager": "aimctl-envtest", "force": "true"},
            content_type="application/apply-patch+yaml",
        )
        return applied

    @staticmethod
    def _make_default(client: SyncClient, name: str) -> None:
        """Every default StorageClass other than ``name`` stops being one."""
        path = "/apis/storage.k8s.io/v1/storageclasses"
        for other in client.request("GET", path)["items"]:
            meta = other["metadata"]
            annotations = meta.get("annotations") or {}
            if meta["name"] != name and annotations.get(DEFAULT_CLASS_ANNOTATION) == "true":
                patch = {"metadata": {"annotations": {DEFAULT_CLASS_ANNOTATION: "false"}}}
                client.request(
                    "PATCH",
                    f"{path}/{meta['name']}",
                    patch,
                    content_type="application/merge-patch+json",
                )

    # -- clients and objects ---------------------------------------------------------------

    def client(self) -> SyncClient:
        """A blocking admin JSON client (for set-up code; tests use their own async clients)."""
        return self._server().client()

    def add_user(self, name: str, groups: Sequence[str] = ()) -> User:
        """Mint a client certificate for ``name`` in ``groups`` and write a kubeconfig for it.

        Like envtest's ``AddUser`` this grants nothing: RBAC applies, so the user can do what
        the default discovery roles allow until a Role or ClusterRole is bound to it.
        """
        assert self._ca is not None
        self._users += 1
        stem = f"{self._users:03d}-{_safe(name)}"
        directory = self.work_dir / "users"
        directory.mkdir(exist_ok=True, mode=0o700)
        pair = self._ca.issue_client(name, groups)
        cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_file.write_bytes(pair.cert_pem)
        write_private(key_file, pair.key_pem)
        kubeconfig = write_kubeconfig(
            directory / f"{stem}.kubeconfig",
            server=self.url,
            ca_pem=self._ca.cert_pem,
            cert_pem=pair.cert_pem,
            key_pem=pair.key_pem,
        )
        return User(name, tuple(groups), kubeconfig, cert_file, key_file)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl as admin (``CalledProcessError`` on failure when ``check``)."""
        kubectl = self.assets.path("kubectl")
        if not os.access(kubectl, os.X_OK):
            raise BinariesNotFound(f"no kubectl at {kubectl}; run `make control-plane`")
        return run_kubectl(
            kubectl, self.kubeconfig, *args, input=input, check=check, timeout=timeout
        )

    def create_namespace(self, name: str | None = None, *, prefix: str = "test-") -> str:
        """Create a namespace (named ``name``, else ``prefix`` + a server-chosen suffix)."""
        meta = {"name": name} if name else {"generateName": prefix}
        created = self.client().request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": meta},
        )
        return str(created["metadata"]["name"])

    def delete_namespace(self, name: str) -> None:
        """Request deletion and return at once (envtest mode has no namespace controller, so
        the namespace stays Terminating; full mode finalizes it)."""
        try:
            self.client().request(
                "DELETE", f"/api/v1/namespaces/{name}", params={"propagationPolicy": "Background"}
            )
        except ApiError as e:
            if e.status != 404:
                raise

    def install_crds(
        self, crds: Iterable[Mapping[str, Any] | Path], *, timeout: float = 60.0
    ) -> list[str]:
        """Create or update CRDs (objects, YAML files or directories of YAML files) and wait
        until each is Established and usable. Returns the CRD names."""
        return install_crds(self.client(), crds, timeout=timeout)
