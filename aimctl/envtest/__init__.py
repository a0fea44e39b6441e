"""aimctl.envtest: a real Kubernetes control plane on loopback, for tests and local development.

A Python port of controller-runtime's envtest (etcd + kube-apiserver), plus a full mode with
kube-controller-manager, kube-scheduler and kwok. Binaries come from ``KUBEBUILDER_ASSETS`` or the
cache that ``make control-plane`` fills. pytest fixtures live in
:mod:`aimctl.envtest.pytest_plugin`; ``aimctl cluster up|down`` runs one detached (its state file
and the pid helpers below let other commands stop what they started, by pid and start time).
"""

from aimctl.envtest._binaries import (
    Assets as Assets,
    BinariesNotFound as BinariesNotFound,
    BinariesTampered as BinariesTampered,
    default_cache_dir as default_cache_dir,
    find_assets as find_assets,
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
    ETCD_VERSION as ETCD_VERSION,
    K8S_VERSION as K8S_VERSION,
    KWOK_VERSION as KWOK_VERSION,
)

__all__ = [
    "ETCD_VERSION",
    "K8S_VERSION",
    "KWOK_PROVISIONER",
    "KWOK_VERSION",
    "NODE_NAME",
    "STORAGE_CLASS",
    "ApiError",
    "Assets",
    "BinariesNotFound",
    "BinariesTampered",
    "ClusterState",
    "ControlPlane",
    "ManagedProcess",
    "ProcessRecord",
    "ProcessStartError",
    "SyncClient",
    "User",
    "default_cache_dir",
    "find_assets",
    "kwok_storage_class",
    "log_tail",
    "permissive_crd",
    "pid_alive",
    "process_start_time",
    "read_records",
    "read_state",
    "run_kubectl",
    "stop_detached",
    "stop_pid",
    "stop_records",
    "write_records",
    "write_state",
]
