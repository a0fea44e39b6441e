"""``aimctl run``'s metrics flags: secure on :8443 by default, the certificate directory checked
before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from aimctl.cli import ExitCode, cli


def test_help_shows_the_secure_defaults() -> None:
    out = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    assert "--metrics-bind-address TEXT" in out
    assert "[default: :8443]" in out
    assert "--metrics-secure / --no-metrics-secure" in out
    assert "--metrics-cert-dir DIRECTORY" in out


def test_a_cert_dir_without_the_pair_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("x")
    result = CliRunner().invoke(cli, ["run", "--metrics-cert-dir", str(tmp_path)])
    assert result.exit_code == ExitCode.USAGE
    assert "no tls.key" in result.output


def test_a_cert_dir_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "--metrics-cert-dir", str(tmp_path / "nope")])
    assert result.exit_code == ExitCode.USAGE
    assert "does not exist" in result.output


def test_a_cert_dir_with_plain_http_is_a_usage_error(tmp_path: Path) -> None:
    env = {"AIMCTL_METRICS_SECURE": "false", "AIMCTL_METRICS_CERT_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["run"], env=env)
    assert result.exit_code == ExitCode.USAGE
    assert "--metrics-cert-dir needs --metrics-secure" in result.output


def test_a_self_signed_certificate_without_cryptography_is_a_usage_error(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "from aimctl.cli import main\n"
        f"sys.argv = ['aimctl', 'run', '--kubeconfig', {str(tmp_path / 'kc')!r}]\nmain()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == ExitCode.USAGE, run.stderr
    assert "needs the 'cryptography' package" in run.stderr
    assert "Traceback" not in run.stderr
