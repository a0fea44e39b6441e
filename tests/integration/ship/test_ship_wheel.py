"""Acceptance (issue #17): an installed wheel needs no repository checkout.

The wheel is built from a copy of the package sources (what an sdist holds: pyproject.toml,
README.md, LICENSE, aimctl/, manifests/), installed with ``--no-deps`` into a fresh venv whose
dependencies come from this virtualenv (a ``.pth`` line puts its site-packages *after* the new
venv's own, so ``import aimctl`` finds the wheel, never the editable install), and run from a
directory outside the repository. ``aimctl manifests`` must print and write exactly the
repository's ``manifests/`` (the source of truth the wheel copies), and ``aimctl dev up`` must
install the shipped CRDs on a cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from aimctl.cli import ExitCode
from aimctl.envtest import find_assets, stop_detached
from aimctl.envtest._ports import free_ports
from aimctl.envtest.pytest_plugin import private_control_plane

from .ship_env import dev_up_args

REPO = Path(__file__).resolve().parents[3]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "aimctl", "manifests")


@dataclass(frozen=True)
class Install:
    venv: Path
    outside: Path  # a working directory with no repository above it

    def aimctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return subprocess.run(
            [str(self.venv / "bin" / "aimctl"), *args],
            cwd=self.outside,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            # symlinks=True: aimctl/cli/manifests stays a link, as in a checkout.
            shutil.copytree(
                path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        elif path.exists():
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (root / "dist").glob("aimctl-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies: this venv's site-packages, searched after the new venv's own.
    Path(site, "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = root / "elsewhere"
    outside.mkdir()
    return Install(venv, outside)


def test_the_installed_package_is_the_wheel(installed: Install) -> None:
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", "import aimctl; print(aimctl.__file__)"],
        cwd=installed.outside,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.venv), where
    shipped = installed.aimctl("manifests", "--path")
    assert shipped.returncode == 0, shipped.stderr
    path = Path(shipped.stdout.strip())
    assert path.is_relative_to(installed.venv)
    assert not path.is_symlink()  # the build copied the files the link points at


def test_manifests_prints_the_crds_without_a_checkout(installed: Install) -> None:
    result = installed.aimctl("manifests")
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [d["kind"] for d in docs] == ["CustomResourceDefinition"] * 2
    assert sorted(d["metadata"]["name"] for d in docs) == [
        "aimkvcaches.aim.silogen.ai",
        "aimservices.aim.silogen.ai",
    ]


def test_manifests_write_is_the_repository_tree(installed: Install) -> None:
    # The sync check of the two places: the wheel's copy equals manifests/, file for file.
    out = installed.outside / "deploy"
    result = installed.aimctl("manifests", "--write", str(out))
    assert result.returncode == 0, result.stderr
    assert f"kubectl apply --server-side -k {out / 'default'}" in result.stderr
    assert _files(out) == _files(REPO / "manifests")


def test_run_without_crds_gives_a_hint_that_works_without_a_checkout(installed: Install) -> None:
    with private_control_plane() as cp:
        run = installed.aimctl(
            "run",
            "--kubeconfig",
            str(cp.kubeconfig),
            "--metrics-bind-address",
            "0",
            "--health-probe-bind-address",
            "0",
        )
        assert run.returncode == ExitCode.NO_CRDS, run.stderr[-2000:]
        hint = "aimctl manifests | kubectl apply --server-side -f -"
        assert hint in run.stderr
        # Following the hint, from outside the repository, installs them.
        cp.kubectl("apply", "--server-side", "-f", "-", input=installed.aimctl("manifests").stdout)
        names = cp.kubectl("get", "crd", "-o", "name").stdout.split()
        assert "customresourcedefinition.apiextensions.k8s.io/aimservices.aim.silogen.ai" in names


@pytest.mark.full
def test_dev_up_outside_the_repository_installs_the_shipped_crds(installed: Install) -> None:
    kubectl = find_assets(full=True).path("kubectl")  # a clear error without binaries
    directory = installed.outside / "dev"
    try:
        up = installed.aimctl(*dev_up_args(directory, *free_ports(2)), timeout=400)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "CRDs: aimkvcaches, aimservices installed" in up.stdout
        kubeconfig = directory / "cluster" / "kubeconfig"
        crds = subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig}", "get", "crd", "-o", "name"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()
        assert {"customresourcedefinition.apiextensions.k8s.io/aimkvcaches.aim.silogen.ai"} <= {
            *crds
        }
        # The operator ran from the wheel too (dev up starts `python -m aimctl run`).
        assert str(installed.venv) in (directory / "operator.log").read_text().splitlines()[0]
    finally:
        installed.aimctl("dev", "down", "--dir", str(directory), timeout=120)
        stop_detached(directory / "cluster")
