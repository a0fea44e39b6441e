"""The distribution's metadata: one version, an SPDX license with its file, URLs and classifiers,
bounded dependencies, cryptography only behind the ``envtest`` extra, no pytest11 entry point."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement

import aimctl

REPO = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def test_the_version_lives_in_aimctl_init_only() -> None:
    assert "version" not in PROJECT
    assert "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "aimctl.__version__"}
    # A plain literal, so setuptools reads it without importing aimctl (and its dependencies).
    init = (REPO / "aimctl" / "__init__.py").read_text()
    assert re.search(r'^__version__ = "[0-9][^"]*"$', init, re.M)
    assert distribution("aimctl").version == aimctl.__version__


def test_the_user_agent_carries_the_version() -> None:
    from aimctl.client._rest import _USER_AGENT

    assert _USER_AGENT.startswith("aimctl/")
    assert _USER_AGENT.removeprefix("aimctl/") == aimctl.__version__
    # No other copy of the version string in the package.
    copies = [
        str(path.relative_to(REPO))
        for path in (REPO / "aimctl").rglob("*.py")
        if path.name != "__init__.py" or path.parent.name != "aimctl"
        if re.search(r"""["']aimctl/\d""", path.read_text())
    ]
    assert copies == []


def test_spdx_license_with_the_apache_text() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in text
    assert "License-Expression: Apache-2.0" in str(distribution("aimctl").metadata)
    # The image label and the build context name the same license and file.
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in (REPO / "Dockerfile").read_text()
    assert "!LICENSE" in (REPO / ".dockerignore").read_text().splitlines()
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])  # PEP 639


def test_urls_classifiers_keywords() -> None:
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(PROJECT["urls"])
    assert all(url.startswith("https://") for url in PROJECT["urls"].values())
    assert PROJECT["keywords"]
    classifiers = PROJECT["classifiers"]
    assert "Typing :: Typed" in classifiers
    assert (REPO / "aimctl" / "py.typed").exists()
    lowest = PROJECT["requires-python"].removeprefix(">=")
    versions = [c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r".*:: 3\.\d+", c)]
    assert lowest in versions
    assert all(tuple(map(int, v.split("."))) >= (3, 11) for v in versions)


def test_no_pytest_entry_point_the_plugin_is_opt_in() -> None:
    assert "pytest11" not in PROJECT.get("entry-points", {})
    dist = distribution("aimctl")
    assert [ep.group for ep in dist.entry_points if ep.group == "pytest11"] == []
    conftest = (REPO / "tests" / "conftest.py").read_text()
    assert 'pytest_plugins = ["aimctl.envtest.pytest_plugin"]' in conftest


def _names(reqs: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(r) for r in reqs]
    return {r.name.lower(): r for r in parsed}


def test_cryptography_is_a_runtime_dependency_and_the_envtest_extra_stays() -> None:
    runtime = _names(PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    # The operator's secure metrics mint a self-signed serving certificate by default.
    assert "cryptography" in runtime
    assert "cryptography" in _names(extras["envtest"])
    assert "aimctl[envtest]" in extras["dev"]
    assert {"kopf", "py-spy", "psutil"} == set(_names(extras["bench"]))
    # The benchmark peers stay out of make install; psutil is shared (the tests measure
    # processes with it too).
    assert not {"kopf", "py-spy"} & set(_names(extras["dev"]))


def test_every_dependency_has_an_upper_bound() -> None:
    groups = {"dependencies": PROJECT["dependencies"], **PROJECT["optional-dependencies"]}
    for group, reqs in groups.items():
        for name, req in _names(reqs).items():
            if name == "aimctl":
                continue
            assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), (group, name)


def test_without_the_envtest_extra_importing_envtest_names_it() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['cryptography'] = None  # as if the envtest extra were not installed\n"
        "import aimctl.envtest\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "pip install 'aimctl[envtest]'" in result.stderr, result.stderr
    # The library itself does not need it.
    script = (
        "import sys\nsys.modules['cryptography'] = None\nimport aimctl.manager, aimctl.client\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
