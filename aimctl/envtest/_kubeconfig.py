"""Writing kubeconfig files that embed certificate data.

Mirrors controller-runtime's ``KubeConfigFromREST``: one cluster, one user and one context, all
with the same name, the CA, client certificate and key embedded as base64. The file is written
with mode 0600 since it holds a private key.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig_dict", "write_kubeconfig"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kubeconfig_dict(
    *, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, name: str = "envtest"
) -> dict[str, Any]:
    """The kubeconfig document for one client certificate against one server."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate-data": _b64(cert_pem),
                    "client-key-data": _b64(key_pem),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    name: str = "envtest",
) -> Path:
    """Write (atomically, mode 0600) a kubeconfig; returns ``path``."""
    doc = kubeconfig_dict(
        server=server, ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem, name=name
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    tmp.replace(path)
    return path
