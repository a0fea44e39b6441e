"""``aimctl manifests``: write the CRDs generated from the models, or check the committed ones."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from aimctl.api._crd import crd_filename, generate_crds, render_crd

__all__ = ["manifests", "planned_files", "stale_differences"]


def planned_files() -> dict[str, str]:
    """File name -> content of every generated CRD."""
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
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("manifests/crds"),
    show_default=True,
    help="Directory of the CRD files (<group>_<plural>.yaml).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 with a diff when the files differ from a fresh generation.",
)
def manifests(output: Path, check: bool) -> None:
    """Generate the AIM CustomResourceDefinitions from the pydantic models."""
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
