"""A self-signed CA and serving certificate for local runs and tests.

In a cluster the serving pair comes from a mounted Secret (cert-manager or similar) and the CA
bundle is injected into the webhook configurations by the same tool. Locally we play both
parts: :class:`SelfSignedCerts` issues the pair into ``cert_dir`` (``tls.crt``/``tls.key``, the
names of a ``kubernetes.io/tls`` Secret) and hands out the CA for ``caBundle``. Reuses the
envtest CA (``aimctl.envtest._certs``), imported lazily so a manager that never asks for a
self-signed pair does not load the envtest package.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aimctl.envtest._certs import CertificateAuthority

__all__ = ["SelfSignedCerts", "write_atomically"]

DEFAULT_HOSTS = ("127.0.0.1", "localhost")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` in one rename, so a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SelfSignedCerts:
    """A CA that (re)issues the serving pair into ``cert_dir``; ``ca_bundle`` is its PEM."""

    def __init__(self, cert_dir: Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> None:
        from aimctl.envtest._certs import CertificateAuthority

        self.cert_dir = Path(cert_dir)
        self.hosts = list(hosts)
        self.ca: CertificateAuthority = CertificateAuthority()

    @property
    def ca_bundle(self) -> bytes:
        return self.ca.cert_pem

    def issue(self) -> None:
        """Write a fresh serving pair (a rotation, when one is already there). The key is
        written before the certificate, so a watcher that sees the new certificate finds its
        key; one that reads in between fails its validation and retries."""
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        pair = self.ca.issue_serving(self.hosts)
        write_atomically(self.cert_dir / "tls.key", pair.key_pem)
        write_atomically(self.cert_dir / "tls.crt", pair.cert_pem)
