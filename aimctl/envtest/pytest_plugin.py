"""pytest plugin: control-plane fixtures, automatic markers and the "no silent skips" rule.

Opt-in (an installed aimctl never loads it into other projects' pytest runs)::

    pytest -p aimctl.envtest.pytest_plugin            # or, in the top-level conftest.py:
    pytest_plugins = ["aimctl.envtest.pytest_plugin"]

It needs the ``envtest`` extra (``pip install 'aimctl[envtest]'``) and registers the two markers
it applies, so it works under ``--strict-markers`` without the project declaring them.

Fixtures (all synchronous, so they work with any event-loop scope; tests build their own async
clients from ``cp.kubeconfig``):

- ``control_plane`` (session): etcd + kube-apiserver, started on first use.
- ``full_control_plane`` (session): full mode (controller-manager, scheduler, kwok), started
  only when a test asks for it.
- ``namespace`` / ``full_namespace`` (function): a fresh namespace on the matching control plane,
  deleted afterwards without waiting.
- ``control_plane_factory`` (function): private control planes for destructive tests (killing
  the apiserver, compacting etcd), stopped when the test ends. For a module-scoped private one,
  use :func:`private_control_plane` in your own fixture.

Markers: tests under ``tests/integration/`` (or using ``control_plane``) get ``integration``;
tests using ``full_control_plane`` / ``full_namespace`` also get ``full``.

Missing binaries skip the tests that need them, unless ``AIMCTL_REQUIRE_INTEGRATION=1``: then the
fixture fails, and the session fails when any integration test was skipped or nothing was
collected (that is how CI proves the integration tests really ran).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, Protocol

import pytest

from aimctl.envtest._binaries import BinariesNotFound
from aimctl.envtest._controlplane import ControlPlane

__all__ = [
    "MARKERS",
    "REQUIRE_ENV",
    "ControlPlaneFactory",
    "control_plane",
    "control_plane_factory",
    "full_control_plane",
    "full_namespace",
    "namespace",
    "private_control_plane",
]

REQUIRE_ENV = "AIMCTL_REQUIRE_INTEGRATION"
# The markers this plugin applies, registered in pytest_configure (a project may declare them too;
# pytest keeps both lines, which is harmless).
MARKERS: Mapping[str, str] = {
    "integration": "needs a real kube-apiserver (added by aimctl.envtest.pytest_plugin)",
    "full": "needs the full local control plane (added by aimctl.envtest.pytest_plugin)",
}
_FULL_FIXTURES = frozenset({"full_control_plane", "full_namespace"})
_INTEGRATION_FIXTURES = frozenset({"control_plane", "namespace", "control_plane_factory"})


def _required(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get(REQUIRE_ENV, "").lower() in ("1", "true", "yes")


def _unavailable(error: BinariesNotFound) -> NoReturn:
    if _required():
        pytest.fail(f"{error} ({REQUIRE_ENV}=1 forbids skipping)", pytrace=False)
    pytest.skip(str(error))


def _new(full: bool, **kwargs: Any) -> ControlPlane:
    try:
        return ControlPlane(full=full, **kwargs)
    except BinariesNotFound as e:
        _unavailable(e)


@contextlib.contextmanager
def private_control_plane(*, full: bool = False, **kwargs: Any) -> Iterator[ControlPlane]:
    """A started control plane of your own (keyword arguments go to :class:`ControlPlane`),
    stopped on exit; skips (or fails, under ``AIMCTL_REQUIRE_INTEGRATION=1``) without binaries."""
    with _new(full, **kwargs) as cp:
        yield cp


class ControlPlaneFactory(Protocol):
    """``control_plane_factory(full=False, apiserver_args=None)`` returns a started plane."""

    def __call__(
        self, *, full: bool = False, apiserver_args: Mapping[str, str] | None = None
    ) -> ControlPlane: ...


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """The session's envtest control plane (etcd + kube-apiserver)."""
    with private_control_plane() as cp:
        yield cp


@pytest.fixture(scope="session")
def full_control_plane() -> Iterator[ControlPlane]:
    """The session's full control plane (plus controller-manager, scheduler, kwok)."""
    with private_control_plane(full=True) as cp:
        yield cp


def _prefix(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")
    return (slug[:40].rstrip("-") or "test") + "-"


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace on ``control_plane``, named after the test."""
    name = control_plane.create_namespace(prefix=_prefix(request.node.name))
    yield name
    control_plane.delete_namespace(name)


@pytest.fixture
def full_namespace(
    full_control_plane: ControlPlane, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace on ``full_control_plane``, named after the test."""
    name = full_control_plane.create_namespace(prefix=_prefix(request.node.name))
    yield name
    full_control_plane.delete_namespace(name)


@pytest.fixture
def control_plane_factory() -> Iterator[ControlPlaneFactory]:
    """Make private control planes (for destructive tests); all are stopped after the test."""
    made: list[ControlPlane] = []

    def make(
        *, full: bool = False, apiserver_args: Mapping[str, str] | None = None
    ) -> ControlPlane:
        cp = _new(full, apiserver_args=apiserver_args)
        made.append(cp)
        return cp.start()

    try:
        yield make
    finally:
        for cp in reversed(made):
            cp.stop()


# -- markers and the no-silent-skip rule -------------------------------------------------------


def _under_integration(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(a == "tests" and b == "integration" for a, b in itertools.pairwise(parts))


class _RequireIntegration:
    """Under ``AIMCTL_REQUIRE_INTEGRATION=1``: fail a session that skipped an integration test
    or collected nothing."""

    def __init__(self, config: pytest.Config) -> None:
        self._root = config.rootpath
        self._skipped: list[str] = []
        self._session: pytest.Session | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._session = session

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A module skipped at import time under tests/integration hides its tests: count it.
        if report.skipped and _under_integration(Path(report.fspath).resolve(), self._root):
            self._skipped.append(report.nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and "integration" in report.keywords and not hasattr(report, "wasxfail"):
            self._skipped.append(report.nodeid)

    def problems(self) -> list[str]:
        found = []
        if self._session is not None and self._session.testscollected == 0:
            found.append("pytest collected no tests")
        if self._skipped:
            names = sorted(set(self._skipped))
            found.append(f"{len(names)} integration test(s) skipped: " + ", ".join(names[:10]))
        return found

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.problems() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for problem in self.problems():
            terminalreporter.write_line(f"{REQUIRE_ENV}=1: {problem}", red=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    if _required():
        config.pluginmanager.register(_RequireIntegration(config), "aimctl-require-integration")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        full = bool(fixtures & _FULL_FIXTURES)
        if (
            full
            or fixtures & _INTEGRATION_FIXTURES
            or _under_integration(item.path, config.rootpath)
        ):
            item.add_marker(pytest.mark.integration)
        if full:
            item.add_marker(pytest.mark.full)
