"""Container images without a registry: built from host binaries, imported into containerd.

The real node (issue 16) has no registry to pull from, so every image it runs is assembled here
from files already on the machine (Debian's ``redis-server``, ``redis-cli``, ``busybox-static``,
the static ``pause`` binary the node build compiles) and imported with ``ctr images import``:

- :data:`PAUSE_IMAGE`: ``/pause`` only, containerd's ``sandbox_image``;
- the Redis image: ``redis-server`` and ``redis-cli`` with every library ``ldd`` names, a busybox
  shell, uid/gid 999 ``redis``, ``/data``; tagged with the references the caller passes (the
  operator's default image, so ``imagePullPolicy: IfNotPresent`` finds it);
- :data:`REDIS_CLIENT_IMAGE`: ``redis-cli`` plus a busybox shell, sleeping by default (test pods);
- :data:`BUSYBOX_IMAGE`: busybox only (local-path-provisioner's helper pod runs ``sh`` in it).

Each image is one docker-archive tarball (``manifest.json``, a config named by its sha256, one
uncompressed layer), byte-for-byte deterministic: names sorted, mtime 0, numeric owners. Tarballs
are cached under the caller's directory, named by a digest of everything that goes into them, so a
second build is a lookup and a changed host package (or a new :data:`BUILDER_VERSION`) builds anew.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

__all__ = [
    "BUILDER_VERSION",
    "BUSYBOX_IMAGE",
    "PAUSE_IMAGE",
    "REDIS_CLIENT_IMAGE",
    "HostFileMissing",
    "Image",
    "ImageFile",
    "ImageImportFailed",
    "build_images",
    "docker_archive",
    "import_images",
    "normalize_reference",
]

PAUSE_IMAGE: Final = "registry.k8s.io/pause:3.10"
REDIS_CLIENT_IMAGE: Final = "aimctl.local/redis-cli:7.0.15"
BUSYBOX_IMAGE: Final = "aimctl.local/busybox:1.35"

# Part of every cache key: bump it whenever the layout or config of any image changes, so tarballs
# built by an older aimctl are never reused.
BUILDER_VERSION: Final = "1"

_INSTALL_HINT = "run `bash hack/real-node.sh` to install Debian's {package}"
# Host files, module-level so a unit test can point one at a missing path.
_REDIS_SERVER = Path("/usr/bin/redis-server")
_REDIS_CLI = Path("/usr/bin/redis-cli")
_BUSYBOX = Path("/bin/busybox")

_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the images' shells and probes use; the Redis image itself needs none of them.
_APPLETS = ("cat", "chmod", "env", "id", "ls", "mkdir", "rm", "sh", "sleep")
_REDIS_UID = 999
# uid/gid 65535 is what the upstream pause image runs as (kubernetes build/pause Dockerfile).
_PAUSE_USER = "65535:65535"


class HostFileMissing(FileNotFoundError):
    """A file an image is built from is not on this machine; the message says how to get it."""


class ImageImportFailed(RuntimeError):
    """``ctr images import`` failed or did not create every reference; carries ctr's stderr."""


@dataclass(frozen=True)
class ImageFile:
    """One entry of an image's layer.

    Exactly one of ``source`` (a host file, copied with symlinks followed), ``content``,
    ``directory=True`` or ``symlink`` (the link target, stored as given) says what it is.
    ``mode`` is the permission bits (sticky/setuid included); ``None`` means the host file's
    own bits for ``source``, 0o644 for ``content``, 0o755 for a directory, 0o777 for a symlink.
    Parent directories not listed are added as root-owned 0o755.
    """

    path: str
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    source: Path | None = None
    content: bytes | None = None
    directory: bool = False
    symlink: str | None = None

    def __post_init__(self) -> None:
        kinds = (self.source is not None, self.content is not None, self.directory)
        if sum(kinds) + (self.symlink is not None) != 1:
            raise ValueError(
                f"{self.path}: give exactly one of source, content, directory, symlink"
            )
        if not PurePosixPath(self.path).is_absolute() or self.path == "/":
            raise ValueError(f"image paths are absolute and not the root: {self.path!r}")

    @property
    def name(self) -> str:
        """The tar member name: the path without its leading slash."""
        return str(PurePosixPath(self.path)).lstrip("/")

    def resolved_mode(self) -> int:
        if self.mode is not None:
            return self.mode
        if self.source is not None:
            return stat.S_IMODE(self.source.stat().st_mode)
        if self.directory:
            return 0o755
        return 0o777 if self.symlink is not None else 0o644

    def data(self) -> bytes:
        if self.source is not None:
            return self.source.read_bytes()
        return self.content or b""


