"""``aimctl manifests``: the shipped manifests are the repository's ``manifests/``, printed or
written; the CRD generation (``--output``, ``--check``) is tested in tests/unit/api."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from aimctl.cli import cli
from aimctl.cli._manifests import SHIPPED, shipped_crds

REPO = Path(__file__).resolve().parents[3]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_the_package_data_is_a_link_to_the_repository_manifests() -> None:
    # One source of truth: the wheel build copies what the link points at
    # (tests/integration/ship/test_ship_wheel.py checks the built wheel).
    assert SHIPPED.is_symlink()
    assert SHIPPED.resolve() == (REPO / "manifests").resolve()


def test_prints_the_crds_in_kustomization_order() -> None:
    result = CliRunner().invoke(cli, ["manifests"])
    assert result.exit_code == 0, result.output
    order = yaml.safe_load((REPO / "manifests" / "crds" / "kustomization.yaml").read_text())
    expected = [(REPO / "manifests" / "crds" / name).read_text() for name in order["resources"]]
    assert result.output == "---\n".join(expected) == shipped_crds()
    docs = [d for d in yaml.safe_load_all(result.output) if d]
    assert [d["metadata"]["name"] for d in docs] == [
        "aimkvcaches.aim.silogen.ai",
        "aimservices.aim.silogen.ai",
    ]


def test_write_copies_the_whole_tree(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["manifests", "--write", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert _files(tmp_path / "out") == _files(REPO / "manifests")
    assert (tmp_path / "out" / "default" / "kustomization.yaml").is_file()
    assert (tmp_path / "out" / "samples" / "quick-start.yaml").is_file()


def test_path_names_the_shipped_directory() -> None:
    result = CliRunner().invoke(cli, ["manifests", "--path"])
    assert result.exit_code == 0
    assert Path(result.output.strip()) == SHIPPED


def test_conflicting_options_are_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(cli, ["manifests", "--path", "--write", str(tmp_path)])
    assert both.exit_code == 2
    assert "one of --write, --path and --output" in both.output
    check = runner.invoke(cli, ["manifests", "--check"])
    assert check.exit_code == 2
    assert "--check needs --output" in check.output
