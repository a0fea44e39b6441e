"""Shared test configuration. Control-plane fixtures come from the aimctl.envtest pytest plugin,
loaded here on purpose: installing aimctl does not load it anywhere (no pytest11 entry point).

``--slow`` runs the long variants (tests marked ``slow``, e.g. the 2000-object reliability runs).
Without it they are *deselected*, not skipped: under ``AIMCTL_REQUIRE_INTEGRATION=1`` the envtest
plugin fails a session in which an integration test was skipped.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["aimctl.envtest.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        default=False,
        help="also run the long variants (tests marked slow); they are deselected otherwise",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    keep: list[pytest.Item] = []
    slow: list[pytest.Item] = []
    for item in items:
        (slow if item.get_closest_marker("slow") is not None else keep).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = keep
