"""The hash-pinned locks in requirements/: complete for what they install, consistent with
pyproject.toml's ranges and with each other, and the only way ``make install``, ``make bench``,
``.ci/run`` and the Dockerfile get Python packages."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
REQ = REPO / "requirements"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
LOCKS = ("pip", "build", "runtime", "dev", "bench")


def _entries(lock: str) -> dict[str, tuple[str, str, list[str]]]:
    """name -> (version, marker, hashes), from a `pip --require-hashes` requirements file."""
    text = (REQ / f"{lock}.txt").read_text()
    out: dict[str, tuple[str, str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", re.sub(r"^\s*#.*$", "", text, flags=re.M)):
        block = block.strip()
        if not block:
            continue
        head = block.split("\\", 1)[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)(?:\s*;\s*(.+))?", head)
        assert m, f"{lock}.txt: not an exact pin: {head!r}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        out[canonicalize_name(m[1])] = (m[2], m[3] or "", hashes)
    return out


@pytest.mark.parametrize("lock", LOCKS)
def test_every_entry_is_an_exact_pin_with_hashes(lock: str) -> None:
    entries = _entries(lock)
    assert entries
    for name, (_, _, hashes) in entries.items():
        assert hashes, f"{lock}.txt: {name} has no --hash"


def _required(reqs: list[str], extras: set[str]) -> dict[str, Requirement]:
    out = {}
    for text in reqs:
        req = Requirement(text)
        if req.name == "aimctl":  # a self-reference: aimctl[envtest]
            for extra in req.extras:
                out.update(_required(PROJECT["optional-dependencies"][extra], extras))
            continue
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out[canonicalize_name(req.name)] = req
    return out


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("runtime", set()), ("dev", {"dev"}), ("bench", {"dev", "bench"})],
)
def test_each_lock_satisfies_pyproject(lock: str, extras: set[str]) -> None:
    reqs = list(PROJECT["dependencies"])
    for extra in extras:
        reqs += PROJECT["optional-dependencies"][extra]
    entries = _entries(lock)
    for name, req in _required(reqs, extras).items():
        assert name in entries, f"{lock}.txt lacks {name}"
        assert req.specifier.contains(entries[name][0], prereleases=True), (lock, name, req)


def test_the_image_lock_has_no_dev_packages() -> None:
    runtime = _entries("runtime")
    for name in ("pytest", "ruff", "mypy", "hypothesis", "kopf", "setuptools"):
        assert name not in runtime
    assert "cryptography" in runtime  # the metrics server's self-signed certificate


def test_the_locks_agree_on_every_shared_version() -> None:
    seen: dict[str, tuple[str, str]] = {}
    for lock in ("runtime", "dev", "bench", "build"):
        for name, (version, _, _) in _entries(lock).items():
            first = seen.setdefault(name, (version, lock))
            assert first[0] == version, f"{name}: {first[1]} has {first[0]}, {lock} has {version}"


def test_setuptools_in_the_dev_lock_builds_this_project() -> None:
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    version = _entries("dev")["setuptools"][0]
    for text in build:
        req = Requirement(text)
        assert req.specifier.contains(_entries("build")[canonicalize_name(req.name)][0])
        if req.name == "setuptools":
            assert req.specifier.contains(version)


def test_lock_sh_regenerates_every_lock() -> None:
    script = (REQ / "lock.sh").read_text()
    for lock in LOCKS:
        assert f"requirements/{lock}.txt" in script
    assert "--generate-hashes" in script
    for lock in LOCKS:
        assert "bash requirements/lock.sh" in (REQ / f"{lock}.txt").read_text().splitlines()[1]


# -- who installs from them ------------------------------------------------------------------


def _dry_run(*targets: str) -> list[str]:
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "-C", str(REPO), *targets],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


@needs_make
def test_make_install_uses_the_dev_lock_with_hashes_and_no_bench_extras() -> None:
    lines = _dry_run("install")
    pip_lines = [ln for ln in lines if "pip install" in ln]
    assert pip_lines == [
        ".venv/bin/pip install -q --require-hashes -r requirements/pip.txt",
        ".venv/bin/pip install -q --require-hashes -r requirements/dev.txt",
        "rm -rf aimctl.egg-info && .venv/bin/pip install -q --no-deps --no-build-isolation -e .",
    ]
    assert not any("bench" in ln or "--upgrade" in ln for ln in lines)


@needs_make
def test_make_bench_adds_the_bench_lock() -> None:
    lines = _dry_run("bench")
    install = lines.index(".venv/bin/pip install -q --require-hashes -r requirements/bench.txt")
    run = next(i for i, ln in enumerate(lines) if ln.endswith("-m bench"))
    assert install < run


def test_ci_installs_through_make_install() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.startswith("#")]
    assert commands.index("make install") < commands.index("make test")
    assert "pip install" not in ci.replace("pip install --require-hashes", "")
