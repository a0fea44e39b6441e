"""An installed aimctl leaves other projects' pytest runs alone; its plugin is opt-in.

Each test builds a throwaway project (``--strict-markers``, a ``tests/integration/`` folder, no
marker declarations) and runs pytest there in a fresh interpreter of this environment, where
aimctl is installed, so entry-point autoloading happens exactly as on a user's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = "aimctl.envtest.pytest_plugin"

PYPROJECT = """\
[project]
name = "someone-else"
version = "1"

[tool.pytest.ini_options]
addopts = "--strict-markers"
"""


def _project(root: Path) -> Path:
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "tests" / "integration").mkdir(parents=True)
    (root / "tests" / "unit").mkdir()
    (root / "tests" / "integration" / "test_their_integration.py").write_text(
        f"import sys\n\ndef test_runs_without_aimctl():\n    assert {PLUGIN!r} not in sys.modules\n"
    )
    (root / "tests" / "unit" / "test_their_unit.py").write_text("def test_plain():\n    pass\n")
    return root


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
        and not k.startswith("AIMCTL_")
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_aimctl_is_installed_here() -> None:
    """The premise: this environment has aimctl installed as a distribution."""
    from importlib.metadata import distribution

    dist = distribution("aimctl")
    assert dist.version
    assert not [ep for ep in dist.entry_points if ep.group == "pytest11"]


def test_a_strict_markers_project_with_tests_integration_is_unaffected(tmp_path: Path) -> None:
    root = _project(tmp_path)
    result = _pytest(root)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "INTERNALERROR" not in output
    assert "2 passed" in output, output


def test_opting_in_registers_the_markers_it_applies(tmp_path: Path) -> None:
    root = _project(tmp_path)
    # Their test asserts the plugin is absent; with -p it is present, so select the other one
    # plus a marker the plugin applies by directory.
    (root / "tests" / "integration" / "test_their_integration.py").write_text(
        "def test_marked_by_the_plugin():\n    pass\n"
    )
    result = _pytest(root, "-p", PLUGIN, "-m", "integration")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed, 1 deselected" in output, output


@pytest.mark.parametrize("marker", ["integration", "full"])
def test_the_plugin_declares_its_markers(tmp_path: Path, marker: str) -> None:
    root = _project(tmp_path)
    result = _pytest(root, "-p", PLUGIN, "--markers")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"@pytest.mark.{marker}:" in result.stdout
