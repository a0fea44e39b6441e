"""aimctl.workqueue: the controller queue.

Level-triggered in one type: many events for one key collapse into one hand-out, a key is never
processed by two workers at once, failures back off per key, and new changes can jump ahead of
restart storms by priority. client-go's workqueue contract plus controller-runtime's priority
queue semantics and metrics; see :class:`Queue`.

Layers, one idea per module (client-go's): ``_priority`` (ready order), ``_queue`` (add/get/
done/len/shutdown), ``_delaying`` (add_after, one timer), ``_rate_limiting`` (add_rate_limited,
forget, num_requeues; :class:`Queue`), ``_limiters`` (rate limiters), ``_metrics``.
"""

from aimctl.workqueue._delaying import MAX_WAIT as MAX_WAIT
from aimctl.workqueue._limiters import (
    BucketRateLimiter as BucketRateLimiter,
    FastSlowRateLimiter as FastSlowRateLimiter,
    ItemExponentialRateLimiter as ItemExponentialRateLimiter,
    MaxOfRateLimiter as MaxOfRateLimiter,
    RateLimiter as RateLimiter,
    WithMaxWaitRateLimiter as WithMaxWaitRateLimiter,
    default_controller_rate_limiter as default_controller_rate_limiter,
)
from aimctl.workqueue._queue import ShutDown as ShutDown
from aimctl.workqueue._rate_limiting import LOW_PRIORITY as LOW_PRIORITY, Queue as Queue

__all__ = [
    "LOW_PRIORITY",
    "MAX_WAIT",
    "BucketRateLimiter",
    "FastSlowRateLimiter",
    "ItemExponentialRateLimiter",
    "MaxOfRateLimiter",
    "Queue",
    "RateLimiter",
    "ShutDown",
    "WithMaxWaitRateLimiter",
    "default_controller_rate_limiter",
]
