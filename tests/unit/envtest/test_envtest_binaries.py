"""Binary lookup: KUBEBUILDER_ASSETS, TEST_ASSET_*, the build script's cache, and errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aimctl.envtest import _versions
from aimctl.envtest._binaries import (
    FULL_BINARIES,
    BinariesNotFound,
    default_cache_dir,
    find_assets,
)

REPO = Path(__file__).resolve().parents[3]


def _fill(directory: Path, names: tuple[str, ...], *, stages: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        exe = directory / name
        exe.write_text("#!/bin/sh\necho fake\n")
        exe.chmod(0o755)
    if stages:
        (directory / "kwok-stages").mkdir()
    return directory


def test_cache_dir_follows_the_pins(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    expected = (
        f"k8s-{_versions.K8S_VERSION}-etcd-{_versions.ETCD_VERSION}-kwok-{_versions.KWOK_VERSION}"
    )
    assert default_cache_dir(env) == tmp_path / expected
    assert default_cache_dir(
        {"AIMCTL_CACHE_DIR": str(tmp_path), "K8S_VERSION": "v1.35.9"}
    ).name == (f"k8s-v1.35.9-etcd-{_versions.ETCD_VERSION}-kwok-{_versions.KWOK_VERSION}")


def test_default_cache_root_is_home_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir({}).parent == tmp_path / ".cache" / "aimctl"


def test_finds_the_cache(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    directory = _fill(default_cache_dir(env), ("etcd", "kube-apiserver"))
    assets = find_assets(env=env)
    assert assets.directory == directory
    assert assets.path("etcd") == directory / "etcd"


def test_kubebuilder_assets_wins_over_the_cache(tmp_path: Path) -> None:
    _fill(default_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path)}), ("etcd", "kube-apiserver"))
    explicit = _fill(tmp_path / "assets", ("etcd", "kube-apiserver"))
    env = {"AIMCTL_CACHE_DIR": str(tmp_path), "KUBEBUILDER_ASSETS": str(explicit)}
    assert find_assets(env=env).directory == explicit


def test_kubebuilder_assets_is_never_silently_ignored(tmp_path: Path) -> None:
    _fill(default_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path)}), ("etcd", "kube-apiserver"))
    env = {"AIMCTL_CACHE_DIR": str(tmp_path), "KUBEBUILDER_ASSETS": str(tmp_path / "empty")}
    with pytest.raises(BinariesNotFound, match="KUBEBUILDER_ASSETS"):
        find_assets(env=env)


def test_test_asset_override_for_one_binary(tmp_path: Path) -> None:
    explicit = _fill(tmp_path / "assets", ("etcd", "kube-apiserver"))
    other = _fill(tmp_path / "elsewhere", ("etcd",)) / "etcd"
    env = {"KUBEBUILDER_ASSETS": str(explicit), "TEST_ASSET_ETCD": str(other)}
    assets = find_assets(env=env)
    assert assets.path("etcd") == other
    assert assets.path("kube-apiserver") == explicit / "kube-apiserver"


def test_missing_binaries_say_to_run_make_control_plane(tmp_path: Path) -> None:
    with pytest.raises(BinariesNotFound, match="make control-plane") as err:
        find_assets(env={"AIMCTL_CACHE_DIR": str(tmp_path)})
    assert "etcd" in str(err.value)
    assert "kube-apiserver" in str(err.value)


def test_full_mode_needs_the_extra_binaries_and_stages(tmp_path: Path) -> None:
    env = {"KUBEBUILDER_ASSETS": str(_fill(tmp_path / "a", ("etcd", "kube-apiserver", "kubectl")))}
    find_assets(env=env)
    with pytest.raises(BinariesNotFound, match="kube-controller-manager") as err:
        find_assets(full=True, env=env)
    assert "kwok-stages/" in str(err.value)
    env = {"KUBEBUILDER_ASSETS": str(_fill(tmp_path / "b", FULL_BINARIES, stages=True))}
    assert find_assets(full=True, env=env).kwok_stages == tmp_path / "b" / "kwok-stages"


def test_build_script_uses_the_same_pins_and_directory(tmp_path: Path) -> None:
    """hack/control-plane.sh reads the pins from _versions.py and finds the same cache."""
    env = {"AIMCTL_CACHE_DIR": str(tmp_path / "cache")}
    dest = _fill(
        default_cache_dir(env),
        ("etcd", "kwok", "kube-controller-manager", "kube-scheduler", "kubectl"),
    )
    apiserver = dest / "kube-apiserver"
    apiserver.write_text(f"#!/bin/sh\necho 'Kubernetes {_versions.K8S_VERSION}'\n")
    apiserver.chmod(0o755)
    # A `go` that fails at once: if the script ever decided to build, the test fails fast.
    nogo = tmp_path / "bin"
    _fill(nogo, ("go",))
    (nogo / "go").write_text("#!/bin/sh\nexit 97\n")
    script_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KUBEBUILDER_ASSETS", "K8S_VERSION", "ETCD_VERSION", "KWOK_VERSION")
    }
    script_env |= env | {"PATH": f"{nogo}:{os.environ['PATH']}"}
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "control-plane.sh")],
        env=script_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == str(dest)