@dataclass(frozen=True)
class Image:
    """A built image: one docker-archive tarball carrying every reference in ``references``."""

    references: tuple[str, ...]
    archive: Path


def normalize_reference(reference: str) -> str:
    """The fully qualified form containerd stores (``redis:7`` -> ``docker.io/library/redis:7``).

    Docker's rules (distribution/reference ``ParseNormalizedNamed``): a first path component
    without ``.`` or ``:`` (and not ``localhost``) is not a registry, so ``docker.io`` is
    prepended, and ``library/`` to a single-component Docker Hub name; no tag means ``latest``.
    """
    name, at, digest = reference.partition("@")
    first, slash, rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        first, rest = "docker.io", name
    if first == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    if not at and ":" not in rest.rpartition("/")[2]:
        rest += ":latest"
    return f"{first}/{rest}{at}{digest}"


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _layer_entries(files: Sequence[ImageFile]) -> list[ImageFile]:
    """The files plus their unlisted parent directories, sorted by name; duplicates refused."""
    by_name: dict[str, ImageFile] = {}
    for f in files:
        if f.name in by_name:
            raise ValueError(f"{f.path} is listed twice")
        by_name[f.name] = f
    for f in files:
        for parent in PurePosixPath(f.path).parents:
            if str(parent) != "/" and str(parent).lstrip("/") not in by_name:
                by_name[str(parent).lstrip("/")] = ImageFile(str(parent), directory=True)
    return [by_name[n] for n in sorted(by_name)]


