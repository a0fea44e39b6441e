from click.testing import CliRunner

from aimctl.cli import cli
from aimctl.sizing import MODEL_SHAPES, guide_estimate, guide_tier, shape_estimate_bytes


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
