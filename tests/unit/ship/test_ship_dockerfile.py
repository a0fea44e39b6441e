"""The Dockerfile, read as text (no Docker engine here): pinned base, two stages, the wheel built
in the first, non-root numeric user, ``aimctl run`` as entrypoint, no dev dependencies; and a
``.dockerignore`` that sends only the package sources."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_base_image_is_python_311_slim_bookworm_pinned_by_patch_release() -> None:
    args = [a for i, a in instructions() if i == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert len(args) == 1
    image = args[0].removeprefix("PYTHON_IMAGE=")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    tag = image.split("@")[0]
    # The digest of that tag is written down next to it, with how to check and pin it.
    assert re.search(rf"{re.escape(tag)}.*\n#\s+sha256:[0-9a-f]{{64}}", DOCKERFILE), DOCKERFILE


def test_two_stages_the_second_gets_only_the_built_venv() -> None:
    froms = [a for i, a in instructions() if i == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    build, runtime = DOCKERFILE.split("\nFROM ${PYTHON_IMAGE}\n")
    assert "pip wheel" in build
    assert "--no-index --find-links /wheels aimctl" in build
    assert "COPY --from=build /opt/aimctl /opt/aimctl" in runtime
    assert "pip install" not in runtime


def test_no_dev_dependencies_or_editable_install() -> None:
    assert "[dev" not in DOCKERFILE
    assert "bench]" not in DOCKERFILE
    assert "pip install -e" not in DOCKERFILE
    for tool in ("pytest", "ruff", "mypy", "hypothesis"):
        assert tool not in DOCKERFILE


def test_runs_as_a_numeric_non_root_user_matching_the_deployment() -> None:
    users = [a for i, a in instructions() if i == "USER"]
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    manager = yaml.safe_load((REPO / "manifests/manager/manager.yaml").read_text())
    pod = manager["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid), int(gid))


def test_entrypoint_is_aimctl_run_and_the_ports_are_exposed() -> None:
    (entrypoint,) = [a for i, a in instructions() if i == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["aimctl", "run"]
    (expose,) = [a for i, a in instructions() if i == "EXPOSE"]
    assert expose.split() == ["8080", "8081"]


def _context(patterns: list[str], paths: list[str]) -> list[str]:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    sent = []
    for path in paths:
        excluded = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.removeprefix("!").rstrip("/")
            parts = path.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            if any(fnmatch.fnmatch(p, pat) for p in prefixes) or (
                pat.startswith("**/") and any(fnmatch.fnmatch(p, pat[3:]) for p in parts)
            ):
                excluded = not negate
        if not excluded:
            sent.append(path)
    return sent


def test_dockerignore_sends_the_package_sources_only() -> None:
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert patterns[0] == "*"
    candidates = [
        "pyproject.toml",
        "aimctl/cli.py",
        "aimctl/envtest/_full.py",
        "aimctl/py.typed",
        "aimctl/__pycache__/cli.cpython-311.pyc",
        "tests/conftest.py",
        ".venv/bin/python",
        ".dev/cluster/kubeconfig",
        ".git/HEAD",
        "manifests/crds/aim.silogen.ai_aimkvcaches.yaml",
        "bench/__init__.py",
    ]
    assert _context(patterns, candidates) == [
        "pyproject.toml",
        "aimctl/cli.py",
        "aimctl/envtest/_full.py",
        "aimctl/py.typed",
    ]
