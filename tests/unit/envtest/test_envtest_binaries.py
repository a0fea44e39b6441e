"""Binary lookup: KUBEBUILDER_ASSETS, TEST_ASSET_*, the build script's cache, and errors;
the build script's recorded checksums and committed build modules."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from aimctl.envtest import _versions
from aimctl.envtest._binaries import (
    FULL_BINARIES,
    SUMS_FILE,
    BinariesNotFound,
    BinariesTampered,
    default_cache_dir,
    find_assets,
)

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "hack" / "control-plane.sh"
ALL_BINARIES = (*FULL_BINARIES, "kubectl")


def _fill(directory: Path, names: tuple[str, ...], *, stages: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        exe = directory / name
        exe.write_text("#!/bin/sh\necho fake\n")
        exe.chmod(0o755)
    if stages:
        (directory / "kwok-stages").mkdir()
    return directory


def test_cache_dir_follows_the_pins(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    expected = (
        f"k8s-{_versions.K8S_VERSION}-etcd-{_versions.ETCD_VERSION}-kwok-{_versions.KWOK_VERSION}"
    )
    assert default_cache_dir(env) == tmp_path / expected
    assert default_cache_dir(
        {"AIMCTL_CACHE_DIR": str(tmp_path), "K8S_VERSION": "v1.35.9"}
    ).name == (f"k8s-v1.35.9-etcd-{_versions.ETCD_VERSION}-kwok-{_versions.KWOK_VERSION}")


def test_default_cache_root_is_home_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir({}).parent == tmp_path / ".cache" / "aimctl"


def test_finds_the_cache(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    directory = _fill(default_cache_dir(env), ("etcd", "kube-apiserver"))
    assets = find_assets(env=env)
    assert assets.directory == directory
    assert assets.path("etcd") == directory / "etcd"


def test_kubebuilder_assets_wins_over_the_cache(tmp_path: Path) -> None:
    _fill(default_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path)}), ("etcd", "kube-apiserver"))
    explicit = _fill(tmp_path / "assets", ("etcd", "kube-apiserver"))
    env = {"AIMCTL_CACHE_DIR": str(tmp_path), "KUBEBUILDER_ASSETS": str(explicit)}
    assert find_assets(env=env).directory == explicit


def test_kubebuilder_assets_is_never_silently_ignored(tmp_path: Path) -> None:
    _fill(default_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path)}), ("etcd", "kube-apiserver"))
    env = {"AIMCTL_CACHE_DIR": str(tmp_path), "KUBEBUILDER_ASSETS": str(tmp_path / "empty")}
    with pytest.raises(BinariesNotFound, match="KUBEBUILDER_ASSETS"):
        find_assets(env=env)


def test_test_asset_override_for_one_binary(tmp_path: Path) -> None:
    explicit = _fill(tmp_path / "assets", ("etcd", "kube-apiserver"))
    other = _fill(tmp_path / "elsewhere", ("etcd",)) / "etcd"
    env = {"KUBEBUILDER_ASSETS": str(explicit), "TEST_ASSET_ETCD": str(other)}
    assets = find_assets(env=env)
    assert assets.path("etcd") == other
    assert assets.path("kube-apiserver") == explicit / "kube-apiserver"


def test_missing_binaries_say_to_run_make_control_plane(tmp_path: Path) -> None:
    with pytest.raises(BinariesNotFound, match="make control-plane") as err:
        find_assets(env={"AIMCTL_CACHE_DIR": str(tmp_path)})
    assert "etcd" in str(err.value)
    assert "kube-apiserver" in str(err.value)


def test_full_mode_needs_the_extra_binaries_and_stages(tmp_path: Path) -> None:
    env = {"KUBEBUILDER_ASSETS": str(_fill(tmp_path / "a", ("etcd", "kube-apiserver", "kubectl")))}
    find_assets(env=env)
    with pytest.raises(BinariesNotFound, match="kube-controller-manager") as err:
        find_assets(full=True, env=env)
    assert "kwok-stages/" in str(err.value)
    env = {"KUBEBUILDER_ASSETS": str(_fill(tmp_path / "b", FULL_BINARIES, stages=True))}
    assert find_assets(full=True, env=env).kwok_stages == tmp_path / "b" / "kwok-stages"


def _fake_cache(cache_root: Path) -> Path:
    """A complete cache of shell scripts (kube-apiserver answers --version with the pin)."""
    dest = _fill(
        default_cache_dir({"AIMCTL_CACHE_DIR": str(cache_root)}),
        ("etcd", "kwok", "kube-controller-manager", "kube-scheduler", "kubectl"),
        stages=True,
    )
    (dest / "kwok-stages" / "node.yaml").write_text("kind: Stage\n")
    apiserver = dest / "kube-apiserver"
    apiserver.write_text(f"#!/bin/sh\necho 'Kubernetes {_versions.K8S_VERSION}'\n")
    apiserver.chmod(0o755)
    return dest


def _script(tmp_path: Path, cache_root: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run the build script on ``cache_root`` with a `go` that fails at once: if the script ever
    decided to build, the test fails fast (and never starts a real 10-minute build)."""
    nogo = tmp_path / "nogo"
    if not nogo.exists():
        _fill(nogo, ("go",))
        (nogo / "go").write_text("#!/bin/sh\nexit 97\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KUBEBUILDER_ASSETS", "K8S_VERSION", "ETCD_VERSION", "KWOK_VERSION")
    }
    env |= {"AIMCTL_CACHE_DIR": str(cache_root), "PATH": f"{nogo}:{os.environ['PATH']}", **extra}
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _flip_a_byte(path: Path, offset: int = 5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_build_script_uses_the_same_pins_and_directory(tmp_path: Path) -> None:
    """hack/control-plane.sh reads the pins from _versions.py and finds the same cache."""
    dest = _fake_cache(tmp_path / "cache")
    out = _script(tmp_path, tmp_path / "cache")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == str(dest)


def test_build_script_records_checksums_once_then_refuses_a_changed_file(tmp_path: Path) -> None:
    dest = _fake_cache(tmp_path / "cache")
    first = _script(tmp_path, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert "trust on first use" in first.stderr
    sums = (dest / SUMS_FILE).read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == sorted(
        [*ALL_BINARIES, "kwok-stages/node.yaml"]
    )
    etcd = hashlib.sha256((dest / "etcd").read_bytes()).hexdigest()
    assert f"{etcd}  etcd" in sums

    again = _script(tmp_path, tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert "trust on first use" not in again.stderr
    assert again.stdout.strip().splitlines()[-1] == str(dest)

    for changed in ("kubectl", "kwok-stages/node.yaml"):
        original = (dest / changed).read_bytes()
        _flip_a_byte(dest / changed)
        refused = _script(tmp_path, tmp_path / "cache")
        assert refused.returncode == 1
        assert refused.stdout == ""  # no directory for `tail -n1` to pick up
        assert f"{changed}: FAILED" in refused.stderr
        assert "refusing to use it" in refused.stderr
        (dest / changed).write_bytes(original)
    assert _script(tmp_path, tmp_path / "cache").returncode == 0


def test_build_script_checks_kubebuilder_assets_that_have_checksums(tmp_path: Path) -> None:
    assets = _fill(tmp_path / "assets", ("etcd", "kube-apiserver"))
    ok = _script(tmp_path, tmp_path / "cache", KUBEBUILDER_ASSETS=str(assets))
    assert ok.returncode == 0, ok.stderr
    assert not (assets / SUMS_FILE).exists()  # a directory of the user's is never written to
    (assets / SUMS_FILE).write_text(
        "".join(
            f"{hashlib.sha256((assets / n).read_bytes()).hexdigest()}  {n}\n"
            for n in ("etcd", "kube-apiserver")
        )
    )
    assert _script(tmp_path, tmp_path / "cache", KUBEBUILDER_ASSETS=str(assets)).returncode == 0
    _flip_a_byte(assets / "kube-apiserver")
    refused = _script(tmp_path, tmp_path / "cache", KUBEBUILDER_ASSETS=str(assets))
    assert refused.returncode == 1
    assert "kube-apiserver: FAILED" in refused.stderr


def test_build_script_refuses_a_tampered_copy_of_the_real_cache(tmp_path: Path) -> None:
    """The real binaries, in a copy: big ones linked, etcd copied and one byte of it flipped.

    The shared cache itself is never written to (the links are only read through)."""
    real = default_cache_dir({k: v for k, v in os.environ.items() if k != "AIMCTL_CACHE_DIR"})
    if not all(os.access(real / n, os.X_OK) for n in ALL_BINARIES):
        pytest.skip(f"no complete control-plane cache in {real} (make control-plane)")
    copy = default_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path / "cache")})
    copy.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name not in ("etcd", SUMS_FILE):
            (copy / entry.name).symlink_to(entry)
    (copy / "etcd").write_bytes((real / "etcd").read_bytes())
    (copy / "etcd").chmod(0o755)
    if (real / SUMS_FILE).exists():
        (copy / SUMS_FILE).write_text((real / SUMS_FILE).read_text())
    first = _script(tmp_path, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == str(copy)
    _flip_a_byte(copy / "etcd", offset=4096)
    refused = _script(tmp_path, tmp_path / "cache")
    assert refused.returncode == 1, refused.stdout
    assert "etcd: FAILED" in refused.stderr
    with pytest.raises(BinariesTampered, match="etcd does not match"):
        find_assets(env={"AIMCTL_CACHE_DIR": str(tmp_path / "cache")})


def test_find_assets_checks_the_recorded_checksums(tmp_path: Path) -> None:
    directory = _fill(tmp_path / "assets", ("etcd", "kube-apiserver"))
    env = {"KUBEBUILDER_ASSETS": str(directory)}
    find_assets(env=env)  # no SHA256SUMS: nothing to check
    (directory / SUMS_FILE).write_text(
        f"{hashlib.sha256((directory / 'etcd').read_bytes()).hexdigest()}  etcd\n"
    )
    with pytest.raises(BinariesTampered, match="kube-apiserver is not recorded"):
        find_assets(env=env)
    override = _fill(tmp_path / "other", ("kube-apiserver",)) / "kube-apiserver"
    # A TEST_ASSET_* override is the caller's choice, not the directory's: not checked.
    find_assets(env=env | {"TEST_ASSET_KUBE_APISERVER": str(override)})
    _flip_a_byte(directory / "etcd")
    with pytest.raises(BinariesTampered, match="etcd does not match"):
        find_assets(env=env | {"TEST_ASSET_KUBE_APISERVER": str(override)})
    with pytest.raises(BinariesNotFound):  # callers that catch the old error still catch it
        find_assets(env=env | {"TEST_ASSET_KUBE_APISERVER": str(override)})


@pytest.mark.parametrize(
    ("module", "path", "version"),
    [
        ("kube", "k8s.io/kubernetes", _versions.K8S_VERSION),
        ("etcd", "go.etcd.io/etcd/server/v3", _versions.ETCD_VERSION),
        ("kwok", "sigs.k8s.io/kwok", _versions.KWOK_VERSION),
    ],
)
def test_the_build_modules_are_committed_for_the_pins(module: str, path: str, version: str) -> None:
    """A pin bumped without `hack/control-plane.sh --update-modules` fails here, not in a build."""
    directory = REPO / "hack" / "control-plane" / module
    gomod = (directory / "go.mod").read_text()
    assert re.search(rf"^\s*(require\s+)?{re.escape(path)} {re.escape(version)}\b", gomod, re.M)
    gosum = (directory / "go.sum").read_text()
    assert f"{path} {version} h1:" in gosum
    assert f"{path} {version}/go.mod h1:" in gosum


def test_the_build_script_enforces_the_committed_sums() -> None:
    script = SCRIPT.read_text()
    lib = (REPO / "hack" / "lib.sh").read_text()  # go_env lives there, shared with real-node.sh
    assert 'GOFLAGS="-modcacherw -mod=$1"' in lib
    assert "  go_env readonly\n" in lib and "\nbegin_build " in script
    assert "GOSUMDB=off" in script


FAKE_GO = """#!/bin/bash
# Answers what the script asks while building etcd; `go build -v` names five packages slowly.
case "$1 $2" in
  "env GOSUMDB") echo "${GOSUMDB}" ;;
  "list -m") echo "ETCD" ;;
  "list -deps") seq 1 10 ;;
  "build -v")
    out=""; prev=""; for a in "$@"; do [[ "$prev" == "-o" ]] && out=$a; prev=$a; done
    echo "GOFLAGS=$GOFLAGS GOSUMDB=$GOSUMDB GONOSUMDB=$GONOSUMDB" >"$out.env"
    for i in 1 2 3 4 5; do echo "example.com/pkg$i" >&2; sleep 0.6; done
    echo "main.go:1: a compiler message" >&2
    printf '#!/bin/sh\\n' >"$out"; chmod +x "$out" ;;
  *) echo "unexpected: go $*" >&2; exit 97 ;;
esac
"""


def _fake_go(tmp_path: Path) -> Path:
    """A directory holding FAKE_GO as `go`."""
    fake = tmp_path / "fakego"
    fake.mkdir()
    (fake / "go").write_text(FAKE_GO.replace("ETCD", _versions.ETCD_VERSION))
    (fake / "go").chmod(0o755)
    return fake


def test_build_script_reports_progress_and_builds_read_only(tmp_path: Path) -> None:
    """A build says what it compiles and how far it is, and runs with the committed go.sum
    read-only and the checksum database on (a fake `go`: no real compile)."""
    dest = _fake_cache(tmp_path / "cache")
    (dest / "etcd").unlink()
    fake = _fake_go(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_VERSION")}
    env.pop("KUBEBUILDER_ASSETS", None)
    env |= {
        "AIMCTL_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": f"{fake}:{os.environ['PATH']}",
        "AIMCTL_PROGRESS_INTERVAL": "1",
        "GONOSUMDB": "example.com",
        "GOSUMDB": "",
    }
    # Through a pipe, as `make` reads it: the script's helpers must not hold it open.
    out = subprocess.run(
        f"bash {SCRIPT} 2>&1 | cat",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert lines[-1] == str(dest)
    assert f"etcd {_versions.ETCD_VERSION}: compiling (about 10 packages" in out
    assert re.search(r"etcd \S+: \d of about 10 packages compiled, \ds elapsed", out), out
    assert "main.go:1: a compiler message" in out
    assert re.search(r"etcd \S+: built in \ds \(5 packages compiled\)", out), out
    assert (dest / "etcd.env").read_text().split() == [
        "GOFLAGS=-modcacherw",
        "-mod=readonly",
        "GOSUMDB=sum.golang.org",
        "GONOSUMDB=",
    ]
    assert f"{hashlib.sha256((dest / 'etcd').read_bytes()).hexdigest()}  etcd" in (
        (dest / SUMS_FILE).read_text().splitlines()
    )


def test_build_script_refuses_to_build_without_the_checksum_database(tmp_path: Path) -> None:
    dest = _fake_cache(tmp_path / "cache")
    (dest / "etcd").unlink()
    fake = _fake_go(tmp_path)
    refused = _script(
        tmp_path, tmp_path / "cache", PATH=f"{fake}:{os.environ['PATH']}", GOSUMDB="off"
    )
    assert refused.returncode == 1
    assert "GOSUMDB=off" in refused.stderr
    assert not (dest / "etcd").exists()


def test_two_first_uses_at_once_both_record_a_complete_list(tmp_path: Path) -> None:
    """Every checkout on a machine shares the cache: first uses may race."""
    dest = _fake_cache(tmp_path / "cache")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_VERSION")}
    env.pop("KUBEBUILDER_ASSETS", None)
    env["AIMCTL_CACHE_DIR"] = str(tmp_path / "cache")
    runs = [
        subprocess.Popen(
            ["bash", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    for run in runs:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
    assert _script(tmp_path, tmp_path / "cache").returncode == 0
    assert len((dest / SUMS_FILE).read_text().splitlines()) == len(ALL_BINARIES) + 1
    assert not list(dest.glob(f".{SUMS_FILE}.*"))
