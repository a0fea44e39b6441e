"""Log lines as an operator's log pipeline sees them: each JSON line holds exactly structlog's keys
plus the ones we bind, whether it came from structlog or from a stdlib logger, and ``aimctl run``
reports a fatal error once, as JSON, with its root cause.

Each case runs in a fresh interpreter: logging configuration is process-global.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# structlog's keys (event, level from add_log_level, logger from add_logger_name, timestamp from
# TimeStamper, exception from the exception renderer) and ours (controller-runtime's).
STRUCTLOG_KEYS = frozenset({"event", "level", "logger", "timestamp"})
RECONCILE_KEYS = frozenset({"controller", "namespace", "name", "reconcileID"})

SCRIPT = """
import logging, sys
import structlog
from aimctl.log import configure_logging

configure_logging("json", sys.argv[1])
log = structlog.get_logger("aimctl.controller")
structlog.contextvars.bind_contextvars(
    controller="aimkvcache", namespace="ns", name="cache", reconcileID="r-1"
)
log.info("Reconciling", attempt=1)
logging.getLogger("aimctl.somewhere").warning("stdlib inside a reconcile %s", "x")
structlog.contextvars.clear_contextvars()
log.debug("debug from aimctl")
logging.getLogger("aiohttp.client").info("third-party info")
logging.getLogger("aiohttp.client").warning("third-party %s", "warning")
secret = "s3cr3t-token"
try:
    raise ValueError("bad")
except ValueError:
    logging.getLogger("asyncio").exception("Task exception was never retrieved")
    log.exception("Reconciler error")
"""


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMCTL_", "KUBERNETES_"))}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=cwd,
    )


def _json_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n--- stderr ---\n{stderr}") from None
    return parsed


def _by_event(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["event"]: line for line in lines}


def test_json_lines_hold_exactly_structlog_keys_plus_ours() -> None:
    result = _run("-c", SCRIPT, "info")
    assert result.returncode == 0, result.stderr
    lines = _by_event(_json_lines(result.stderr))

    reconciling = lines["Reconciling"]
    assert set(reconciling) == STRUCTLOG_KEYS | RECONCILE_KEYS | {"attempt"}
    assert reconciling["logger"] == "aimctl.controller"
    assert reconciling["level"] == "info"

    # A stdlib record inside a reconcile: same shape, the reconcile's keys, its logger's name.
    inside = lines["stdlib inside a reconcile x"]
    assert set(inside) == STRUCTLOG_KEYS | RECONCILE_KEYS
    assert inside["logger"] == "aimctl.somewhere"
    assert (inside["controller"], inside["reconcileID"]) == ("aimkvcache", "r-1")

    foreign = lines["third-party warning"]
    assert set(foreign) == STRUCTLOG_KEYS
    assert (foreign["logger"], foreign["level"]) == ("aiohttp.client", "warning")

    for event, logger in [
        ("Task exception was never retrieved", "asyncio"),
        ("Reconciler error", "aimctl.controller"),
    ]:
        line = lines[event]
        assert set(line) == STRUCTLOG_KEYS | {"exception"}, line
        assert (line["logger"], line["level"]) == (logger, "error")
        (exc,) = line["exception"]
        assert (exc["exc_type"], exc["exc_value"]) == ("ValueError", "bad")
        # Frames without their locals: a local may hold a token.
        assert all("locals" not in frame for frame in exc["frames"])
    assert "s3cr3t-token" not in result.stderr


def test_levels_our_lines_at_the_level_third_party_lines_at_warning_or_above() -> None:
    info = _by_event(_json_lines(_run("-c", SCRIPT, "info").stderr))
    assert "debug from aimctl" not in info
    assert "third-party info" not in info
    debug = _by_event(_json_lines(_run("-c", SCRIPT, "debug").stderr))
    assert debug["debug from aimctl"]["level"] == "debug"
    assert "third-party info" not in debug  # aiohttp's chatter is not the operator's story


def test_console_lines_name_their_logger() -> None:
    script = SCRIPT.replace('configure_logging("json"', 'configure_logging("console"')
    result = _run("-c", script, "info")
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if "third-party warning" in ln]
    assert "[aiohttp.client]" in line
    assert "_record" not in result.stderr
    assert "_from_structlog" not in result.stderr


def _run_without_kubeconfig(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    missing = tmp_path / "no-such-dir" / "kubeconfig"
    return _run(
        "-m",
        "aimctl",
        "run",
        "--log-format",
        "json",
        "--kubeconfig",
        str(missing),
        "--metrics-bind-address",
        "0",
        "--health-probe-bind-address",
        "0",
        cwd=tmp_path,
    )


def test_aimctl_run_reports_a_fatal_error_once_as_a_json_line(tmp_path: Path) -> None:
    result = _run_without_kubeconfig(tmp_path)
    assert result.returncode == 3, result.stderr
    lines = _json_lines(result.stderr)  # every stderr line, the fatal one included, is JSON
    for line in lines:
        assert set(line) == STRUCTLOG_KEYS, line
    fatal = [line for line in lines if line["level"] == "error"]
    assert len(fatal) == 1, result.stderr
    assert fatal[0]["logger"].startswith("aimctl")


def test_aimctl_run_names_the_missing_kubeconfig(tmp_path: Path) -> None:
    result = _run_without_kubeconfig(tmp_path)
    assert result.returncode == 3, result.stderr
    missing = str(tmp_path / "no-such-dir" / "kubeconfig")
    (fatal,) = [line for line in _json_lines(result.stderr) if line["level"] == "error"]
    assert missing in fatal["event"], fatal
    assert "current-context" not in fatal["event"], fatal
