"""``aimctl kvcache``: commands about KV caches that need no cluster."""

from __future__ import annotations

import math

import click

from aimctl.sizing import (
    DTYPE_BYTES,
    GIB,
    MAXMEMORY_FRACTION,
    MODEL_SHAPES,
    STORAGE_PER_MAXMEMORY,
    ModelShape,
    PersistenceName,
    guide_estimate,
    guide_tier,
    memory_estimate,
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
@click.option(
    "--persistence",
    type=click.Choice(sorted(MAXMEMORY_FRACTION)),
    default="RDB",
    show_default=True,
    help="spec.redis.persistence of the cache (unset means RDB).",
)
def size(
    model: str | None,
    params_b: float | None,
    layers: int | None,
    kv_heads: int | None,
    head_dim: int | None,
    dtype: str,
    context: int,
    batch: int,
    persistence: PersistenceName,
) -> None:
    """Recommend a cache's storage.size (the guide's formula and tiers, a model-shape estimate,
    the room a snapshot needs) and its memory limit with the maxmemory it yields.

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
        gib = b / GIB
        click.echo(
            f"  Model-shape estimate:  2 x {shape.layers} layers x {shape.kv_heads} KV heads"
            f" x {shape.head_dim} head dim x {DTYPE_BYTES[dtype]:g} B ({dtype}) x {context:,}"
            f" tokens x {batch} = {b / 1e9:,.1f} GB ({gib:,.1f} GiB) for one resident batch"
        )
        candidates.append(math.ceil(gib))
        resident, basis = b, f"one resident batch ({gib:,.1f} GiB, the model-shape estimate)"
    else:
        click.echo("  Model-shape estimate:  give --layers, --kv-heads and --head-dim (or --model)")
        resident, basis = g.minimum_gb * 1e9, f"the guide's minimum ({g.minimum_gb} GB)"
    m = memory_estimate(resident, persistence)
    if m.storage_gib:
        click.echo(
            f"  Snapshot room:         persistence {persistence} needs"
            f" {STORAGE_PER_MAXMEMORY[persistence]} x maxmemory on the volume = {m.storage_gib}Gi"
        )
        candidates.append(m.storage_gib)
        kept = "RDB snapshots" if persistence == "RDB" else "append-only log"
        volume = f"The volume holds only its {kept}."
    else:
        click.echo("  Snapshot room:         none (persistence None keeps nothing on the volume)")
        volume = "Nothing survives a restart (persistence None)."
    click.echo(f"\n  Suggested storage.size: {max(candidates)}Gi (the largest of the above)")
    click.echo(
        f"  Suggested memory:       resources.limits.memory {m.limit_gib}Gi (requests the same)\n"
        f"                          -> maxmemory {m.maxmemory_bytes} bytes"
        f" ({m.maxmemory_bytes / GIB:,.2f} GiB, {m.fraction:.0%} with persistence {persistence}),\n"
        f"                          enough for {basis}.\n"
        "                          Redis keeps the whole cache in memory and, when full, evicts"
        " the least\n"
        "                          recently used chunks (allkeys-lru).\n"
        f"                          {volume}"
    )
