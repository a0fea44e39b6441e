from decimal import Decimal

import pytest
from click.testing import CliRunner

from aimctl.api.v1alpha1 import AIMKVCache, Persistence
from aimctl.cli import cli
from aimctl.sizing import (
    MAXMEMORY_FRACTION,
    MODEL_SHAPES,
    PersistenceName,
    guide_estimate,
    guide_tier,
    memory_estimate,
    shape_estimate_bytes,
)


def test_guide_worked_example_llama_70b() -> None:
    # using-kv-cache.md: 70 x 4000 x 8 x 0.001 = 2,240 MB ~ 3 GB (minimum); 3 GB x 20 = 60 GB
    g = guide_estimate(70, 4000, 8)
    assert g.megabytes == 2240
    assert g.minimum_gb == 3
    assert g.recommended_gb == 60


def test_guide_tiers() -> None:
    assert guide_tier(3)[1] == "10Gi"
    assert guide_tier(7)[1] == "50Gi"
    assert guide_tier(70)[1] == "50Gi"
    assert guide_tier(405)[1] == "100Gi"


def test_shape_estimate_llama_70b_fp16() -> None:
    b = shape_estimate_bytes(MODEL_SHAPES["llama-3.1-70b"], 4000, 8)
    assert b == 2 * 80 * 8 * 128 * 2 * 4000 * 8  # 10.49 GB


def test_cli_prints_each_estimate_labelled() -> None:
    out = CliRunner().invoke(cli, ["kvcache", "size", "--model", "llama-3.1-70b"])
    assert out.exit_code == 0, out.output
    assert "Guide tier:            medium (7B - 70B parameters) -> storage.size 50Gi" in out.output
    assert "= 2,240 MB ~ 3 GB minimum; x 20 for overhead and growth = 60 GB" in out.output
    assert "= 10.5 GB (9.8 GiB) for one resident batch" in out.output
    assert "Suggested storage.size: 60Gi" in out.output


def test_cli_needs_a_model_size() -> None:
    out = CliRunner().invoke(cli, ["kvcache", "size"])
    assert out.exit_code == 2
    assert "give --model or --params-b" in out.output


def test_memory_for_one_resident_batch_of_llama_70b() -> None:
    b = shape_estimate_bytes(MODEL_SHAPES["llama-3.1-70b"], 4000, 8)  # 9.8 GiB
    m = memory_estimate(b)  # persistence unset means RDB
    assert (m.persistence, m.fraction, m.limit_gib) == ("RDB", Decimal("0.75"), 14)
    assert m.maxmemory_bytes == 14 * 2**30 * 3 // 4 >= b
    assert b > (13 * 2**30 * 3) // 4  # 13Gi would not hold it
    assert m.storage_gib == 21  # the snapshot and its temporary copy


def test_the_default_limit_and_each_persistence() -> None:
    assert memory_estimate(0).limit_gib == 1  # the operator's default 1Gi
    assert memory_estimate(0).maxmemory_bytes == 805306368  # the rendered --maxmemory for 1Gi
    none = memory_estimate(2**30, "None")
    assert (none.fraction, none.limit_gib, none.storage_gib) == (Decimal("0.9"), 2, 0)
    assert none.maxmemory_bytes == 1932735283  # 90% of 2Gi, rounded down
    aof = memory_estimate(2**30, "AOF")
    assert (aof.fraction, aof.limit_gib, aof.storage_gib) == (Decimal("0.75"), 2, 5)  # 3 x 1.5Gi


def test_persistence_names_are_the_api_values() -> None:
    assert set(MAXMEMORY_FRACTION) == {p.value for p in Persistence}


@pytest.mark.parametrize("persistence", sorted(MAXMEMORY_FRACTION))
@pytest.mark.parametrize("limit", ["1Gi", "2Gi", "7Gi", "14Gi", "300Gi"])
def test_the_estimate_is_what_the_operator_renders(
    persistence: PersistenceName, limit: str
) -> None:
    """The recommended limit, set on a cache, renders exactly the maxmemory the tool printed."""
    from aimctl.reconcilers.kvcache import _redis

    cache = AIMKVCache.model_validate(
        {
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {
                "resources": {"limits": {"memory": limit}},
                "redis": {"persistence": persistence},
            },
        }
    )
    gib = int(limit.removesuffix("Gi"))
    m = memory_estimate(gib * 2**30 * MAXMEMORY_FRACTION[persistence], persistence)
    assert m.limit_gib == gib
    assert m.maxmemory_bytes == _redis.maxmemory_bytes(cache)


def test_cli_recommends_memory_and_the_maxmemory_it_yields() -> None:
    out = CliRunner().invoke(cli, ["kvcache", "size", "--model", "llama-3.1-70b"])
    assert out.exit_code == 0, out.output
    assert "Snapshot room:         persistence RDB needs 2 x maxmemory on the volume = 21Gi" in (
        out.output
    )
    assert "Suggested memory:       resources.limits.memory 14Gi (requests the same)" in out.output
    assert "-> maxmemory 11274289152 bytes (10.50 GiB, 75% with persistence RDB)" in out.output


def test_cli_snapshot_room_can_decide_the_storage_size() -> None:
    """A long context on a small model: the KV data outgrows the guide's tiers, and a snapshot
    needs twice maxmemory on the volume."""
    args = ["--params-b", "3", "--layers", "32", "--kv-heads", "8", "--head-dim", "128"]
    args += ["--context", "32000", "--batch", "16"]
    out = CliRunner().invoke(cli, ["kvcache", "size", *args])
    assert out.exit_code == 0, out.output
    assert "resources.limits.memory 84Gi" in out.output  # 62.5 GiB / 0.75
    assert "Suggested storage.size: 126Gi" in out.output  # 2 x 63 GiB
    out = CliRunner().invoke(cli, ["kvcache", "size", *args, "--persistence", "None"])
    assert "Snapshot room:         none" in out.output
    assert "resources.limits.memory 70Gi" in out.output  # 62.5 GiB / 0.9
    assert "Suggested storage.size: 63Gi" in out.output  # the shape estimate itself


def test_cli_without_a_shape_sizes_memory_from_the_guides_minimum() -> None:
    out = CliRunner().invoke(cli, ["kvcache", "size", "--params-b", "70"])
    assert out.exit_code == 0, out.output
    assert "enough for the guide's minimum (3 GB)" in out.output
    assert "resources.limits.memory 4Gi" in out.output  # 3e9 B / 0.75 = 3.7 GiB


def test_the_production_docs_maxmemory_table_is_what_the_operator_renders() -> None:
    """docs/production.md, "Memory": each row's numbers equal the rendered --maxmemory."""
    import re
    from pathlib import Path

    from aimctl.reconcilers.kvcache import _redis

    doc = (Path(__file__).resolve().parents[3] / "docs" / "production.md").read_text()
    rows = re.findall(
        r"^\| (\d+)Gi(?: \(default\))? \| (\d+)(?: \([^)]*\))? \| (\d+) \|$", doc, re.M
    )
    assert len(rows) == 3, rows
    for limit, with_fork, without in rows:
        for persistence, shown in (("RDB", with_fork), ("AOF", with_fork), ("None", without)):
            cache = AIMKVCache.model_validate(
                {
                    "metadata": {"name": "c", "namespace": "ns"},
                    "spec": {
                        "resources": {"limits": {"memory": f"{limit}Gi"}},
                        "redis": {"persistence": persistence},
                    },
                }
            )
            assert _redis.maxmemory_bytes(cache) == int(shown), (limit, persistence)
