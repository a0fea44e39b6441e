"""KV-cache storage sizing: the guide's rule of thumb next to an estimate from the model's shape.

Two numbers, each labelled, because they answer different questions:

- **Guide heuristic** (``using-kv-cache.md``, "Calculating Size"):
  ``model_size_B x context_tokens x batch x 0.001`` read as MB, rounded up to whole GB as the
  minimum, times 20 for overhead and growth. Llama 70B, 4K context, batch 8: 2,240 MB, about 3 GB
  minimum, 60 GB recommended. The guide's tiers: < 7B -> 10Gi, 7B-70B -> 50Gi, > 70B -> 100Gi.
- **Model-shape estimate**: the bytes the KV tensors of one full batch actually take:
  ``2 (K and V) x layers x kv_heads x head_dim x dtype_bytes x context x batch``.
  Llama 3.1 70B (80 layers, 8 KV heads, head dim 128, fp16), 4K context, batch 8: 10.5 GB.

The guide's heuristic is what the docs promise users; the shape estimate is what the tensors
need for one resident batch. Redis stores serialized chunks, so size storage at or above the
larger of the two and scale up from monitoring ("size conservatively, then scale").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "DTYPE_BYTES",
    "MODEL_SHAPES",
    "GuideEstimate",
    "ModelShape",
    "guide_estimate",
    "guide_tier",
    "shape_estimate_bytes",
]

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
