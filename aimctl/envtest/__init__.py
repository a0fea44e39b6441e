"""aimctl.envtest: a real Kubernetes control plane on loopback, for tests and local development.

A Python port of controller-runtime's envtest (etcd + kube-apiserver), plus a full mode with
kube-controller-manager, kube-scheduler and kwok. Binaries come from ``KUBEBUILDER_ASSETS`` or the
cache that ``make control-plane`` fills. pytest fixtures live in
:mod:`aimctl.envtest.pytest_plugin`; ``aimctl cluster up|down`` runs one detached.
"""

from aimctl.envtest._binaries import (
    Assets as Assets,
    BinariesNotFound as BinariesNotFound,
    default_cache_dir as default_cache_dir,
    find_assets as find_assets,
)
from aimctl.envtest._controlplane import (
    ControlPlane as ControlPlane,
    User as User,
)
from aimctl.envtest._full import NODE_NAME as NODE_NAME, STORAGE_CLASS as STORAGE_CLASS
from aimctl.envtest._process import ProcessStartError as ProcessStartError
from aimctl.envtest._rest import ApiError as ApiError, SyncClient as SyncClient
from aimctl.envtest._versions import (
    ETCD_VERSION as ETCD_VERSION,
    K8S_VERSION as K8S_VERSION,
    KWOK_VERSION as KWOK_VERSION,
)

__all__ = [
    "ETCD_VERSION",
    "K8S_VERSION",
    "KWOK_VERSION",
    "NODE_NAME",
    "STORAGE_CLASS",
    "ApiError",
    "Assets",
    "BinariesNotFound",
    "ControlPlane",
    "ProcessStartError",
    "SyncClient",
    "User",
    "default_cache_dir",
    "find_assets",
]
