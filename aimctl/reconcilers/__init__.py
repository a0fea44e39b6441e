"""The AIM operator: the AIMKVCache and AIMService controllers.

``add_to_manager(manager)`` registers both on a :class:`aimctl.manager.Manager`, with their
watches and cache scoping; ``aimctl run`` does exactly that.
"""

from aimctl.reconcilers._setup import add_to_manager as add_to_manager
from aimctl.reconcilers.kvcache._desired import DEFAULT_IMAGE as DEFAULT_REDIS_IMAGE
from aimctl.reconcilers.kvcache._reconciler import (
    FINALIZER as FINALIZER,
    KVCacheReconciler as KVCacheReconciler,
)
from aimctl.reconcilers.service._reconciler import ServiceReconciler as ServiceReconciler

__all__ = [
    "DEFAULT_REDIS_IMAGE",
    "FINALIZER",
    "KVCacheReconciler",
    "ServiceReconciler",
    "add_to_manager",
]
