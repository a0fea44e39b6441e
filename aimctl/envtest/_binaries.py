"""Finding the control-plane binaries.

Owns the lookup order, nothing else (the build lives in ``hack/control-plane.sh``):

1. ``TEST_ASSET_<NAME>`` for one binary (``TEST_ASSET_KUBE_APISERVER``, ``TEST_ASSET_ETCD``, ...),
   as controller-runtime's envtest does;
2. ``$KUBEBUILDER_ASSETS/<name>`` when ``KUBEBUILDER_ASSETS`` is set (never silently ignored);
3. the build script's cache: ``$AIMCTL_CACHE_DIR`` (default ``~/.cache/aimctl``) /
   ``k8s-<v>-etcd-<v>-kwok-<v>``, with the pins of :mod:`aimctl.envtest._versions` (the same
   ``K8S_VERSION`` / ``ETCD_VERSION`` / ``KWOK_VERSION`` overrides as the script).

A directory holding ``SHA256SUMS`` (the build script writes one at build, or on the first use of
an older cache) has the binaries it resolves checked against it, once per process and file
version: a changed binary is refused (:class:`BinariesTampered`), as the script refuses it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aimctl.envtest import _versions

__all__ = [
    "ENVTEST_BINARIES",
    "FULL_BINARIES",
    "SUMS_FILE",
    "Assets",
    "BinariesNotFound",
    "BinariesTampered",
    "default_cache_dir",
    "find_assets",
    "verify_checksums",
]

ENVTEST_BINARIES = ("etcd", "kube-apiserver")
FULL_BINARIES = (*ENVTEST_BINARIES, "kube-controller-manager", "kube-scheduler", "kwok")
STAGES_DIR = "kwok-stages"
SUMS_FILE = "SHA256SUMS"


class BinariesNotFound(RuntimeError):
    """The control-plane binaries are missing; the message says what to run."""


class BinariesTampered(BinariesNotFound):
    """A binary differs from (or is missing in) its directory's ``SHA256SUMS``."""


# (path, inode, size, mtime) -> sha256 hex: a test session starts many control planes.
_hashed: dict[tuple[str, int, int, int], str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _hashed:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        _hashed[key] = digest.hexdigest()
    return _hashed[key]


def verify_checksums(directory: Path, names: Iterable[str]) -> None:
    """Check ``names`` in ``directory`` against ``directory/SHA256SUMS``, when it exists.

    Raises:
        BinariesTampered: a binary is not listed there, or its content changed.
    """
    sums = directory / SUMS_FILE
    try:
        lines = sums.read_text().splitlines()
    except FileNotFoundError:
        return
    recorded: dict[str, str] = {}
    for line in lines:  # `sha256sum` text format: "<hex>  <name>"
        digest, sep, name = line.partition("  ")
        if sep:
            recorded[name] = digest
    for name in names:
        if name not in recorded:
            raise BinariesTampered(f"{directory / name} is not recorded in {sums}")
        if _sha256(directory / name) != recorded[name]:
            raise BinariesTampered(
                f"{directory / name} does not match its checksum in {sums}; refusing to use it. "
                f"If you did not change it, something else did: delete {directory} and run "
                "`make control-plane` to rebuild"
            )


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``hack/control-plane.sh`` puts the binaries for the pinned versions."""
    env = os.environ if env is None else env
    root = env.get("AIMCTL_CACHE_DIR") or str(Path.home() / ".cache" / "aimctl")
    name = _versions.asset_dir_name(
        env.get("K8S_VERSION") or _versions.K8S_VERSION,
        env.get("ETCD_VERSION") or _versions.ETCD_VERSION,
        env.get("KWOK_VERSION") or _versions.KWOK_VERSION,
    )
    return Path(root).expanduser() / name


def _env_name(binary: str) -> str:
    return "TEST_ASSET_" + binary.upper().replace("-", "_")


@dataclass(frozen=True)
class Assets:
    """A resolved asset directory plus per-binary overrides.

    Guarantees: every binary named in the ``find_assets`` call that produced this object exists
    and is executable.
    """

    directory: Path
    overrides: Mapping[str, Path]

    def path(self, binary: str) -> Path:
        """The path of one binary (``etcd``, ``kube-apiserver``, ``kubectl``, ...)."""
        return self.overrides.get(binary, self.directory / binary)

    @property
    def kwok_stages(self) -> Path:
        """kwok's ``kustomize/stage`` tree, copied next to the binaries by the build script."""
        return self.directory / STAGES_DIR


def _missing(assets: Assets, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not os.access(assets.path(n), os.X_OK)]


def find_assets(*, full: bool = False, env: Mapping[str, str] | None = None) -> Assets:
    """Resolve the binaries for envtest mode (etcd, kube-apiserver) or full mode.

    Raises:
        BinariesNotFound: a needed binary (or, in full mode, the kwok stage tree) is missing.
        BinariesTampered: one differs from the directory's ``SHA256SUMS``.
    """
    env = os.environ if env is None else env
    names = FULL_BINARIES if full else ENVTEST_BINARIES
    overrides = {
        n: Path(env[_env_name(n)]) for n in (*FULL_BINARIES, "kubectl") if env.get(_env_name(n))
    }
    explicit = env.get("KUBEBUILDER_ASSETS")
    directory = Path(explicit) if explicit else default_cache_dir(env)
    assets = Assets(directory=directory, overrides=overrides)
    missing = _missing(assets, names)
    if full and not assets.kwok_stages.is_dir():
        missing.append(STAGES_DIR + "/")
    if not missing:
        verify_checksums(directory, [n for n in names if n not in overrides])
        return assets
    source = f"KUBEBUILDER_ASSETS={explicit}" if explicit else f"the cache {directory}"
    hint = (
        "run `make control-plane` (hack/control-plane.sh builds them from the Go module proxy)"
        if not explicit or not full
        else "full mode needs the binaries `make control-plane` builds; unset KUBEBUILDER_ASSETS "
        "or point it at that cache directory"
    )
    raise BinariesNotFound(
        f"control-plane binaries not found in {source}: missing {', '.join(missing)}; {hint}"
    )
