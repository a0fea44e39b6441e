"""An image of the operator from this machine's Python, for pods on the real node.

There is no registry and no Docker engine here, so the image the Dockerfile describes cannot be
built. This one runs the same code the same way (``python -m aimctl run``, uid 65532, a
read-only root): the running interpreter's installation (the shared ``libpython`` and the
standard library, at their host paths so the interpreter's run path still finds them), the
distributions aimctl requires at run time (read from its installed metadata) and aimctl itself
(from its source directory, which may be an editable checkout), plus every shared library
``ldd`` lists for the interpreter and the extension modules.

Left out: ``__pycache__`` (the archive's mtimes are 0, so no bytecode would validate; the
interpreter compiles in memory instead), the standard library's tests and GUI modules, and
anything only development or the envtest extra needs.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from aimctl.envtest._images import (
    BUILDER_VERSION,
    Image,
    ImageFile,
    _accounts,
    _shared_libraries,
    _Spec,
    docker_archive,
)

__all__ = ["OPERATOR_IMAGE", "operator_image"]

OPERATOR_IMAGE = "aimctl.local/aimctl:dev"
_UID = 65532
# Standard-library parts no operator imports, and the bulk of the installation's size.
_SKIP_STDLIB = frozenset(
    {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages"}
    # the static library and its build files (LIBPL), 45 MB
    | {Path(str(sysconfig.get_config_var("LIBPL") or "config")).name}
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _runtime_distributions(root: str = "aimctl") -> list[metadata.Distribution]:
    """``root``'s run-time requirements, transitively (no extras), as installed here."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            marker = req.partition(";")[2].strip()
            if marker and not _marker_holds(marker):
                continue
            match = _NAME.match(req)
            if match:
                todo.append(match.group(0))
    return [d for n, d in seen.items() if n != root]


def _marker_holds(marker: str) -> bool:
    # Environment markers of the few run-time requirements that have them (python_version,
    # platform); evaluated with packaging when it is there, else kept (harmless: one more
    # distribution in the image).
    try:
        from packaging.markers import Marker
    except ImportError:  # pragma: no cover - packaging comes with pip and setuptools
        return True
    return bool(Marker(marker).evaluate())


def _walk(top: Path, skip: frozenset[str] = frozenset()) -> Iterator[Path]:
    for path in sorted(top.rglob("*")):
        parts = path.relative_to(top).parts
        if "__pycache__" in parts or (parts and parts[0] in skip):
            continue
        if path.is_file():
            yield path


def _files() -> list[ImageFile]:
    prefix = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = prefix / "lib" / version
    site = stdlib / "site-packages"
    executable = prefix / "bin" / version
    files: dict[str, ImageFile] = {}
    sources: dict[str, Path] = {}

    def add(path: str, source: Path, mode: int | None = None) -> None:
        sources[path] = source.resolve()
        files[path] = ImageFile(path, mode=mode, source=sources[path])

    add(str(executable), executable, 0o755)
    # The interpreter's run path names the shared libpython at its host path.
    for shared in (prefix / "lib").glob("libpython*.so.*"):
        add(str(shared), shared, 0o755)
    for path in _walk(stdlib, _SKIP_STDLIB):
        if not path.name.startswith("_tkinter"):
            add(str(path), path, 0o755 if path.suffix == ".so" else 0o644)
    for dist in _runtime_distributions():
        base = Path(str(dist.locate_file("")))
        for entry in dist.files or []:
            source = base / entry
            if "__pycache__" in entry.parts or not source.is_file():
                continue
            add(str(site / entry), source, 0o755 if source.suffix == ".so" else 0o644)
    import aimctl

    package = Path(aimctl.__file__).parent
    for path in _walk(package):
        add(str(site / "aimctl" / path.relative_to(package)), path, 0o644)
    # The interpreter and every extension module: the libraries they link (libssl, libffi, ...).
    linked = [name for name in sources if name == str(executable) or name.endswith(".so")]
    libraries = {lib for name in linked for lib in _shared_libraries(sources[name])}
    for lib in sorted(libraries):
        if lib not in files:
            add(lib, Path(lib), 0o755)
    return [
        *files.values(),
        *_accounts(("root", 0, "/root"), ("nonroot", _UID, "/home/nonroot")),
        ImageFile("/tmp", mode=0o1777, directory=True),
    ]


def operator_image(cache_dir: Path, reference: str = OPERATOR_IMAGE) -> Image:
    """Build (or find in ``cache_dir``, keyed by the digest of every input) the operator image.

    Raises:
        importlib.metadata.PackageNotFoundError: aimctl or a requirement is not installed.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = str(Path(sys.base_prefix) / "bin" / version)
    spec = _Spec(
        "aimctl",
        (reference,),
        tuple(_files()),
        {
            "Entrypoint": [python, "-m", "aimctl", "run"],
            "Env": [
                "PATH=/usr/bin:/bin",
                "PYTHONUNBUFFERED=1",
                "PYTHONDONTWRITEBYTECODE=1",
                "AIMCTL_LOG_FORMAT=json",
            ],
            "User": f"{_UID}:{_UID}",
            "WorkingDir": "/tmp",
            "Labels": {"aimctl.builder": BUILDER_VERSION},
        },
    )
    archive = cache_dir / f"{spec.name}-{spec.key()}.tar"
    if not archive.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        docker_archive(archive, spec.references, spec.files, spec.config)
    return Image(spec.references, archive)
