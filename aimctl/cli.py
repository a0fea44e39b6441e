"""The ``aimctl`` command. Subcommand groups live next to the code they drive and are added here."""

from __future__ import annotations

import click

from aimctl import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aimctl")
def cli() -> None:
    """aimctl: the AIM KV-cache operator and the controller toolkit it is built on."""


def main() -> None:
    cli()


def _register() -> None:
    # Imported here, not at the top, so the group exists before the subcommands import it.
    from aimctl._kvcache_cli import kvcache
    from aimctl._run_cli import run
    from aimctl.api._cli import manifests
    from aimctl.envtest._cli import cluster

    for command in (run, cluster, manifests, kvcache):
        cli.add_command(command)
    cli.add_command(__import__("aimctl._dev_cli", fromlist=["dev"]).dev)


_register()
