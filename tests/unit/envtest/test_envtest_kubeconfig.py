"""Kubeconfig files: shape, permissions, and that kubernetes_asyncio can load them."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import yaml
from kubernetes_asyncio import client, config

from aimctl.envtest._certs import CertificateAuthority
from aimctl.envtest._kubeconfig import write_kubeconfig


def _write(path: Path) -> tuple[Path, bytes]:
    ca = CertificateAuthority()
    pair = ca.issue_client("admin", ["system:masters"])
    write_kubeconfig(
        path,
        server="https://127.0.0.1:6443",
        ca_pem=ca.cert_pem,
        cert_pem=pair.cert_pem,
        key_pem=pair.key_pem,
    )
    return path, ca.cert_pem


def test_embeds_ca_and_client_certificate(tmp_path: Path) -> None:
    path, ca_pem = _write(tmp_path / "sub" / "kubeconfig")
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "envtest"
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca_pem
    user = doc["users"][0]["user"]
    assert b"BEGIN CERTIFICATE" in base64.b64decode(user["client-certificate-data"])
    assert b"PRIVATE KEY" in base64.b64decode(user["client-key-data"])


def test_file_is_private(tmp_path: Path) -> None:
    path, _ = _write(tmp_path / "kubeconfig")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp"))


async def test_kubernetes_asyncio_loads_it(tmp_path: Path) -> None:
    path, _ = _write(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == "https://127.0.0.1:6443"
    assert configuration.cert_file
    assert configuration.key_file
    assert configuration.ssl_ca_cert
