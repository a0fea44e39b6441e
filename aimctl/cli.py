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
    from aimctl._kvcache_cli import kvcache

    cli.add_command(kvcache)
    cli.add_command(__import__("aimctl.envtest._cli", fromlist=["cluster"]).cluster)
    cli.add_command(__import__("aimctl.api._cli", fromlist=["manifests"]).manifests)


_register()
