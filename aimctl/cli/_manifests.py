"""``aimctl manifests``: the shipped manifests, and the CRDs generated from the models.

The manifests (CRDs, the operator's deployment, RBAC, the guide's samples) ship in the wheel as
package data: ``aimctl/cli/manifests`` is a symbolic link to the repository's ``manifests/``,
the one source of truth (kustomize and ``make deploy`` use it), and the wheel build copies the
files it points at. So an installed aimctl can print the CRDs or write the whole tree without a
checkout. The CRD files themselves are generated from the pydantic models (``--output``), and
``--check`` (``make check-manifests``, a unit test) keeps the committed ones equal to a fresh
generation.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import click

__all__ = ["SHIPPED", "manifests", "planned_files", "shipped_crds", "stale_differences"]

SHIPPED = Path(__file__).resolve().parent / "manifests"
"""The shipped manifests directory (``crds/``, ``default/``, ``samples/``, ...)."""


def shipped_dir() -> Path:
    """:data:`SHIPPED`, or a clear error when this install lacks it (a broken build)."""
    if not (SHIPPED / "crds" / "kustomization.yaml").is_file():
        raise click.ClickException(
            f"the shipped manifests are missing from {SHIPPED}; reinstall aimctl"
        )
    return SHIPPED


def shipped_crds() -> str:
    """The shipped CRDs as one YAML stream, in kustomization order."""
    import yaml

    crds = shipped_dir() / "crds"
    names = yaml.safe_load((crds / "kustomization.yaml").read_text())["resources"]
    return "---\n".join((crds / name).read_text() for name in names)


def planned_files() -> dict[str, str]:
    """File name -> content of every generated CRD."""
    from aimctl.api._crd import crd_filename, generate_crds, render_crd

    return {crd_filename(crd): render_crd(crd) for crd in generate_crds()}


def _ours(directory: Path, planned: dict[str, str]) -> list[Path]:
    """Files in ``directory`` this command writes: same group prefix as a planned file."""
    prefixes = {name.split("_", 1)[0] + "_" for name in planned}
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.glob("*.yaml") if any(p.name.startswith(x) for x in prefixes)
    )


def stale_differences(directory: Path) -> list[str]:
    """Unified diffs (one per file) between ``directory`` and a fresh generation; empty if none."""
    planned = planned_files()
    diffs: list[str] = []
    for name, content in planned.items():
        path = directory / name
        current = path.read_text() if path.exists() else ""
        if current != content:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        content.splitlines(keepends=True),
                        fromfile=f"{path} (committed)" if current else "/dev/null",
                        tofile=f"{path} (generated)",
                    )
                )
            )
    for path in _ours(directory, planned):
        if path.name not in planned:
            diffs.append(f"{path}: no model generates this file any more; delete it\n")
    return diffs


@click.command()
@click.option(
    "--write",
    "write_to",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the shipped tree (crds/, default/, manager/, rbac/, prometheus/, samples/) into "
    "this directory; then: kubectl apply --server-side -k DIR/default",
)
@click.option(
    "--path", "show_path", is_flag=True, help="Print the directory of the shipped manifests."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Generate the CRD files (<group>_<plural>.yaml) from the models into this directory "
    "(the repository's manifests/crds: make manifests).",
)
@click.option(
    "--check",
    is_flag=True,
    help="With --output: write nothing; exit 1 with a diff when the files differ from a fresh "
    "generation.",
)
def manifests(write_to: Path | None, show_path: bool, output: Path | None, check: bool) -> None:
    """Print or write the shipped manifests: CRDs, deployment, samples.

    Without options, print the AIM CRDs as one YAML stream:

        aimctl manifests | kubectl apply --server-side -f -
    """
    if sum((write_to is not None, show_path, output is not None)) > 1:
        raise click.UsageError("give one of --write, --path and --output")
    if check and output is None:
        raise click.UsageError("--check needs --output (the CRD directory to compare)")
    if show_path:
        click.echo(shipped_dir())
    elif write_to is not None:
        _write_tree(write_to)
    elif output is not None:
        _generate(output, check)
    else:
        click.echo(shipped_crds(), nl=False)


def _write_tree(directory: Path) -> None:
    shutil.copytree(shipped_dir(), directory, dirs_exist_ok=True)
    click.echo(f"wrote the manifests to {directory}", err=True)
    click.echo(f"  kubectl apply --server-side -k {directory / 'default'}", err=True)


def _generate(output: Path, check: bool) -> None:
    if check:
        diffs = stale_differences(output)
        if diffs:
            click.echo("".join(diffs), nl=False)
            raise click.ClickException(
                f"{len(diffs)} CRD file(s) in {output} are out of date; run `aimctl manifests "
                f"--output {output}` and commit the result"
            )
        click.echo(f"CRDs in {output} are up to date")
        return
    planned = planned_files()
    output.mkdir(parents=True, exist_ok=True)
    for path in _ours(output, planned):
        if path.name not in planned:
            path.unlink()
            click.echo(f"removed {path}")
    for name, content in planned.items():
        path = output / name
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            click.echo(f"wrote {path}")
        else:
            click.echo(f"unchanged {path}")
