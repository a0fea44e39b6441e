"""aimctl.envtest: a real Kubernetes control plane on loopback, for tests and local development.

A Python port of controller-runtime's envtest (etcd + kube-apiserver), plus a full mode with
kube-controller-manager, kube-scheduler and kwok, optionally with one real (kubelet) node.
Binaries come from ``KUBEBUILDER_ASSETS`` or the cache that ``make control-plane`` fills (the
node's: ``make real-node``). pytest fixtures live in
:mod:`aimctl.envtest.pytest_plugin`; ``aimctl cluster up|down`` runs one detached (its state file
and the pid helpers below let other commands stop what they started, by pid and start time).
"""

from aimctl.envtest._binaries import (
    NODE_BINARIES as NODE_BINARIES,
    Assets as Assets,
    BinariesNotFound as BinariesNotFound,
    BinariesTampered as BinariesTampered,
    NodeAssets as NodeAssets,
    default_cache_dir as default_cache_dir,
    find_assets as find_assets,
    find_node_assets as find_node_assets,
    node_cache_dir as node_cache_dir,
)
from aimctl.envtest._controlplane import (
    ControlPlane as ControlPlane,
    User as User,
)
from aimctl.envtest._crds import permissive_crd as permissive_crd
from aimctl.envtest._full import (
    KWOK_PROVISIONER as KWOK_PROVISIONER,
    NODE_NAME as NODE_NAME,
    STORAGE_CLASS as STORAGE_CLASS,
    kwok_storage_class as kwok_storage_class,
)
from aimctl.envtest._host import HostBusy as HostBusy
from aimctl.envtest._images import (
    BUSYBOX_IMAGE as BUSYBOX_IMAGE,
    PAUSE_IMAGE as PAUSE_IMAGE,
    REDIS_CLIENT_IMAGE as REDIS_CLIENT_IMAGE,
)
from aimctl.envtest._node import wait_for_real_node_policy as wait_for_real_node_policy
from aimctl.envtest._node_config import (
    LOCAL_PATH_CLASS as LOCAL_PATH_CLASS,
    REAL_NODE_LABEL as REAL_NODE_LABEL,
    REAL_NODE_NAME as REAL_NODE_NAME,
    REAL_NODE_TAINT as REAL_NODE_TAINT,
    local_path_class as local_path_class,
    real_node_policy as real_node_policy,
    real_pod_scheduling as real_pod_scheduling,
)
from aimctl.envtest._process import (
    ManagedProcess as ManagedProcess,
    ProcessStartError as ProcessStartError,
    log_tail as log_tail,
    pid_alive as pid_alive,
    process_start_time as process_start_time,
    run_kubectl as run_kubectl,
    stop_pid as stop_pid,
)
from aimctl.envtest._rest import ApiError as ApiError, SyncClient as SyncClient
from aimctl.envtest._state import (
    ClusterState as ClusterState,
    ProcessRecord as ProcessRecord,
    read_records as read_records,
    read_state as read_state,
    stop_detached as stop_detached,
    stop_records as stop_records,
    write_records as write_records,
    write_state as write_state,
)
from aimctl.envtest._versions import (
    COREDNS_VERSION as COREDNS_VERSION,
    ETCD_VERSION as ETCD_VERSION,
    K8S_VERSION as K8S_VERSION,
    KWOK_VERSION as KWOK_VERSION,
    LOCAL_PATH_VERSION as LOCAL_PATH_VERSION,
)

__all__ = [
    "BUSYBOX_IMAGE",
    "COREDNS_VERSION",
    "ETCD_VERSION",
    "K8S_VERSION",
    "KWOK_PROVISIONER",
    "KWOK_VERSION",
    "LOCAL_PATH_CLASS",
    "LOCAL_PATH_VERSION",
    "NODE_BINARIES",
    "NODE_NAME",
    "PAUSE_IMAGE",
    "REAL_NODE_LABEL",
    "REAL_NODE_NAME",
    "REAL_NODE_TAINT",
    "REDIS_CLIENT_IMAGE",
    "STORAGE_CLASS",
    "ApiError",
    "Assets",
    "BinariesNotFound",
    "BinariesTampered",
    "ClusterState",
    "ControlPlane",
    "HostBusy",
    "ManagedProcess",
    "NodeAssets",
    "ProcessRecord",
    "ProcessStartError",
    "SyncClient",
    "User",
    "default_cache_dir",
    "find_assets",
    "find_node_assets",
    "kwok_storage_class",
    "local_path_class",
    "log_tail",
    "node_cache_dir",
    "permissive_crd",
    "pid_alive",
    "process_start_time",
    "read_records",
    "read_state",
    "real_node_policy",
    "real_pod_scheduling",
    "run_kubectl",
    "stop_detached",
    "stop_pid",
    "stop_records",
    "wait_for_real_node_policy",
    "write_records",
    "write_state",
]
