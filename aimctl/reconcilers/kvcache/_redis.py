"""The Redis configuration rendered from a cache spec (pure functions, no I/O).

A cache's Redis is configured only through ``redis-server`` command-line arguments: the
container's ``command`` bypasses the image's entrypoint, and redis-server reads no environment
variables, so anything not in :func:`redis_args` does not exist. The arguments are what
``tests/integration/redis/`` starts a real ``redis-server`` with.

What the defaults are, and why (a KV cache: every value is a multi-megabyte LMCache chunk that
can be recomputed, so losing keys costs latency, never correctness):

- **Memory bound**: ``maxmemory`` is a fraction of the container's memory limit (else its
  request; resources without memory get :data:`DEFAULT_MEMORY` as request and limit), see
  :func:`maxmemory_bytes`. Without it Redis grows until the kernel OOM-kills it.
- **Eviction**: ``allkeys-lru`` (:data:`DEFAULT_POLICY`): LMCache writes keys without a TTL and
  treats a missing key as a miss, so every key must be evictable.
- **Persistence**: RDB snapshots (:data:`DEFAULT_PERSISTENCE`), see :func:`persistence_args`.
- **Auth**: ``--requirepass $(REDIS_PASSWORD)``; the kubelet substitutes the container's
  ``REDIS_PASSWORD`` (a ``secretKeyRef``) into ``args``, so the password is in neither the
  StatefulSet nor any other object the operator writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from aimctl.api import quantity
from aimctl.api.v1alpha1 import AIMKVCache, MaxMemoryPolicy, Persistence
from aimctl.sizing import MAXMEMORY_FRACTION

__all__ = [
    "DATA_DIR",
    "DEFAULT_MEMORY",
    "DEFAULT_PERSISTENCE",
    "DEFAULT_POLICY",
    "DEFAULT_RESOURCES",
    "MEMORY_FRACTION",
    "PASSWORD_ENV",
    "PROBE_COMMAND",
    "REDIS_PORT",
    "container_resources",
    "max_memory_policy",
    "maxmemory_bytes",
    "memory_bound_bytes",
    "persistence",
    "persistence_args",
    "redis_args",
]

REDIS_PORT: Final = 6379
DATA_DIR: Final = "/data"
# The Redis container's env var holding the password (a secretKeyRef); ``$(REDIS_PASSWORD)`` in
# the args is expanded by the kubelet (k8s.io/kubernetes third_party/forked/golang/expansion).
PASSWORD_ENV: Final = "REDIS_PASSWORD"

DEFAULT_MEMORY: Final = "1Gi"
# Requests sized for a small cache; memory limit = request so Redis is OOM-killed predictably
# rather than starving the node; no CPU limit (throttling hurts latency more than it protects).
DEFAULT_RESOURCES: Final[dict[str, Any]] = {
    "requests": {"cpu": "500m", "memory": DEFAULT_MEMORY},
    "limits": {"memory": DEFAULT_MEMORY},
}
DEFAULT_POLICY: Final = MaxMemoryPolicy.ALLKEYS_LRU
DEFAULT_PERSISTENCE: Final = Persistence.RDB

# Share of the container's memory Redis may fill with data before it evicts, per persistence
# mode: one table, in aimctl.sizing (which `aimctl kvcache size` uses with no API imports), with
# the reasons; here keyed by the API's enum.
MEMORY_FRACTION: Final[Mapping[Persistence, Decimal]] = {
    Persistence(name): fraction for name, fraction in MAXMEMORY_FRACTION.items()
}

# Readiness and startup probe, run by the kubelet with no shell: redis-cli reads the password
# from REDISCLI_AUTH (the container's env, a secretKeyRef). ``-e`` makes redis-cli exit non-zero
# on an error reply: without it ``redis-cli ping`` exits 0 on "NOAUTH", "WRONGPASS" and
# "LOADING" (seen with redis-cli 7.0.15; tests/integration/redis/ proves both), so the probe
# would pass against a Redis that refuses every client or is still loading its snapshot.
PROBE_COMMAND: Final = ("redis-cli", "-e", "ping")


def container_resources(cache: AIMKVCache) -> dict[str, Any]:
    """The Redis container's ``resources``, canonical quantities (as the API server stores
    them, so comparing with the live object works). Unset: :data:`DEFAULT_RESOURCES`. Set with
    no memory request or limit: the user's values plus :data:`DEFAULT_MEMORY` as both, because
    ``maxmemory`` needs a bound and an unbounded Redis is the OOM loop this configuration
    exists to prevent."""
    if cache.spec.resources is None:
        return {kind: dict(values) for kind, values in DEFAULT_RESOURCES.items()}
    res = cache.spec.resources.model_dump(by_alias=True, exclude_none=True, mode="json")
    out: dict[str, dict[str, str]] = {
        kind: {k: quantity.format_quantity(v) for k, v in values.items()}
        for kind, values in res.items()
        if isinstance(values, dict)
    }
    if "memory" not in out.get("limits", {}) and "memory" not in out.get("requests", {}):
        out.setdefault("requests", {})["memory"] = DEFAULT_MEMORY
        out.setdefault("limits", {})["memory"] = DEFAULT_MEMORY
    return {kind: values for kind, values in out.items() if values}


def memory_bound_bytes(cache: AIMKVCache) -> int:
    """Bytes the Redis container may use: its memory limit, else its request (a pod with only
    a request is not killed at it, but the scheduler placed it for that much)."""
    res = container_resources(cache)
    text = res.get("limits", {}).get("memory") or res["requests"]["memory"]
    return int(quantity.parse_quantity(text))


def persistence(cache: AIMKVCache) -> Persistence:
    """The cache's persistence mode; unset means :data:`DEFAULT_PERSISTENCE`."""
    redis = cache.spec.redis
    return (redis.persistence if redis else None) or DEFAULT_PERSISTENCE


