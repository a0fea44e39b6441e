"""The Makefile's ship targets, checked by dry run (``make -n -B``: print every command, run
none; ``-B`` so up-to-date prerequisites such as the virtualenv still print theirs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def dry_run(*args: str) -> list[str]:
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("docker-build", "docker build -t aimctl:dev ."),
        ("kind-up", "kind create cluster --name aimctl"),
        ("kind-down", "kind delete cluster --name aimctl"),
        ("kind-load", "kind load docker-image aimctl:dev --name aimctl"),
        ("deploy", "kubectl apply --server-side -k manifests/default"),
        ("undeploy", "kubectl delete --ignore-not-found -k manifests/default"),
        ("dev", ".venv/bin/aimctl dev up --dir .dev"),
        ("dev-down", ".venv/bin/aimctl dev down --dir .dev"),
        ("run", ".venv/bin/aimctl run --log-format console"),
        ("manifests", ".venv/bin/aimctl manifests --output manifests/crds"),
        ("install", ".venv/bin/pip install -q --require-hashes -r requirements/dev.txt"),
        ("lint", ".venv/bin/mypy"),
        ("clean", ".venv/bin/aimctl dev down --dir .dev"),
    ],
)
def test_target_runs_the_expected_command(target: str, expected: str) -> None:
    lines = dry_run(target)
    assert any(expected in line for line in lines), "\n".join(lines)


def test_kind_up_reuses_an_existing_cluster() -> None:
    (line,) = dry_run("kind-up")
    assert line.startswith("kind get clusters")
    assert "|| kind create cluster" in line


def test_kind_load_builds_the_image_first() -> None:
    lines = dry_run("kind-load")
    build = lines.index("docker build -t aimctl:dev .")
    load = lines.index("kind load docker-image aimctl:dev --name aimctl")
    assert build < load


def test_image_cluster_and_dev_dir_are_overridable() -> None:
    assert "docker build -t ghcr.io/x/aimctl:1 ." in dry_run(
        "docker-build", "IMG=ghcr.io/x/aimctl:1"
    )
    assert "kind load docker-image a:b --name c" in dry_run(
        "kind-load", "IMG=a:b", "KIND_CLUSTER=c"
    )
    assert any("aimctl dev up --dir /tmp/d" in ln for ln in dry_run("dev", "DEV_DIR=/tmp/d"))
    assert any("aimctl dev down --dir /tmp/d" in ln for ln in dry_run("dev-down", "DEV_DIR=/tmp/d"))


def test_deploy_uses_kubectl_from_path_unless_told() -> None:
    assert dry_run("deploy") == ["kubectl apply --server-side -k manifests/default"]
    pinned = "/opt/k8s/kubectl"
    assert dry_run("deploy", f"KUBECTL={pinned}") == [
        f"{pinned} apply --server-side -k manifests/default"
    ]


def test_undeploy_deletes_the_aim_objects_before_the_operator() -> None:
    lines = dry_run("undeploy")
    objects = next(i for i, ln in enumerate(lines) if "aimkvcaches.aim.silogen.ai" in ln)
    everything = lines.index("kubectl delete --ignore-not-found -k manifests/default")
    assert objects < everything
    assert "--all-namespaces" in lines[objects]


def test_dev_builds_the_control_plane_before_starting() -> None:
    lines = dry_run("dev")
    control_plane = lines.index("bash hack/control-plane.sh")
    up = next(i for i, ln in enumerate(lines) if "aimctl dev up" in ln)
    assert control_plane < up
