"""One exit-code enum for every command: ``aimctl run`` exits with it, ``aimctl dev`` reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from aimctl.cli import ExitCode, cli


def test_codes_are_the_documented_ones() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "ERROR": 1,
        "USAGE": 2,
        "UNREACHABLE": 3,
        "NO_CRDS": 4,
        "SYNC": 5,
        "LEADERSHIP": 6,
    }
    assert all(c.meaning for c in ExitCode)


def test_describe_names_known_codes_and_signals() -> None:
    assert ExitCode.describe(4) == "4 (AIM CRDs not installed)"
    assert ExitCode.describe(5) == "5 (caches did not sync (usually RBAC))"
    assert ExitCode.describe(-9) == "-9 (killed by signal 9)"
    assert ExitCode.describe(42) == "42"
    assert ExitCode.describe(None) == "no exit code"


def test_click_errors_use_the_same_numbers(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "--kvcache-concurrency", "0"]).exit_code == ExitCode.USAGE
    missing = runner.invoke(cli, ["dev", "up", "--manifests", str(tmp_path)])
    assert missing.exit_code == ExitCode.ERROR
    assert "no samples in" in missing.output


def test_run_with_unreadable_credentials_exits_unreachable(tmp_path: Path) -> None:
    argv = ["run", "--kubeconfig", str(tmp_path / "missing"), "--metrics-bind-address", "0"]
    run = subprocess.run(
        [sys.executable, "-m", "aimctl", *argv, "--health-probe-bind-address", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == ExitCode.UNREACHABLE, run.stderr
    assert "cannot load cluster credentials" in run.stderr


def test_a_missing_extra_is_named_not_a_traceback() -> None:
    # cryptography comes with the `envtest` extra; `None` in sys.modules makes it unimportable.
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from aimctl.cli import main\nsys.argv = ['aimctl', 'cluster', 'up']\nmain()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == ExitCode.ERROR
    assert "Traceback" not in run.stderr
    assert "aimctl cluster needs the Python package 'cryptography'" in run.stderr
    assert "pip install 'aimctl[envtest]'" in run.stderr
