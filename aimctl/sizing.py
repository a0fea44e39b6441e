"""KV-cache sizing: storage from the guide's rule of thumb and the model's shape, and memory.

Storage: two numbers, each labelled, because they answer different questions:

- **Guide heuristic** (``using-kv-cache.md``, "Calculating Size"):
  ``model_size_B x context_tokens x batch x 0.001`` read as MB, rounded up to whole GB as the
  minimum, times 20 for overhead and growth. Llama 70B, 4K context, batch 8: 2,240 MB, about 3 GB
  minimum, 60 GB recommended. The guide's tiers: < 7B -> 10Gi, 7B-70B -> 50Gi, > 70B -> 100Gi.
- **Model-shape estimate**: the bytes the KV tensors of one full batch actually take:
  ``2 (K and V) x layers x kv_heads x head_dim x dtype_bytes x context x batch``.
  Llama 3.1 70B (80 layers, 8 KV heads, head dim 128, fp16), 4K context, batch 8: 10.5 GB.

The guide's heuristic is what the docs promise users; the shape estimate is what the tensors
need for one resident batch. Size storage at or above the larger of the two and scale up from
monitoring ("size conservatively, then scale").

Memory: Redis holds every cached chunk in RAM; the volume only keeps its snapshot. What the cache
can hold is ``maxmemory``, which the operator derives from the container's memory limit
(``MAXMEMORY_FRACTION``: 75% with RDB or AOF persistence, 90% without; the rest is room for the
fork of a snapshot, client buffers and allocator fragmentation). ``memory_estimate`` turns the
bytes to keep resident (one batch, from the model shape) into the limit to set and the maxmemory
it yields, and the volume room the persistence needs for that much data
(``STORAGE_PER_MAXMEMORY``): RDB writes a new snapshot next to the old one before renaming it
(redis/redis:src/rdb.c ``rdbSave``: ``temp-<pid>.rdb``, then ``rename``), so twice maxmemory;
AOF rewrites when the log has grown to twice its base (``auto-aof-rewrite-percentage 100``) and
writes the new base beside both, so three times. A full volume fails the snapshot: the cache
keeps serving (the operator renders ``stop-writes-on-bgsave-error no``) but loses its warmth
across restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

__all__ = [
    "DTYPE_BYTES",
    "GIB",
    "MAXMEMORY_FRACTION",
    "MODEL_SHAPES",
    "STORAGE_PER_MAXMEMORY",
    "GuideEstimate",
    "MemoryEstimate",
    "ModelShape",
    "PersistenceName",
    "guide_estimate",
    "guide_tier",
    "memory_estimate",
    "shape_estimate_bytes",
]

GIB = 2**30  # bytes in a Gi (Kubernetes quantities are binary)

# spec.redis.persistence values (aimctl.api.v1alpha1.Persistence); unset means RDB.
PersistenceName = Literal["None", "RDB", "AOF"]

# Share of the redis container's memory limit the operator gives to maxmemory (the one table:
# aimctl/reconcilers/kvcache/_redis.py renders from it). The cgroup limit counts everything, and
# crossing it is an OOM kill, not an eviction:
# - with a snapshot or AOF rewrite (RDB, AOF) Redis forks; the child shares pages copy-on-write,
#   and every page the parent writes while it runs is copied. Under a steady stream of multi-MB
#   chunk writes that can be a large part of the dataset, on top of client output buffers and
#   allocator fragmentation: 25% of headroom;
# - without persistence there is no fork: only buffers and fragmentation, 10%.
MAXMEMORY_FRACTION: dict[PersistenceName, Decimal] = {
    "None": Decimal("0.90"),
    "RDB": Decimal("0.75"),
    "AOF": Decimal("0.75"),
}

# Volume bytes per byte of maxmemory the persistence needs at its peak (see the module doc).
STORAGE_PER_MAXMEMORY: dict[PersistenceName, int] = {"None": 0, "RDB": 2, "AOF": 3}

DTYPE_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


@dataclass(frozen=True)
class ModelShape:
    """What the KV cache of a decoder-only transformer depends on."""

    params_b: float
    layers: int
    kv_heads: int
    head_dim: int


# Published configs (config.json of each model): num_hidden_layers, num_key_value_heads,
# hidden_size / num_attention_heads.
MODEL_SHAPES: dict[str, ModelShape] = {
    "llama-3.1-8b": ModelShape(8, 32, 8, 128),
    "llama-3.1-70b": ModelShape(70, 80, 8, 128),
    "llama-3.1-405b": ModelShape(405, 126, 8, 128),
    "mistral-7b": ModelShape(7.2, 32, 8, 128),
    "mixtral-8x7b": ModelShape(46.7, 32, 8, 128),
    "qwen2.5-72b": ModelShape(72.7, 80, 8, 128),
}


@dataclass(frozen=True)
class GuideEstimate:
    megabytes: float
    minimum_gb: int
    recommended_gb: int


def guide_estimate(params_b: float, context: int, batch: int) -> GuideEstimate:
    """The guide's formula and its worked example's rounding (x20 for overhead and growth)."""
    mb = params_b * context * batch * 0.001
    minimum = max(1, math.ceil(mb / 1000))
    return GuideEstimate(mb, minimum, minimum * 20)


def guide_tier(params_b: float) -> tuple[str, str]:
    """The guide's "Storage Sizing Guide" tier for a model size: (tier, storage size)."""
    if params_b < 7:
        return "small (< 7B parameters)", "10Gi"
    if params_b <= 70:
        return "medium (7B - 70B parameters)", "50Gi"
    return "large (> 70B parameters)", "100Gi"


def shape_estimate_bytes(
    shape: ModelShape, context: int, batch: int, dtype_bytes: float = 2.0
) -> float:
    """Bytes of K and V for ``batch`` sequences of ``context`` tokens."""
    return 2 * shape.layers * shape.kv_heads * shape.head_dim * dtype_bytes * context * batch


@dataclass(frozen=True)
class MemoryEstimate:
    """What to set for a cache that should keep ``resident_bytes`` of KV data in Redis.

    ``limit_gib``: ``resources.limits.memory`` (and requests) in whole GiB, at least 1 (the
    default); ``maxmemory_bytes``: what the operator renders from that limit; ``storage_gib``:
    the volume the persistence needs to snapshot that much data (0 with persistence None)."""

    persistence: PersistenceName
    fraction: Decimal
    limit_gib: int
    maxmemory_bytes: int
    storage_gib: int


def memory_estimate(
    resident_bytes: float | Decimal, persistence: PersistenceName = "RDB"
) -> MemoryEstimate:
    """The smallest whole-GiB memory limit whose derived maxmemory holds ``resident_bytes``."""
    fraction = MAXMEMORY_FRACTION[persistence]
    limit_gib = max(1, math.ceil(Decimal(resident_bytes) / fraction / GIB))
    maxmemory = int(limit_gib * GIB * fraction)  # rounded down, as the operator renders it
    storage = math.ceil(maxmemory * STORAGE_PER_MAXMEMORY[persistence] / GIB)
    return MemoryEstimate(persistence, fraction, limit_gib, maxmemory, storage)
