"""Registry-free images: deterministic docker-archives, their manifest and config, the content
cache, and the errors for missing host files. Importing and running them is in
tests/integration/envtest/test_envtest_images_ctr.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from aimctl.envtest import _images
from aimctl.envtest._images import (
    BUSYBOX_IMAGE,
    PAUSE_IMAGE,
    REDIS_CLIENT_IMAGE,
    HostFileMissing,
    ImageFile,
    build_images,
    docker_archive,
    normalize_reference,
)

REDIS = "docker.io/library/redis:7.2.12"
HOST_FILES = (_images._REDIS_SERVER, _images._REDIS_CLI, _images._BUSYBOX)
needs_host_files = pytest.mark.skipif(
    not all(p.is_file() for p in HOST_FILES),
    reason="needs Debian's redis-server, redis-tools and busybox-static (bash hack/real-node.sh)",
)


def _files(tmp_path: Path) -> list[ImageFile]:
    source = tmp_path / "tool"
    source.write_bytes(b"#!/bin/sh\necho tool\n")
    source.chmod(0o750)
    return [
        ImageFile("/usr/bin/tool", source=source),
        ImageFile("/etc/motd", content=b"hello\n"),
        ImageFile("/data", mode=0o770, uid=999, gid=999, directory=True),
        ImageFile("/tmp", mode=0o1777, directory=True),
        ImageFile("/bin/sh", symlink="busybox"),
    ]


CONFIG = {"Env": ["PATH=/bin"], "Cmd": ["tool"], "User": "999"}


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            out[m.name] = f.read() if f else b""
        return out


def _image(archive: Path) -> tuple[dict[str, Any], dict[str, Any], list[tarfile.TarInfo], bytes]:
    """(manifest entry, image config, layer members, layer bytes) of a one-image archive."""
    members = _members(archive)
    [manifest] = json.loads(members["manifest.json"])
    config = json.loads(members[manifest["Config"]])
    [layer_name] = manifest["Layers"]
    layer = members[layer_name]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return manifest, config, tar.getmembers(), layer


def _layer_file(archive: Path, name: str) -> bytes:
    *_, layer = _image(archive)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    files = _files(tmp_path)
    docker_archive(tmp_path / "a.tar", ["example.org/a:1"], files, CONFIG)
    os.utime(tmp_path / "tool", (1_000_000, 1_000_000))  # host timestamps do not leak in
    docker_archive(tmp_path / "b.tar", ["example.org/a:1"], files, CONFIG)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    docker_archive(tmp_path / "c.tar", ["example.org/a:2"], files, CONFIG)
    assert (tmp_path / "a.tar").read_bytes() != (tmp_path / "c.tar").read_bytes()


def test_archive_is_a_docker_save_layout(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    docker_archive(archive, ["example.org/a:1", "example.org/b:2"], _files(tmp_path), CONFIG)
    members = _members(archive)
    manifest, config, layer_members, layer = _image(archive)
    assert set(members) == {"manifest.json", manifest["Config"], manifest["Layers"][0]}
    assert manifest["RepoTags"] == ["example.org/a:1", "example.org/b:2"]
    # The config is named by its digest, the layer's digest is its diff ID (uncompressed).
    assert manifest["Config"] == hashlib.sha256(members[manifest["Config"]]).hexdigest() + ".json"
    layer_hex = hashlib.sha256(layer).hexdigest()
    assert manifest["Layers"] == [f"{layer_hex}/layer.tar"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{layer_hex}"]}
    assert config["os"] == "linux" and config["architecture"] in {"amd64", "arm64"}
    assert config["config"] == CONFIG

    by_name = {m.name: m for m in layer_members}
    # Sorted names, parents added, nothing from the host but content and (for sources) mode.
    assert [m.name for m in layer_members] == sorted(by_name)
    assert " ".join(by_name) == "bin bin/sh data etc etc/motd tmp usr usr/bin usr/bin/tool"
    assert all(m.mtime == 0 and m.uname == "" and m.gname == "" for m in layer_members)
    assert by_name["usr"].isdir() and by_name["usr"].mode == 0o755 and by_name["usr"].uid == 0
    assert by_name["usr/bin/tool"].mode == 0o750 and by_name["usr/bin/tool"].isreg()
    assert by_name["etc/motd"].mode == 0o644 and by_name["etc/motd"].size == 6
    assert (by_name["data"].mode, by_name["data"].uid, by_name["data"].gid) == (0o770, 999, 999)
    assert by_name["tmp"].mode == 0o1777
    assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "busybox"


def test_archive_is_replaced_whole(tmp_path: Path) -> None:
    archive = tmp_path / "cache" / "a.tar"
    docker_archive(archive, ["example.org/a:1"], _files(tmp_path), CONFIG)
    docker_archive(archive, ["example.org/a:2"], _files(tmp_path), CONFIG)
    assert _image(archive)[0]["RepoTags"] == ["example.org/a:2"]
    assert [p.name for p in archive.parent.iterdir()] == ["a.tar"]  # no temporary file left


def test_image_file_is_exactly_one_thing() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ImageFile("/a", content=b"x", symlink="b")
    with pytest.raises(ValueError, match="exactly one"):
        ImageFile("/a")
    with pytest.raises(ValueError, match="absolute"):
        ImageFile("a", content=b"x")


def test_a_path_listed_twice_is_refused(tmp_path: Path) -> None:
    files = [ImageFile("/a", content=b"1"), ImageFile("/a", content=b"2")]
    with pytest.raises(ValueError, match="twice"):
        docker_archive(tmp_path / "a.tar", ["example.org/a:1"], files, {})


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("redis", "docker.io/library/redis:latest"),
        ("redis:7.2.12", "docker.io/library/redis:7.2.12"),
        ("docker.io/library/redis:7.2.12", "docker.io/library/redis:7.2.12"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("aimctl.local/busybox:1.35", "aimctl.local/busybox:1.35"),
        ("localhost/x", "localhost/x:latest"),
        ("localhost:5000/x:1", "localhost:5000/x:1"),
        ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
        ("redis@sha256:" + "0" * 64, "docker.io/library/redis@sha256:" + "0" * 64),
    ],
)
def test_references_are_normalized_as_containerd_stores_them(given: str, stored: str) -> None:
    assert normalize_reference(given) == stored


def _pause(tmp_path: Path) -> Path:
    pause = tmp_path / "pause"
    pause.write_bytes(b"not really a static binary")
    pause.chmod(0o755)
    return pause


@needs_host_files
def test_build_images_finds_its_archives_the_second_time(tmp_path: Path) -> None:
    cache = tmp_path / "images"
    first = build_images(cache, pause_binary=_pause(tmp_path), redis_references=[REDIS])
    assert [i.references for i in first] == [
        (PAUSE_IMAGE,),
        (REDIS,),
        (REDIS_CLIENT_IMAGE,),
        (BUSYBOX_IMAGE,),
    ]
    stats = {i.archive: i.archive.stat() for i in first}
    second = build_images(cache, pause_binary=_pause(tmp_path), redis_references=[REDIS])
    assert second == first
    for image in second:  # not rewritten
        before, after = stats[image.archive], image.archive.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    # Another reference is another Redis archive; the other three are found again.
    third = build_images(
        cache, pause_binary=_pause(tmp_path), redis_references=["redis:7.2.12", "redis:7"]
    )
    assert third[1].references == (REDIS, "docker.io/library/redis:7")
    assert third[1].archive != first[1].archive
    assert [third[i] for i in (0, 2, 3)] == [first[i] for i in (0, 2, 3)]
    # Another pause binary is another pause archive.
    (tmp_path / "pause").write_bytes(b"another pause")
    assert build_images(cache, pause_binary=tmp_path / "pause", redis_references=[REDIS])[
        0
    ].archive not in {i.archive for i in first}
    assert sorted(p.suffix for p in cache.iterdir()) == [".tar"] * 6


@needs_host_files
def test_redis_image_is_debian_redis_with_its_libraries(tmp_path: Path) -> None:
    images = build_images(tmp_path, pause_binary=_pause(tmp_path), redis_references=[REDIS])
    pause, redis, client, busybox = (i.archive for i in images)

    manifest, config, members, _ = _image(redis)
    assert manifest["RepoTags"] == [REDIS]
    assert config["config"]["User"] == "999"
    assert config["config"]["WorkingDir"] == "/data"
    assert config["config"]["Cmd"] == ["redis-server"]
    assert any(e.startswith("PATH=") and "/usr/bin" in e for e in config["config"]["Env"])
    by_name = {m.name: m for m in members}
    # Debian's redis-server is a symlink to redis-check-rdb: the image holds the binary itself.
    assert by_name["usr/bin/redis-server"].isreg()
    assert _layer_file(redis, "usr/bin/redis-server") == _images._REDIS_SERVER.read_bytes()
    assert by_name["usr/bin/redis-cli"].mode == 0o755
    libraries = {n for n in by_name if ".so" in n}
    # Every library ldd names, at the path it names (the loader too), as a regular file even
    # where the host has a symlink (libatomic.so.1 -> libatomic.so.1.2.0).
    needed = {
        *_images._shared_libraries(_images._REDIS_SERVER),
        *_images._shared_libraries(_images._REDIS_CLI),
    }
    assert any("ld-linux" in n for n in needed) and any("libc.so" in n for n in needed)
    assert {n.lstrip("/") for n in needed} == libraries
    assert all(by_name[n].isreg() for n in libraries)
    assert (by_name["data"].uid, by_name["data"].gid) == (999, 999)
    assert by_name["tmp"].mode == 0o1777
    assert by_name["bin/sh"].linkname == "busybox"
    assert b"redis:x:999:999:" in _layer_file(redis, "etc/passwd")
    assert b"redis:x:999:" in _layer_file(redis, "etc/group")

    _, config, members, _ = _image(client)
    assert config["config"]["Cmd"] == ["sleep", "infinity"] and "User" not in config["config"]
    assert {"usr/bin/redis-cli", "bin/busybox", "bin/sleep", "bin/sh"} <= {m.name for m in members}
    assert "usr/bin/redis-server" not in {m.name for m in members}

    _, config, members, _ = _image(busybox)
    names = {m.name for m in members}
    assert {
        f"bin/{a}" for a in ("sh", "mkdir", "rm", "chmod", "ls", "cat", "sleep", "env")
    } <= names
    assert not any(".so" in n for n in names)  # busybox-static

    manifest, config, members, _ = _image(pause)
    assert manifest["RepoTags"] == [PAUSE_IMAGE]
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert [m.name for m in members] == ["pause"] and members[0].mode == 0o755


def test_missing_pause_binary_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(HostFileMissing, match=r"pause binary not found at .*hack/real-node\.sh"):
        build_images(tmp_path, pause_binary=tmp_path / "nope", redis_references=[REDIS])


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("_REDIS_SERVER", "redis-server not found at .*install Debian's redis-server"),
        ("_REDIS_CLI", "redis-cli not found at .*install Debian's redis-tools"),
        ("_BUSYBOX", "busybox not found at .*install Debian's busybox-static"),
    ],
)
def test_missing_host_binary_says_what_installs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attribute: str, message: str
) -> None:
    monkeypatch.setattr(_images, attribute, tmp_path / "missing")
    with pytest.raises(HostFileMissing, match=message):
        build_images(tmp_path, pause_binary=_pause(tmp_path), redis_references=[REDIS])
    assert not any(p.suffix == ".tar" for p in tmp_path.iterdir())


@needs_host_files
def test_no_redis_reference_means_no_redis_image(tmp_path: Path) -> None:
    images = build_images(tmp_path, pause_binary=_pause(tmp_path), redis_references=[])
    assert [i.references for i in images] == [
        (PAUSE_IMAGE,),
        (REDIS_CLIENT_IMAGE,),
        (BUSYBOX_IMAGE,),
    ]
