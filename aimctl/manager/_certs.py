"""The metrics server's serving certificate: a mounted pair, hot-reloaded, or a self-signed one.

As controller-runtime's metrics server does (kubernetes-sigs/controller-runtime:
pkg/metrics/server/server.go, ``createListener``): with a certificate directory, ``tls.crt`` and
``tls.key`` there are served and re-read when they change (its ``certwatcher``); without one, a
self-signed certificate for ``localhost``/``127.0.0.1`` is generated at start (client-go's
``GenerateSelfSignedCertKeyWithFixtures``): scrapers skip verification or pin it, what matters
is that the bearer token and the metrics travel encrypted (kube-controller-manager does the same
for its own metrics endpoint). Unlike controller-runtime, a directory given without the pair is
an error rather than a silent fallback to self-signed: a Secret that was meant to be mounted
and is not should be seen.

Contract: :attr:`ServingCertificate.context` is the one ``ssl.SSLContext`` the server listens
with. A rotated pair is loaded into it (validated first in a scratch context, see
``aimctl.webhook.CertWatcher``) within :data:`CERT_POLL_INTERVAL` seconds; new TLS connections
get the new certificate, open ones keep theirs. The self-signed key never touches a file system
where the platform has anonymous memory files (Linux ``memfd_create``).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from aimctl.webhook import CertWatcher

__all__ = [
    "CERT_NAME",
    "CERT_POLL_INTERVAL",
    "KEY_NAME",
    "SELF_SIGNED_VALIDITY",
    "ServingCertificate",
    "self_signed_pair",
]

CERT_NAME: Final = "tls.crt"
KEY_NAME: Final = "tls.key"
# A stat of two files: cheap enough to look often, so a rotation (cert-manager, a re-mounted
# Secret) is served within seconds. controller-runtime's certwatcher polls every 10 s besides
# its fsnotify watch; we only poll.
CERT_POLL_INTERVAL: Final = 3.0
# client-go's self-signed fixtures are valid for a year; the process is restarted far sooner.
SELF_SIGNED_VALIDITY: Final = datetime.timedelta(days=365)
_CLOCK_SKEW: Final = datetime.timedelta(minutes=5)


def _server_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # as controller-runtime's servers
    return ctx


def self_signed_pair(hosts: Sequence[str]) -> tuple[bytes, bytes]:
    """A self-signed ``serverAuth`` certificate for ``hosts`` (DNS names or IP addresses; the
    first is the CN) and its key: ``(cert_pem, key_pem)``. ECDSA P-256, valid from five minutes
    ago for :data:`SELF_SIGNED_VALIDITY`.

    Raises:
        ModuleNotFoundError: ``cryptography`` is not installed (imported here, lazily, so a
            manager serving plain HTTP or a mounted pair never loads it).
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ModuleNotFoundError as err:  # say what to do instead
        if err.name != "cryptography":
            raise
        raise ModuleNotFoundError(
            "a self-signed metrics certificate needs the 'cryptography' package: install it, "
            "or mount a certificate (--metrics-cert-dir), or serve plain HTTP "
            "(--no-metrics-secure)",
            name=err.name,
        ) from err

    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + SELF_SIGNED_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@contextlib.contextmanager
def _pem_file(data: bytes) -> Iterator[str]:
    """A path that reads as ``data`` while the block runs: an anonymous memory file on Linux
    (``ssl`` loads certificates only from paths), else a private temporary file."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("aimctl-metrics-cert", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="aimctl-metrics-") as d:  # created 0700
        path = Path(d) / "pair.pem"
        path.write_bytes(data)
        yield str(path)


def _default_hosts() -> list[str]:
    return ["localhost", "127.0.0.1", socket.gethostname()]


class ServingCertificate:
    """Owns the metrics server's ``ssl.SSLContext``.

    ``cert_dir``: the directory holding ``tls.crt`` and ``tls.key`` (a mounted
    ``kubernetes.io/tls`` Secret), re-read when they change; None: a self-signed certificate
    for ``hosts`` (default ``localhost``, ``127.0.0.1`` and the host name), made by
    :meth:`start`. ``poll_interval``: seconds between looks at the files.
    """

    def __init__(
        self,
        cert_dir: str | os.PathLike[str] | None = None,
        *,
        hosts: Sequence[str] | None = None,
        poll_interval: float = CERT_POLL_INTERVAL,
    ) -> None:
        self.cert_dir = Path(cert_dir) if cert_dir is not None else None
        self.hosts = list(hosts) if hosts else _default_hosts()
        self._watcher: CertWatcher | None = None
        if self.cert_dir is not None:
            # aimctl.webhook's watcher is controller-runtime's certwatcher: validated reloads
            # into the live context (kubernetes-sigs/controller-runtime: pkg/certwatcher).
            self._watcher = CertWatcher(
                self.cert_dir / CERT_NAME, self.cert_dir / KEY_NAME, interval=poll_interval
            )
            self.context = self._watcher.context
        else:
            self.context = _server_context()

    @property
    def reloads(self) -> int:
        """Pairs loaded from ``cert_dir`` so far (1 after :meth:`start`); 0 when self-signed."""
        return self._watcher.reloads if self._watcher is not None else 0

    def start(self) -> None:
        """Load the pair (or make the self-signed one) and, with a directory, watch it.

        Raises:
            OSError, ssl.SSLError: the pair in ``cert_dir`` is missing or unusable.
            ModuleNotFoundError: self-signed, and ``cryptography`` is not installed.
        """
        if self._watcher is not None:
            self._watcher.start()
            return
        cert_pem, key_pem = self_signed_pair(self.hosts)
        with _pem_file(cert_pem + key_pem) as pair:
            self.context.load_cert_chain(pair)

    async def stop(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()
