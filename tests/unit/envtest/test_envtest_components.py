"""Command lines and manifests that need no server: apiserver flags, the advertise-address
rule, kwok stage loading, the kwok node, CRD document loading and timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimctl.envtest import _apiserver
from aimctl.envtest._apiserver import APIServer, CertFiles, advertise_address
from aimctl.envtest._controlplane import start_timeout_from_env
from aimctl.envtest._crds import crd_documents
from aimctl.envtest._full import NODE_NAME, load_kustomization, node_manifest

ROUTES_WITH_DEFAULT = """Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask
eth0	00000000	010200C0	0003	0	0	0	00000000
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF
"""
ROUTES_WITHOUT_DEFAULT = """Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF
"""


def _server(tmp_path: Path, **kwargs: object) -> APIServer:
    server = APIServer(
        Path("/bin/kube-apiserver"),
        work_dir=tmp_path,
        certs=CertFiles(tmp_path / "certs"),
        **kwargs,  # type: ignore[arg-type]
    )
    server.port = 6443
    server.etcd_url = "http://127.0.0.1:2379"
    return server


def test_no_advertise_address_with_a_default_route() -> None:
    assert advertise_address(ROUTES_WITH_DEFAULT) is None


def test_interface_address_without_a_default_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_apiserver, "_interface_addresses", lambda: ["127.0.0.1", "10.1.2.3"])
    assert advertise_address(ROUTES_WITHOUT_DEFAULT) == "10.1.2.3"


def test_no_address_at_all_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_apiserver, "_interface_addresses", lambda: ["127.0.0.1"])
    with pytest.raises(RuntimeError, match="advertise address"):
        advertise_address(ROUTES_WITHOUT_DEFAULT)


def test_envtest_flags_bind_loopback_and_disable_service_account_admission(tmp_path: Path) -> None:
    flags = _server(tmp_path, service_account_admission=False).flags()
    assert flags["bind-address"] == "127.0.0.1"
    assert flags["secure-port"] == "6443"
    assert flags["etcd-servers"] == "http://127.0.0.1:2379"
    assert flags["authorization-mode"] == "RBAC"
    assert flags["disable-admission-plugins"] == "ServiceAccount"
    assert flags["client-ca-file"].endswith("ca.crt")
    assert "insecure-port" not in flags


def test_full_flags_keep_service_account_admission_and_accept_extras(tmp_path: Path) -> None:
    server = _server(tmp_path, service_account_admission=True, extra_args={"watch-cache": "false"})
    flags = server.flags()
    assert "disable-admission-plugins" not in flags
    assert flags["watch-cache"] == "false"
    assert "--watch-cache=false" in server.args()


def test_load_kustomization_follows_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "kustomization.yaml").write_text("resources:\n- one.yaml\n- ../b\n")
    (tmp_path / "a" / "one.yaml").write_text("kind: Stage\nmetadata: {name: one}\n---\n")
    (tmp_path / "b" / "kustomization.yaml").write_text("resources:\n- two.yaml\n")
    (tmp_path / "b" / "two.yaml").write_text("kind: StorageClass\nmetadata: {name: two}\n")
    docs = list(load_kustomization(tmp_path / "a"))
    assert [d["metadata"]["name"] for d in docs] == ["one", "two"]


def test_node_has_no_taints_and_capacity() -> None:
    node = node_manifest()
    assert node["metadata"]["name"] == NODE_NAME
    assert "taints" not in node["spec"]
    assert node["status"]["allocatable"]["pods"] == "110"
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_crd_documents_from_objects_files_and_directories(tmp_path: Path) -> None:
    crd = (
        "apiVersion: apiextensions.k8s.io/v1\n"
        "kind: CustomResourceDefinition\n"
        "metadata:\n  name: {}\n"
    )
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "a.yaml").write_text(crd.format("as.x.io") + "---\nkind: ConfigMap\n")
    (tmp_path / "b.yaml").write_text(crd.format("bs.x.io"))
    names = [
        d["metadata"]["name"]
        for d in crd_documents(
            [tmp_path / "crds", tmp_path / "b.yaml", {"metadata": {"name": "cs.x.io"}}]
        )
    ]
    assert names == ["as.x.io", "bs.x.io", "cs.x.io"]


def test_start_timeout_from_env() -> None:
    assert start_timeout_from_env({}) == 120.0
    assert start_timeout_from_env({"KUBEBUILDER_CONTROLPLANE_START_TIMEOUT": "90s"}) == 90.0
    assert start_timeout_from_env({"KUBEBUILDER_CONTROLPLANE_START_TIMEOUT": "45"}) == 45.0


def test_crd_documents_copy_objects() -> None:
    crd = {"metadata": {"name": "xs.x.io"}}
    (doc,) = crd_documents([crd])
    doc["metadata"]["resourceVersion"] = "7"
    assert crd == {"metadata": {"name": "xs.x.io"}}
