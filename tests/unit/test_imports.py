"""Import cost: the package root, the workqueue and ``aimctl --help`` stay off the HTTP stack.

Each check runs in a fresh interpreter, since this one has imported everything already.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import click
import pytest

from aimctl.cli import COMMANDS, cli

HEAVY = ("aiohttp", "kubernetes_asyncio")


def modules_after(code: str) -> set[str]:
    """The top-level and aimctl modules imported by running ``code`` in a new interpreter."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("module", ["aimctl", "aimctl.workqueue"])
def test_importing_the_root_or_the_workqueue_pulls_in_no_http_client(module: str) -> None:
    loaded = modules_after(f"import {module}")
    assert not loaded & set(HEAVY), f"import {module} loaded {loaded & set(HEAVY)}"


def test_root_names_resolve_on_first_use() -> None:
    loaded = modules_after("import aimctl\nassert aimctl.Manager.__name__ == 'Manager'")
    assert "aimctl.manager" in loaded
    assert "aiohttp" in loaded


@pytest.mark.parametrize(
    ("argv", "absent"),
    [
        (["--help"], ["aimctl.cli._run", "aimctl.envtest", "aimctl.cli._dev", "aimctl.api"]),
        (["run", "--help"], [*HEAVY, "aimctl.manager", "aimctl.envtest", "aimctl.cli._dev"]),
    ],
)
def test_cli_help_imports_only_what_it_shows(argv: list[str], absent: list[str]) -> None:
    loaded = modules_after(
        "from click.testing import CliRunner\nfrom aimctl.cli import cli\n"
        f"result = CliRunner().invoke(cli, {argv!r})\nassert result.exit_code == 0, result.output"
    )
    assert not loaded & set(absent), f"aimctl {' '.join(argv)} loaded {loaded & set(absent)}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_kept_for_each_lazy_command_is_its_own(name: str) -> None:
    module, _, attr = COMMANDS[name][0].partition(":")
    command: click.Command = getattr(importlib.import_module(module), attr)
    kept = click.Command(name, help=COMMANDS[name][1])
    assert kept.get_short_help_str(limit=200) == command.get_short_help_str(limit=200)
    ctx = click.Context(cli)
    assert cli.get_command(ctx, name) is command
