"""The pytest plugin's hooks: automatic markers and AIMCTL_REQUIRE_INTEGRATION=1."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
addopts = -p aimctl.envtest.pytest_plugin
asyncio_default_fixture_loop_scope = function
markers =
    integration: x
    full: x
"""
# Stand-ins for the real fixtures, so these inner sessions never start a control plane.
CONFTEST = """
import pytest

@pytest.fixture
def full_control_plane():
    return None

@pytest.fixture
def control_plane():
    return None
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("AIMCTL_REQUIRE_INTEGRATION", raising=False)
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.mkdir("tests")
    pytester.mkdir("tests/integration")
    pytester.mkdir("tests/unit")
    return pytester


def _write(pytester: pytest.Pytester, path: str, source: str) -> None:
    (pytester.path / path).write_text(source)


def test_markers_by_directory_and_fixture(project: pytest.Pytester) -> None:
    _write(project, "tests/integration/test_i.py", "def test_in_integration_dir(): pass\n")
    _write(
        project,
        "tests/unit/test_u.py",
        "def test_plain(): pass\n"
        "def test_uses_full(full_control_plane): pass\n"
        "def test_uses_envtest(control_plane): pass\n",
    )
    result = project.runpytest("-m", "integration", "-v")
    result.assert_outcomes(passed=3, deselected=1)
    result = project.runpytest("-m", "full", "-v")
    result.assert_outcomes(passed=1, deselected=3)
    result.stdout.fnmatch_lines(["*test_uses_full PASSED*"])


def test_skips_are_fine_without_the_flag(project: pytest.Pytester) -> None:
    _write(
        project,
        "tests/integration/test_i.py",
        "import pytest\ndef test_i(): pytest.skip('no binaries')\n",
    )
    assert project.runpytest().ret == pytest.ExitCode.OK


def test_a_skipped_integration_test_fails_the_session(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMCTL_REQUIRE_INTEGRATION", "1")
    _write(
        project,
        "tests/integration/test_i.py",
        "import pytest\ndef test_i(): pytest.skip('no binaries')\n"
        "@pytest.mark.xfail(reason='known')\ndef test_x(): assert False\n",
    )
    _write(project, "tests/unit/test_u.py", "import pytest\ndef test_u(): pytest.skip('unit ok')\n")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*AIMCTL_REQUIRE_INTEGRATION=1: 1 integration test(s) skipped: *test_i.py::test_i*"]
    )


def test_a_module_skipped_at_import_fails_the_session(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMCTL_REQUIRE_INTEGRATION", "1")
    _write(
        project,
        "tests/integration/test_i.py",
        "import pytest\npytest.importorskip('no_such_module_anywhere')\n",
    )
    _write(project, "tests/unit/test_u.py", "def test_u(): pass\n")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 integration test(s) skipped*"])


def test_collecting_nothing_fails_the_session(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMCTL_REQUIRE_INTEGRATION", "1")
    result = project.runpytest()
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*AIMCTL_REQUIRE_INTEGRATION=1: pytest collected no tests*"])
    _write(project, "tests/unit/test_u.py", "def test_u(): pass\n")
    result = project.runpytest("-m", "integration")
    assert result.ret != pytest.ExitCode.OK


def test_all_passing_is_ok_with_the_flag(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMCTL_REQUIRE_INTEGRATION", "1")
    _write(project, "tests/integration/test_i.py", "def test_i(): pass\n")
    assert project.runpytest().ret == pytest.ExitCode.OK


def test_missing_binaries_skip_or_fail(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real fixture: without binaries it skips, or fails under the flag."""
    pytester.makeini(INI)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(pytester.path / "no-binaries-here"))
    monkeypatch.delenv("AIMCTL_REQUIRE_INTEGRATION", raising=False)
    pytester.makepyfile(test_cp="def test_cp(control_plane): pass\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*make control-plane*"])
    monkeypatch.setenv("AIMCTL_REQUIRE_INTEGRATION", "1")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*forbids skipping*"])
