"""The manager: shared informers and client, metrics and probe servers, leader election,
signals, the controllers' lifecycle and user runnables."""

from aimctl.manager._leader import (
    LeaderElectionConfig as LeaderElectionConfig,
    LeaderElector as LeaderElector,
)
from aimctl.manager._manager import (
    CacheSyncError as CacheSyncError,
    LeaderElectionLost as LeaderElectionLost,
    Manager as Manager,
    default_identity as default_identity,
)
from aimctl.manager._runnable import Runnable as Runnable, RunnableFunc as RunnableFunc

__all__ = [
    "CacheSyncError",
    "LeaderElectionConfig",
    "LeaderElectionLost",
    "LeaderElector",
    "Manager",
    "Runnable",
    "RunnableFunc",
    "default_identity",
]
