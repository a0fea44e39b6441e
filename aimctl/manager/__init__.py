"""The manager: shared informers and client, metrics and probe servers, leader election,
signals, and the controllers' lifecycle."""

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

__all__ = [
    "CacheSyncError",
    "LeaderElectionConfig",
    "LeaderElectionLost",
    "LeaderElector",
    "Manager",
    "default_identity",
]
