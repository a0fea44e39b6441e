"""``aimctl kvcache``: commands about KV caches that need no cluster."""

from __future__ import annotations

import math

import click

from aimctl.sizing import (
    DTYPE_BYTES,
    MODEL_SHAPES,
    ModelShape,
    guide_estimate,
    guide_tier,
    shape_estimate_bytes,
)

__all__ = ["kvcache"]


@click.group("kvcache")
def kvcache() -> None:
    """KV-cache helpers."""


@kvcache.command("size")
@click.option("--model", type=click.Choice(sorted(MODEL_SHAPES)), help="A known model shape.")
@click.option("--params-b", type=float, help="Model size in billions of parameters.")
@click.option("--layers", type=int, help="Transformer layers (num_hidden_layers).")
@click.option("--kv-heads", type=int, help="Key/value heads (num_key_value_heads).")
@click.option("--head-dim", type=int, help="Head dimension (hidden_size / num_attention_heads).")
@click.option("--dtype", type=click.Choice(sorted(DTYPE_BYTES)), default="fp16", show_default=True)
@click.option(
    "--context", type=int, default=4000, show_default=True, help="Context length in tokens."
)
@click.option("--batch", type=int, default=8, show_default=True, help="Concurrent sequences.")
def size(
    model: str | None,
    params_b: float | None,
    layers: int | None,
    kv_heads: int | None,
    head_dim: int | None,
    dtype: str,
    context: int,
    batch: int,
) -> None:
    """Recommend a cache storage.size: the guide's formula and tiers, and a model-shape estimate.

    Example: aimctl kvcache size --model llama-3.1-70b --context 4000 --batch 8
    """
    base = MODEL_SHAPES.get(model or "")
    p = params_b if params_b is not None else (base.params_b if base else None)
    if p is None:
        raise click.UsageError("give --model or --params-b")
    shape = None
    if base is not None or None not in (layers, kv_heads, head_dim):
        shape = ModelShape(
            p,
            layers or (base.layers if base else 0),
            kv_heads or (base.kv_heads if base else 0),
            head_dim or (base.head_dim if base else 0),
        )
    tier, tier_size = guide_tier(p)
    g = guide_estimate(p, context, batch)
    name = model or f"{p:g}B model"
    click.echo(f"KV-cache sizing for {name}: context {context:,} tokens, batch {batch}\n")
    click.echo(f"  Guide tier:            {tier} -> storage.size {tier_size}")
    click.echo(
        f"  Guide formula:         {p:g} x {context:,} x {batch} x 0.001 = {g.megabytes:,.0f} MB"
        f" ~ {g.minimum_gb} GB minimum; x 20 for overhead and growth = {g.recommended_gb} GB"
    )
    candidates = [int(tier_size.removesuffix("Gi")), g.recommended_gb]
    if shape is not None:
        b = shape_estimate_bytes(shape, context, batch, DTYPE_BYTES[dtype])
        gib = b / 2**30
        click.echo(
            f"  Model-shape estimate:  2 x {shape.layers} layers x {shape.kv_heads} KV heads"
            f" x {shape.head_dim} head dim x {DTYPE_BYTES[dtype]:g} B ({dtype}) x {context:,}"
            f" tokens x {batch} = {b / 1e9:,.1f} GB ({gib:,.1f} GiB) for one resident batch"
        )
        candidates.append(math.ceil(gib))
    else:
        click.echo("  Model-shape estimate:  give --layers, --kv-heads and --head-dim (or --model)")
    click.echo(f"\n  Suggested storage.size: {max(candidates)}Gi (the largest of the above)")
