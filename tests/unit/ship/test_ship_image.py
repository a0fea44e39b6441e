"""The Dockerfile's promises, read as text: no Docker engine here, so the image is never built in
these tests (``make docker-build`` builds it where there is one).

Promised: both base images pinned by digest in the ARG defaults; every Python package from the
hash-pinned locks; a final stage with an interpreter and our packages only (distroless: no shell,
no package manager, no pip, nothing RUN in it); a numeric non-root user matching the Deployment;
``aimctl run`` as the exec-form entrypoint; an SBOM step documented; a build context of the
package sources and locks only.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = (REPO / "Dockerfile").read_text()
DIGEST = r"@sha256:[0-9a-f]{64}"


def instructions(text: str = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def arg_default(name: str) -> str:
    (value,) = [a.split("=", 1)[1] for i, a in instructions() if i == "ARG" and a.startswith(name)]
    return value


def test_both_base_images_are_pinned_by_digest_in_the_arg_defaults() -> None:
    build = arg_default("PYTHON_IMAGE")
    runtime = arg_default("RUNTIME_IMAGE")
    assert re.fullmatch(rf"python:3\.11\.\d+-slim-bookworm{DIGEST}", build), build
    assert re.fullmatch(rf"gcr\.io/distroless/python3-debian12{DIGEST}", runtime), runtime


def test_build_on_python_runtime_on_distroless_with_the_same_python_minor() -> None:
    build, runtime = stages()
    assert build[0] == ("FROM", "${PYTHON_IMAGE} AS build")
    assert runtime[0] == ("FROM", "${RUNTIME_IMAGE}")
    # python:3.11 builds cp311 wheels; Debian 12's python3 is 3.11.
    assert "3.11" in arg_default("PYTHON_IMAGE")
    assert "debian12" in arg_default("RUNTIME_IMAGE")


def test_the_final_stage_runs_nothing_and_gets_only_the_installed_packages() -> None:
    _, runtime = stages()
    kinds = {i for i, _ in runtime}
    assert kinds <= {"FROM", "LABEL", "ENV", "COPY", "USER", "WORKDIR", "EXPOSE", "ENTRYPOINT"}
    copies = [a for i, a in runtime if i == "COPY"]
    assert copies == ["--from=build /opt/aimctl /opt/aimctl"]
    env = " ".join(a for i, a in runtime if i == "ENV")
    assert "PYTHONPATH=/opt/aimctl/site-packages" in env


def test_every_python_package_comes_from_a_hash_pinned_lock() -> None:
    build, _ = stages()
    runs = " && ".join(a for i, a in build if i == "RUN")
    commands = [c.strip() for c in runs.split("&&")]
    pips = [c for c in commands if re.search(r"\bpip (install|wheel)\b", c)]
    assert pips
    for command in pips:
        if " -r " in command:
            assert "--require-hashes" in command, command
            (lock,) = re.findall(r"-r (\S+)", command)
            assert re.fullmatch(r"requirements/(pip|build|runtime)\.txt", lock), command
        else:  # aimctl's own wheel, built and installed offline from this context
            assert "--no-index" in command, command
            assert "--no-deps" in command, command
    assert any("-r requirements/runtime.txt" in c and "--target" in c for c in pips)
    assert any("pip wheel" in c and "--no-build-isolation" in c for c in pips)
    for tool in ("pytest", "ruff", "mypy", "hypothesis", "dev.txt", "bench", "pip install -e"):
        assert tool not in DOCKERFILE


def test_runs_as_a_numeric_non_root_user_matching_the_deployment() -> None:
    _, runtime = stages()
    (user,) = [a for i, a in runtime if i == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) != 0
    assert int(gid) != 0
    manager = yaml.safe_load((REPO / "manifests/manager/manager.yaml").read_text())
    pod = manager["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid), int(gid))


def test_entrypoint_is_aimctl_run_in_exec_form_and_the_ports_are_exposed() -> None:
    (entrypoint,) = [a for i, a in instructions() if i == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["/usr/bin/python3", "-m", "aimctl", "run"]
    assert not [a for i, a in instructions() if i in ("CMD", "SHELL")]
    (expose,) = [a for i, a in instructions() if i == "EXPOSE"]
    assert expose.split() == ["8443", "8081"]  # secure metrics, probes
    assert (REPO / "aimctl" / "__main__.py").exists()


def test_an_sbom_step_is_documented() -> None:
    assert "--sbom=true" in DOCKERFILE
    assert "SBOM" in (REPO / "docs" / "decisions.md").read_text()


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


def test_the_build_context_is_the_sources_the_license_and_the_locks() -> None:
    """The package data behind aimctl/cli/manifests (a link to manifests/) included."""
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert patterns[0] == "*"
    wanted = [
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "aimctl/__init__.py",
        "aimctl/py.typed",
        "manifests/crds/aim.silogen.ai_aimkvcaches.yaml",
        "requirements/runtime.txt",
        "requirements/pip.txt",
        "requirements/build.txt",
    ]
    unwanted = [
        "aimctl/__pycache__/cli.cpython-311.pyc",
        "tests/conftest.py",
        ".venv/bin/python",
        ".dev/cluster/kubeconfig",
        ".git/HEAD",
        "aimctl.egg-info/PKG-INFO",
        "bench/__init__.py",
        "requirements/lock.sh",
    ]
    assert _context(patterns, wanted + unwanted) == wanted
    # Everything the Dockerfile copies is in the context.
    copied = [
        source
        for instruction, args in instructions()
        if instruction == "COPY" and "--from" not in args
        for source in args.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert (REPO / source).exists(), source
        probe = source + "any-file" if source.endswith("/") else source
        assert _context(patterns, [probe]) == [probe], source
