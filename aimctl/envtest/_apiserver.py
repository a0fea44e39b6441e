"""kube-apiserver for one control plane: flags, start, kill, restart.

Flags follow controller-runtime's envtest (``controlplane/apiserver.go``) with one addition
per mode: envtest mode disables the ``ServiceAccount`` admission plugin (no controller-manager
creates the ``default`` ServiceAccount); full mode keeps it. There is no ``--advertise-address``
when the host has a default route: the apiserver takes that interface's address, and 1.21+ refuse
a loopback one. Without a default route the first non-loopback interface address is passed
instead; with none at all the start fails with a clear error (an address is never made up).
"""

from __future__ import annotations

import fcntl
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aimctl.envtest._ports import LOOPBACK, free_ports
from aimctl.envtest._process import ManagedProcess
from aimctl.envtest._rest import SyncClient

__all__ = ["SERVICE_CIDR", "APIServer", "CertFiles", "advertise_address"]

SERVICE_CIDR = "10.0.0.0/24"
_SIOCGIFADDR = 0x8915


@dataclass(frozen=True)
class CertFiles:
    """The files a control plane's components share (all under one cert directory)."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def sa_public(self) -> Path:
        return self.directory / "sa.pub"

    @property
    def sa_private(self) -> Path:
        return self.directory / "sa.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"


def _has_default_route(route_table: str) -> bool:
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return True
    return False


def _interface_addresses() -> list[str]:
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def advertise_address(route_table: str | None = None) -> str | None:
    """None when the apiserver can pick its own address, else a real non-loopback address.

    Raises:
        RuntimeError: no default route and no non-loopback IPv4 interface address.
    """
    if route_table is None:
        try:
            route_table = Path("/proc/net/route").read_text()
        except OSError:
            route_table = ""
    if _has_default_route(route_table):
        return None
    for address in _interface_addresses():
        if not address.startswith("127."):
            return address
    raise RuntimeError(
        "kube-apiserver needs an advertise address: this host has no default route and no "
        "non-loopback IPv4 address; add a default route or configure an interface"
    )


class APIServer:
    """One kube-apiserver on 127.0.0.1, authenticating client certificates, authorizing by RBAC.

    Guarantees: the port is chosen on the first start and kept across :meth:`kill` /
    :meth:`start`, as are the certificates, so clients reconnect to the same address.

    Raises: :class:`~aimctl.envtest._process.ProcessStartError` from :meth:`start`.
    """

    def __init__(
        self,
        binary: Path,
        *,
        work_dir: Path,
        certs: CertFiles,
        service_account_admission: bool,
        extra_args: Mapping[str, str] | None = None,
        detached: bool = False,
    ) -> None:
        self.binary = binary
        self.certs = certs
        self.port = 0
        self.etcd_url = ""
        self._sa_admission = service_account_admission
        self._extra = dict(extra_args or {})
        self._process = ManagedProcess(
            "kube-apiserver",
            [],
            log_path=work_dir / "logs" / "kube-apiserver.log",
            detached=detached,
        )

    @property
    def process(self) -> ManagedProcess:
        return self._process

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def flags(self) -> dict[str, str]:
        c = self.certs
        flags = {
            "etcd-servers": self.etcd_url,
            "cert-dir": str(c.directory),
            "tls-cert-file": str(c.serving_cert),
            "tls-private-key-file": str(c.serving_key),
            "client-ca-file": str(c.ca),
            "secure-port": str(self.port),
            "bind-address": LOOPBACK,
            "service-cluster-ip-range": SERVICE_CIDR,
            "allow-privileged": "true",
            "authorization-mode": "RBAC",
            "service-account-issuer": f"{self.url}/",
            "service-account-key-file": str(c.sa_public),
            "service-account-signing-key-file": str(c.sa_private),
        }
        if not self._sa_admission:
            flags["disable-admission-plugins"] = "ServiceAccount"
        address = advertise_address()
        if address is not None:
            flags["advertise-address"] = address
        flags.update(self._extra)
        return flags

    def args(self) -> list[str]:
        return [str(self.binary), *(f"--{k}={v}" for k, v in self.flags().items())]

    def client(self) -> SyncClient:
        """A blocking admin client (``system:masters``)."""
        return SyncClient(
            LOOPBACK,
            self.port,
            ca_file=self.certs.ca,
            cert_file=self.certs.admin_cert,
            key_file=self.certs.admin_key,
        )

    def start(self, *, etcd_url: str, timeout: float) -> None:
        """Start (choosing a port on the first start) and wait for ``/readyz``."""
        self.etcd_url = etcd_url
        if not self.port:
            (self.port,) = free_ports(1)
        self._process.argv = self.args()
        self._process.start()
        client = self.client()
        self._process.wait_ready(lambda: client.ok("/readyz"), timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._process.stop(timeout)

    def kill(self) -> None:
        self._process.kill()

    def forget_port(self) -> None:
        """Choose a new port on the next start (after a port clash)."""
        self.port = 0
