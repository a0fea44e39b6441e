"""Prints every reliability test's figures in pytest's terminal summary (they are the point of
the suite, and the operator's logs would bury them in ``-s`` output)."""

from __future__ import annotations

import json

import pytest

from .reliability_kit import REPORTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("reliability figures")
    for record in REPORTS:
        figures = {k: v for k, v in record.items() if k not in ("test", "date", "machine")}
        terminalreporter.write_line(f"{record['test']}: {json.dumps(figures, default=str)}")
    terminalreporter.write_line(f"machine: {REPORTS[-1]['machine']}; date: {REPORTS[-1]['date']}")
