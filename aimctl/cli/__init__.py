"""The ``aimctl`` command: one module per subcommand (run, cluster, dev, manifests, kvcache).

Subcommands are imported when they run, not when the command starts: ``aimctl run`` loads the
operator and its client, never the control-plane or playground code, and ``aimctl --help``
loads none of them (it prints the one-line help kept in ``COMMANDS``; a unit test keeps those
lines equal to the commands' own). Exit codes are :class:`ExitCode`, shared by all commands.
"""

from __future__ import annotations

import importlib

import click

from aimctl import __version__
from aimctl.cli._exit import ExitCode as ExitCode

__all__ = ["COMMANDS", "ExitCode", "LazyGroup", "cli", "main"]

# name -> ("module:attribute", one-line help shown by ``aimctl --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "cluster": (
        "aimctl.cli._cluster:cluster",
        "A local control plane (etcd + kube-apiserver, optionally the full set) on 127.0.0.1.",
    ),
    "dev": (
        "aimctl.cli._dev:dev",
        "A local playground: full cluster, CRDs, the operator and the guide's samples.",
    ),
    "kvcache": ("aimctl.cli._kvcache:kvcache", "KV-cache helpers."),
    "manifests": (
        "aimctl.cli._manifests:manifests",
        "Print or write the shipped manifests: CRDs, deployment, samples.",
    ),
    "run": (
        "aimctl.cli._run:run",
        "Run the AIM KV-cache operator (the AIMKVCache and AIMService controllers).",
    ),
}


# The optional dependencies (pyproject extras) a command needs beyond aimctl's own.
EXTRAS: dict[str, str] = {"cluster": "envtest", "dev": "envtest"}


class LazyGroup(click.Group):
    """A group whose ``COMMANDS`` are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attr = COMMANDS[cmd_name][0].partition(":")
            try:
                loaded = importlib.import_module(module)
            except ModuleNotFoundError as e:
                if e.name is None or e.name.split(".")[0] == "aimctl":
                    raise
                extra = EXTRAS.get(cmd_name)
                hint = f": pip install 'aimctl[{extra}]'" if extra else ""
                raise click.ClickException(
                    f"aimctl {cmd_name} needs the Python package {e.name!r}, which is not "
                    f"installed{hint}"
                ) from e
            self.add_command(getattr(loaded, attr), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own version asks every command for its help, which would import them all.
        rows = [
            (name, click.Command(name, help=COMMANDS[name][1]))
            if name not in self.commands
            else (name, self.commands[name])
            for name in self.list_commands(ctx)
        ]
        rows = [(name, cmd) for name, cmd in rows if not cmd.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aimctl")
def cli() -> None:
    """aimctl: the AIM KV-cache operator and the controller toolkit it is built on."""


def main() -> None:
    """The console script ``aimctl`` (and ``python -m aimctl``)."""
    cli()