def _tar_info(
    name: str, *, size: int = 0, mode: int = 0o644, uid: int = 0, gid: int = 0
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = size, mode, uid, gid
    info.mtime, info.uname, info.gname = 0, "", ""
    return info


def _layer(files: Sequence[ImageFile]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for f in _layer_entries(files):
            info = _tar_info(f.name, mode=f.resolved_mode(), uid=f.uid, gid=f.gid)
            if f.directory:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif f.symlink is not None:
                info.type, info.linkname = tarfile.SYMTYPE, f.symlink
                tar.addfile(info)
            else:
                data = f.data()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _write_atomically(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for name, data in members:
                    tar.addfile(_tar_info(name, size=len(data)), io.BytesIO(data))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # readers see the old archive or the whole new one, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def docker_archive(
    path: Path, references: Sequence[str], files: Sequence[ImageFile], config: Mapping[str, Any]
) -> None:
    """Write a one-layer docker-archive (``docker save`` format) to ``path``, atomically.

    ``config`` is the container config part of the image config (``Env``, ``Cmd``,
    ``Entrypoint``, ``User``, ``WorkingDir``, ...); the image config around it names this
    machine's architecture, ``linux``, the layer's diff ID and creation time 0. ``references``
    become the archive's ``RepoTags`` as given (``ctr images import`` normalizes short names;
    :func:`build_images` passes them normalized). The same arguments always give the same bytes.
    """
    layer = _layer(files)
    layer_hex = hashlib.sha256(layer).hexdigest()
    image_config = _canonical_json(
        {
            "architecture": _arch(),
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": dict(config),
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_hex}"]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "aimctl.envtest"}],
        }
    )
    config_name = hashlib.sha256(image_config).hexdigest() + ".json"
    layer_name = f"{layer_hex}/layer.tar"
    manifest = _canonical_json(
        [{"Config": config_name, "RepoTags": list(references), "Layers": [layer_name]}]
    )
    _write_atomically(
        path, [(layer_name, layer), (config_name, image_config), ("manifest.json", manifest)]
    )


# -- the four images ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    name: str
    references: tuple[str, ...]
    files: tuple[ImageFile, ...]
    config: Mapping[str, Any]

    def key(self) -> str:
        """A digest of everything the archive is made of (so, of the archive's bytes)."""
        entries = []
        for f in sorted(self.files, key=lambda f: f.path):
            if f.source is not None or f.content is not None:
                what = "file:" + hashlib.sha256(f.data()).hexdigest()
            else:
                what = "dir" if f.directory else f"symlink:{f.symlink}"
            entries.append([f.path, f.resolved_mode(), f.uid, f.gid, what])
        return hashlib.sha256(
            _canonical_json(
                {
                    "builder": BUILDER_VERSION,
                    "arch": _arch(),
                    "references": list(self.references),
                    "config": dict(self.config),
                    "files": entries,
                }
            )
        ).hexdigest()


def _require(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise HostFileMissing(f"{what} not found at {path}: {hint}")
    return path


def _shared_libraries(binary: Path) -> list[str]:
    """Where ``ldd`` finds ``binary``'s libraries, the loader included; none if it is static.

    Each is placed at that same path in the image (the loader finds them by its built-in
    multiarch search path, as on the host), with the content of the file it resolves to.
    """
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if result.returncode != 0:  # "not a dynamic executable": a static binary
        return []
    libraries = []
    for line in result.stdout.splitlines():
        name, arrow, target = line.strip().partition(" => ")
        if "not found" in target:
            raise HostFileMissing(f"{binary} needs {name}, which ldd cannot find")
        where = (target if arrow else name).split(" (", 1)[0].strip()
        if where.startswith("/"):  # linux-vdso.so.1 lives in the kernel, not in a file
            libraries.append(where)
    return libraries


def _binaries(pairs: Sequence[tuple[str, Path]]) -> list[ImageFile]:
    """Executables at their image paths plus every shared library they need."""
    files = [ImageFile(path, mode=0o755, source=source) for path, source in pairs]
    libraries = sorted({lib for _, source in pairs for lib in _shared_libraries(source)})
    files += [ImageFile(lib, source=Path(lib).resolve()) for lib in libraries]
    return files


def _busybox(busybox: Path) -> list[ImageFile]:
    files = _binaries([("/bin/busybox", busybox)])
    return files + [ImageFile(f"/bin/{applet}", symlink="busybox") for applet in _APPLETS]


def _accounts(*users: tuple[str, int, str]) -> list[ImageFile]:
    passwd = "".join(f"{n}:x:{i}:{i}:{n}:{home}:/bin/sh\n" for n, i, home in users)
    group = "".join(f"{n}:x:{i}:\n" for n, i, _ in users)
    return [
        ImageFile("/etc/passwd", content=passwd.encode()),
        ImageFile("/etc/group", content=group.encode()),
    ]


_TMP = ImageFile("/tmp", mode=0o1777, directory=True)
_ROOT = ("root", 0, "/root")
_NOBODY = ("nobody", 65534, "/nonexistent")


def _specs(pause: Path, redis_references: Sequence[str]) -> list[_Spec]:
    busybox = _require(_BUSYBOX, "busybox", _INSTALL_HINT.format(package="busybox-static"))
    server = _require(_REDIS_SERVER, "redis-server", _INSTALL_HINT.format(package="redis-server"))
    cli = _require(_REDIS_CLI, "redis-cli", _INSTALL_HINT.format(package="redis-tools"))
    # Debian's redis-server is a symlink to redis-check-rdb (one binary picking its role by
    # argv[0]): `source` follows it, so the image holds a real file named redis-server.
    redis_files = [
        *_binaries([("/usr/bin/redis-server", server), ("/usr/bin/redis-cli", cli)]),
        *_busybox(busybox),
        *_accounts(_ROOT, ("redis", _REDIS_UID, "/data"), _NOBODY),
        ImageFile("/data", mode=0o755, uid=_REDIS_UID, gid=_REDIS_UID, directory=True),
        _TMP,
    ]
    client_files = [
        *_binaries([("/usr/bin/redis-cli", cli)]),
        *_busybox(busybox),
        *_accounts(_ROOT, _NOBODY),
        _TMP,
    ]
    redis = _Spec(
        "redis",
        tuple(dict.fromkeys(normalize_reference(r) for r in redis_references)),
        tuple(redis_files),
        {
            "Env": [_PATH_ENV],
            "Cmd": ["redis-server"],
            "WorkingDir": "/data",
            "User": str(_REDIS_UID),
            "ExposedPorts": {"6379/tcp": {}},
        },
    )
    return [
        _Spec(
            "pause",
            (PAUSE_IMAGE,),
            tuple(_binaries([("/pause", pause)])),
            {"Entrypoint": ["/pause"], "User": _PAUSE_USER},
        ),
        *([redis] if redis_references else []),
        _Spec(
            "redis-cli",
            (REDIS_CLIENT_IMAGE,),
            tuple(client_files),
            {"Env": [_PATH_ENV], "Cmd": ["sleep", "infinity"]},
        ),
        _Spec(
            "busybox",
            (BUSYBOX_IMAGE,),
            (*_busybox(busybox), *_accounts(_ROOT, _NOBODY), _TMP),
            {"Env": [_PATH_ENV], "Cmd": ["sh"]},
        ),
    ]


def build_images(
    cache_dir: Path, *, pause_binary: Path, redis_references: Sequence[str]
) -> list[Image]:
    """Build (or find in ``cache_dir``) the pause, Redis, redis-cli and busybox images, in order.

    With no ``redis_references`` there is no Redis image (three images); the host's Redis
    binaries are still required, the client image holds ``redis-cli``.

    Each archive is ``cache_dir/<name>-<sha256>.tar``, the digest covering the host files'
    contents and modes, the references, the image config and :data:`BUILDER_VERSION`: an
    existing one is returned as is. The Redis image carries every one of ``redis_references``
    (normalized, see :func:`normalize_reference`).

    Raises:
        HostFileMissing: ``pause_binary``, redis-server, redis-cli or busybox is missing (the
            message says what installs it), or a library they need is.
    """
    pause = _require(
        pause_binary,
        "the static pause binary",
        "run `bash hack/real-node.sh` to build it (gcc -static hack/real-node/pause.c)",
    )
    images = []
    for spec in _specs(pause, redis_references):
        archive = cache_dir / f"{spec.name}-{spec.key()}.tar"
        if not archive.is_file():
            docker_archive(archive, spec.references, spec.files, spec.config)
        images.append(Image(references=spec.references, archive=archive))
    return images


def import_images(
    ctr: str | Path, address: Path, images: Sequence[Image], *, namespace: str = "k8s.io"
) -> None:
    """Import ``images`` into the containerd at ``address``, unpacked for its default snapshotter.

    Plain ``ctr images import`` unpacks (``--no-unpack`` would leave the CRI to unpack on first
    use); the kubelet's image lookups only see the ``k8s.io`` namespace. Importing again is
    harmless (same digests). Afterwards every reference must be listed, which catches a
    reference ctr renamed.

    Raises:
        ImageImportFailed: no socket at ``address``, ctr failed (its stderr is in the message),
            or a reference is missing afterwards.
    """
    if not address.is_socket():  # ctr itself would wait 10 s before saying so
        raise ImageImportFailed(f"no containerd socket at {address}: is containerd running?")
    base = [str(ctr), "--address", str(address), "-n", namespace]
    for image in images:
        _run_ctr([*base, "images", "import", str(image.archive)], f"importing {image.archive}")
    listed = set(_run_ctr([*base, "images", "ls", "-q"], "listing images").split())
    missing = [r for image in images for r in image.references if r not in listed]
    if missing:
        raise ImageImportFailed(
            f"after `ctr images import` containerd at {address} (namespace {namespace}) "
            f"does not list {', '.join(missing)}"
        )


def _run_ctr(argv: list[str], doing: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ImageImportFailed(f"{doing} with {argv[0]}: {error}") from error
    if result.returncode != 0:
        raise ImageImportFailed(
            f"{doing}: `{' '.join(argv)}` exited {result.returncode}: {result.stderr.strip()}"
        )
    return result.stdout