def max_memory_policy(cache: AIMKVCache) -> MaxMemoryPolicy:
    """The cache's eviction policy; unset means :data:`DEFAULT_POLICY` (allkeys-lru)."""
    redis = cache.spec.redis
    return (redis.max_memory_policy if redis else None) or DEFAULT_POLICY


def maxmemory_bytes(cache: AIMKVCache) -> int:
    """Redis ``maxmemory`` in bytes: ``spec.redis.maxMemory`` when set, else
    :data:`MEMORY_FRACTION` of :func:`memory_bound_bytes` for the cache's persistence mode
    (2Gi with RDB: 1610612736), rounded down.

    Never 0: to Redis ``maxmemory 0`` means *no limit*, the failure this exists to prevent; a
    bound that rounds to 0 renders 1 (Redis then evicts everything, which is visible and
    safe). A ``maxMemory`` at or above the memory limit never gets here: the CRD refuses it at
    admission (``MAX_MEMORY_RULES`` in aimctl/api/v1alpha1/_pod.py).
    """
    redis = cache.spec.redis
    if redis is not None and redis.max_memory is not None:
        wanted = int(quantity.parse_quantity(redis.max_memory))
    else:
        wanted = int(memory_bound_bytes(cache) * MEMORY_FRACTION[persistence(cache)])
    return max(wanted, 1)


def persistence_args(mode: Persistence) -> list[str]:
    """The persistence flags of ``mode``; both ``save`` and ``appendonly`` are always given so
    no image default (or a future change of one) decides.

    - ``RDB`` (default): a snapshot when at least 1 key changed in 300 s. A restarted cache is
      warm (LMCache hits at once instead of recomputing every prefix), a snapshot is one
      sequential write of the dataset every few minutes at most, and losing the last 5 minutes
      of a cache costs only recomputation.
    - ``AOF``: every write appended and fsynced once a second (``everysec``: at most 1 s lost,
      without an fsync per multi-MB chunk), no RDB save points. Writes the whole chunk stream
      to disk and rewrites the log periodically: for caches whose warmth must survive crashes
      to the second.
    - ``None``: memory only; a restart is cold. No fork, so more of the memory holds data.

    An empty ``--save`` argument (``""``, one element of the argument list) clears every save
    point: redis-server quotes each argument into its config, so ``--save ""`` is ``save ""``.

    ``--stop-writes-on-bgsave-error no`` (RDB): a snapshot needs room for a second copy of the
    dataset next to the last one (rdb.c ``rdbSave`` writes ``temp-<pid>.rdb`` then renames), and
    Redis's default answers every write with ``MISCONF`` once a snapshot failed. For a database
    that protects data; for a cache it turns a full volume into a cache that stores nothing.
    The failure stays visible (``rdb_last_bgsave_status:err``, redis_exporter
    ``redis_rdb_last_bgsave_status 0``) and the next save point retries.
    """
    if mode is Persistence.AOF:
        return ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    if mode is Persistence.NONE:
        return ["--appendonly", "no", "--save", ""]
    return [
        "--appendonly",
        "no",
        "--save",
        "300",
        "1",
        "--stop-writes-on-bgsave-error",
        "no",
    ]


def redis_args(cache: AIMKVCache) -> list[str]:
    """The ``redis-server`` arguments of the cache's Redis container.

    ``--protected-mode yes``: with a password set, protected mode changes nothing (Redis
    applies it only while the default user has no password). It is there for the one case
    where the password could end up empty (an edited Secret with an empty value:
    ``requirepass ""`` means *no password*): Redis then answers only loopback clients (the
    probes) and refuses every remote one, instead of serving the network unauthenticated.
    The official image's entrypoint turns it off, but ``command`` bypasses that entrypoint.
    """
    return [
        "--port",
        str(REDIS_PORT),
        "--dir",
        DATA_DIR,
        "--requirepass",
        f"$({PASSWORD_ENV})",
        "--protected-mode",
        "yes",
        "--maxmemory",
        str(maxmemory_bytes(cache)),
        "--maxmemory-policy",
        str(max_memory_policy(cache)),
        *persistence_args(persistence(cache)),
        "--loglevel",
        "notice",
    ]
