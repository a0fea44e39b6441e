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

The real node's binaries (kubelet, kube-proxy, CoreDNS, local-path-provisioner, pause; built by
``hack/real-node.sh``) are found the same way by :func:`find_node_assets`: ``$AIMCTL_NODE_ASSETS``
when set, else ``$AIMCTL_CACHE_DIR`` / ``node-k8s-<v>-coredns-<v>-local-path-<v>``.
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
    "NODE_BINARIES",
    "SUMS_FILE",
    "Assets",
    "BinariesNotFound",
    "BinariesTampered",
    "NodeAssets",
    "default_cache_dir",
    "find_assets",
    "find_node_assets",
    "node_cache_dir",
    "verify_checksums",
]

ENVTEST_BINARIES = ("etcd", "kube-apiserver")
FULL_BINARIES = (*ENVTEST_BINARIES, "kube-controller-manager", "kube-scheduler", "kwok")
NODE_BINARIES = ("kubelet", "kube-proxy", "coredns", "local-path-provisioner", "pause")
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


def verify_checksums(
    directory: Path, names: Iterable[str], *, rebuild: str = "make control-plane"
) -> None:
    """Check ``names`` in ``directory`` against ``directory/SHA256SUMS``, when it exists.

    ``rebuild`` is the command the refusal tells the user to run after deleting ``directory``.

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
                f"`{rebuild}` to rebuild"
            )


def _cache_root(env: Mapping[str, str]) -> Path:
    return Path(env.get("AIMCTL_CACHE_DIR") or str(Path.home() / ".cache" / "aimctl")).expanduser()


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``hack/control-plane.sh`` puts the binaries for the pinned versions."""
    env = os.environ if env is None else env
    name = _versions.asset_dir_name(
        env.get("K8S_VERSION") or _versions.K8S_VERSION,
        env.get("ETCD_VERSION") or _versions.ETCD_VERSION,
        env.get("KWOK_VERSION") or _versions.KWOK_VERSION,
    )
    return _cache_root(env) / name


def node_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``hack/real-node.sh`` puts the real node's binaries for the pinned versions (the
    same ``AIMCTL_CACHE_DIR`` and ``K8S_VERSION`` / ``COREDNS_VERSION`` / ``LOCAL_PATH_VERSION``
    overrides as the script)."""
    env = os.environ if env is None else env
    name = _versions.node_dir_name(
        env.get("K8S_VERSION") or _versions.K8S_VERSION,
        env.get("COREDNS_VERSION") or _versions.COREDNS_VERSION,
        env.get("LOCAL_PATH_VERSION") or _versions.LOCAL_PATH_VERSION,
    )
    return _cache_root(env) / name


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


@dataclass(frozen=True)
class NodeAssets:
    """The real node's binary directory.

    Guarantees: every name in :data:`NODE_BINARIES` exists there, is executable and, when the
    directory has a ``SHA256SUMS``, matches it (checked when ``find_node_assets`` resolved it).
    """

    directory: Path

    def path(self, binary: str) -> Path:
        """The path of one binary (``kubelet``, ``kube-proxy``, ``coredns``, ...)."""
        return self.directory / binary


def find_node_assets(*, env: Mapping[str, str] | None = None) -> NodeAssets:
    """Resolve the real node's binaries: ``$AIMCTL_NODE_ASSETS``, else :func:`node_cache_dir`.

    Raises:
        BinariesNotFound: a binary is missing; the message says to run ``make real-node``.
        BinariesTampered: one differs from the directory's ``SHA256SUMS``.
    """
    env = os.environ if env is None else env
    explicit = env.get("AIMCTL_NODE_ASSETS")
    directory = Path(explicit) if explicit else node_cache_dir(env)
    missing = [n for n in NODE_BINARIES if not os.access(directory / n, os.X_OK)]
    if not missing:
        verify_checksums(directory, NODE_BINARIES, rebuild="make real-node")
        return NodeAssets(directory=directory)
    # An explicit directory is never silently replaced by the cache.
    source = f"AIMCTL_NODE_ASSETS={explicit}" if explicit else f"the cache {directory}"
    hint = (
        "point it at the directory `bash hack/real-node.sh` prints, or unset it"
        if explicit
        else "run `make real-node` (bash hack/real-node.sh installs the Debian packages and "
        "builds them from their Go modules; needs root and Linux)"
    )
    raise BinariesNotFound(
        f"real-node binaries not found in {source}: missing {', '.join(missing)}; {hint}"
    )
