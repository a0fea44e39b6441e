"""The pinned control-plane and real-node versions: the one source of truth.

``hack/control-plane.sh`` and ``hack/real-node.sh`` read these assignments with ``sed``, so keep
each on one line in the form ``NAME: Final = "value"``. Changing a pin changes the cache directory
name, so old and new binaries never mix. kubelet and kube-proxy follow ``K8S_VERSION``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "COREDNS_VERSION",
    "ETCD_VERSION",
    "K8S_VERSION",
    "KWOK_VERSION",
    "LOCAL_PATH_VERSION",
    "asset_dir_name",
    "node_dir_name",
]

K8S_VERSION: Final = "v1.36.3"
ETCD_VERSION: Final = "v3.6.14"
KWOK_VERSION: Final = "v0.8.0"
COREDNS_VERSION: Final = "v1.12.4"
LOCAL_PATH_VERSION: Final = "v0.0.30"


def asset_dir_name(
    k8s: str = K8S_VERSION, etcd: str = ETCD_VERSION, kwok: str = KWOK_VERSION
) -> str:
    """The cache directory name the build script uses for one set of pins."""
    return f"k8s-{k8s}-etcd-{etcd}-kwok-{kwok}"


def node_dir_name(
    k8s: str = K8S_VERSION, coredns: str = COREDNS_VERSION, local_path: str = LOCAL_PATH_VERSION
) -> str:
    """The cache directory name ``hack/real-node.sh`` uses for one set of pins."""
    return f"node-k8s-{k8s}-coredns-{coredns}-local-path-{local_path}"
