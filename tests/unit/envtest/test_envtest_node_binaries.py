"""The real node's binaries: find_node_assets (AIMCTL_NODE_ASSETS, the cache, checksums, errors),
hack/real-node.sh's find path (packages, cache, checksums; fakes on PATH, never a real build or
apt-get), its committed build modules and pause.c."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from aimctl.envtest import _versions
from aimctl.envtest._binaries import (
    NODE_BINARIES,
    SUMS_FILE,
    BinariesNotFound,
    BinariesTampered,
    NodeAssets,
    find_node_assets,
    node_cache_dir,
)

REPO = Path(__file__).resolve().parents[3]
HACK = REPO / "hack"
SCRIPT = HACK / "real-node.sh"
PIN_OVERRIDES = ("K8S_VERSION", "COREDNS_VERSION", "LOCAL_PATH_VERSION", "AIMCTL_NODE_ASSETS")


def _exe(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)
    return path


def _fill(directory: Path, names: tuple[str, ...] = NODE_BINARIES) -> Path:
    for name in names:
        _exe(directory / name, "echo fake")
    if "kubelet" in names:  # the script checks the cache's kubelet version
        _exe(directory / "kubelet", f"echo 'Kubernetes {_versions.K8S_VERSION}'")
    return directory


def _sums(directory: Path, names: tuple[str, ...] = NODE_BINARIES) -> None:
    (directory / SUMS_FILE).write_text(
        "".join(f"{hashlib.sha256((directory / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    )


def _flip_a_byte(path: Path, offset: int = 5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# --- pins and lookup -----------------------------------------------------------------------------
def test_node_dir_name_follows_the_pins() -> None:
    assert _versions.COREDNS_VERSION == "v1.12.4"
    assert _versions.LOCAL_PATH_VERSION == "v0.0.30"
    assert _versions.node_dir_name() == (
        f"node-k8s-{_versions.K8S_VERSION}-coredns-v1.12.4-local-path-v0.0.30"
    )
    assert _versions.node_dir_name(k8s="a", coredns="b", local_path="c") == (
        "node-k8s-a-coredns-b-local-path-c"
    )


def test_node_cache_dir_takes_the_scripts_overrides(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    assert node_cache_dir(env) == tmp_path / _versions.node_dir_name()
    env |= {"K8S_VERSION": "v1.35.0", "COREDNS_VERSION": "v1.0.0", "LOCAL_PATH_VERSION": "v0.0.1"}
    assert node_cache_dir(env).name == "node-k8s-v1.35.0-coredns-v1.0.0-local-path-v0.0.1"


def test_finds_the_cache(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    directory = _fill(node_cache_dir(env))
    assets = find_node_assets(env=env)
    assert assets == NodeAssets(directory=directory)
    assert assets.path("kubelet") == directory / "kubelet"


def test_node_assets_wins_over_the_cache_and_is_never_silently_ignored(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    _fill(node_cache_dir(env))
    explicit = _fill(tmp_path / "mine")
    assert find_node_assets(env=env | {"AIMCTL_NODE_ASSETS": str(explicit)}).directory == explicit
    (explicit / "pause").unlink()
    with pytest.raises(BinariesNotFound, match=r"AIMCTL_NODE_ASSETS=.*missing pause;"):
        find_node_assets(env=env | {"AIMCTL_NODE_ASSETS": str(explicit)})


def test_missing_binaries_say_to_run_the_build_script(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    with pytest.raises(BinariesNotFound) as err:
        find_node_assets(env=env)
    message = str(err.value)
    assert "make real-node" in message
    assert "hack/real-node.sh" in message
    assert ", ".join(NODE_BINARIES) in message
    _fill(node_cache_dir(env), ("kubelet", "kube-proxy", "coredns", "pause"))
    (node_cache_dir(env) / "local-path-provisioner").write_text("not executable")
    with pytest.raises(BinariesNotFound, match="missing local-path-provisioner;"):
        find_node_assets(env=env)


def test_checked_against_the_recorded_checksums(tmp_path: Path) -> None:
    env = {"AIMCTL_CACHE_DIR": str(tmp_path)}
    directory = _fill(node_cache_dir(env))
    _sums(directory, ("kubelet", "kube-proxy", "coredns", "pause"))
    with pytest.raises(BinariesTampered, match="local-path-provisioner is not recorded"):
        find_node_assets(env=env)
    _sums(directory)
    find_node_assets(env=env)
    _flip_a_byte(directory / "coredns")
    with pytest.raises(BinariesTampered, match="coredns does not match") as err:
        find_node_assets(env=env)
    assert "make real-node" in str(err.value)
    assert "make control-plane" not in str(err.value)


# --- hack/real-node.sh, find path ----------------------------------------------------------------
def _fakes(tmp_path: Path, *, uid: int = 0, missing: str = "") -> Path:
    """Commands the script may call, as fakes recording their arguments in ``calls``: `go` fails
    at once (a test never starts a real build), `dpkg-query` reports every package installed but
    ``missing``, `apt-get` fails an install until an update ran."""
    bin_dir = tmp_path / "fakebin"
    calls = tmp_path / "calls"
    _exe(bin_dir / "go", f'echo "go $*" >>{calls}; exit 97')
    _exe(
        bin_dir / "dpkg-query",
        f'echo "dpkg-query $*" >>{calls}\n'
        'for p in "$@"; do\n'
        '  [[ "$p" != -* && " ' + missing + ' " != *" $p "* ]] || continue\n'
        '  echo "$p install ok installed"\n'
        "done",
    )
    _exe(
        bin_dir / "apt-get",
        f'echo "apt-get $*" >>{calls}\n'
        f'case "$1" in update) touch {tmp_path}/updated ;; '
        f"install) [[ -e {tmp_path}/updated ]] ;; *) exit 3 ;; esac",
    )
    _exe(bin_dir / "id", f'[[ "$1" == -u ]] && echo {uid} || /usr/bin/id "$@"')
    _exe(bin_dir / "sudo", f'echo "sudo $*" >>{calls}; exit 1')
    _exe(bin_dir / "systemctl", f'echo "systemctl $*" >>{calls}')
    return bin_dir


def _run(
    tmp_path: Path, *args: str, fakes: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in PIN_OVERRIDES}
    fakes = fakes or _fakes(tmp_path)
    env |= {
        "AIMCTL_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": f"{fakes}:{os.environ['PATH']}",
        **extra,
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def _calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_the_scripts_parse_and_help_runs_nothing(tmp_path: Path) -> None:
    for script in ("lib.sh", "control-plane.sh", "real-node.sh"):
        subprocess.run(["bash", "-n", str(HACK / script)], check=True, timeout=30)
    out = _run(tmp_path, "--help")
    assert out.returncode == 0, out.stderr
    assert "prints the node asset directory" in out.stdout
    assert "--update-modules" in out.stdout
    assert _calls(tmp_path) == []
    assert _run(tmp_path, "--bogus").returncode == 2


def test_finds_the_cache_records_checksums_once_then_refuses_a_change(tmp_path: Path) -> None:
    dest = _fill(node_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path / "cache")}))
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == str(dest)
    assert "trust on first use" in first.stderr
    recorded = [line.split("  ")[1] for line in (dest / SUMS_FILE).read_text().splitlines()]
    assert recorded == sorted(NODE_BINARIES)
    find_node_assets(env={"AIMCTL_CACHE_DIR": str(tmp_path / "cache")})  # the same directory

    began = time.monotonic()
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - began < 20  # about 0.1 s here; generous for a loaded machine
    assert "trust on first use" not in again.stderr
    assert again.stdout.splitlines()[-1] == str(dest)

    _flip_a_byte(dest / "kube-proxy")
    refused = _run(tmp_path)
    assert refused.returncode == 1
    assert refused.stdout == ""  # nothing for `tail -n1` to pick up
    assert "kube-proxy: FAILED" in refused.stderr
    assert "refusing to use it" in refused.stderr
    assert not any(c.startswith("go ") for c in _calls(tmp_path))


def test_a_cache_holding_another_kubelet_version_is_refused(tmp_path: Path) -> None:
    dest = _fill(node_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path / "cache")}))
    _exe(dest / "kubelet", "echo 'Kubernetes v1.0.0'")
    out = _run(tmp_path, GOSUMDB="sum.golang.org")
    assert out.returncode == 1
    assert f"kubelet is not {_versions.K8S_VERSION}" in out.stderr
    assert out.stdout == ""


def test_node_assets_override_is_checked_and_never_written(tmp_path: Path) -> None:
    mine = _fill(tmp_path / "mine")
    ok = _run(tmp_path, AIMCTL_NODE_ASSETS=str(mine))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == str(mine)
    assert not (mine / SUMS_FILE).exists()
    _sums(mine)
    _flip_a_byte(mine / "pause")
    refused = _run(tmp_path, AIMCTL_NODE_ASSETS=str(mine))
    assert refused.returncode == 1
    assert "pause: FAILED" in refused.stderr
    (mine / "coredns").unlink()
    missing = _run(tmp_path, AIMCTL_NODE_ASSETS=str(mine))
    assert missing.returncode == 1
    assert "has no executable coredns" in missing.stderr


def test_installed_packages_need_no_root(tmp_path: Path) -> None:
    dest = _fill(node_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path / "cache")}))
    out = _run(tmp_path, fakes=_fakes(tmp_path, uid=1000))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == str(dest)
    (query,) = [c for c in _calls(tmp_path) if c.startswith("dpkg-query")]
    for package in ("containerd", "runc", "containernetworking-plugins", "iptables", "conntrack"):
        assert f" {package}" in query
    for package in ("socat", "busybox-static", "redis-server", "redis-tools"):
        assert f" {package}" in query


def test_missing_packages_without_root_fail_with_what_to_run(tmp_path: Path) -> None:
    _fill(node_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path / "cache")}))
    out = _run(tmp_path, fakes=_fakes(tmp_path, uid=1000, missing="socat"))
    assert out.returncode == 1
    assert out.stdout == ""
    assert "missing Debian packages: socat" in out.stderr
    assert "apt-get install -y --no-install-recommends socat" in out.stderr
    assert not any(c.startswith("apt-get") for c in _calls(tmp_path))


def test_missing_packages_are_installed_as_root_updating_lists_only_on_failure(
    tmp_path: Path,
) -> None:
    dest = _fill(node_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path / "cache")}))
    out = _run(tmp_path, fakes=_fakes(tmp_path, uid=0, missing="socat"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == str(dest)
    apt = [c for c in _calls(tmp_path) if c.startswith("apt-get")]
    install = "apt-get install -y -q --no-install-recommends socat"
    assert apt == [install, "apt-get update -q", install]
    (tmp_path / "calls").unlink()
    _run(tmp_path, fakes=_fakes(tmp_path, uid=0, missing="socat"))  # lists exist now
    assert [c for c in _calls(tmp_path) if c.startswith("apt-get")] == [install]


def test_skip_packages_and_linux_only(tmp_path: Path) -> None:
    _fill(node_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path / "cache")}))
    assert _run(tmp_path, AIMCTL_SKIP_PACKAGES="1").returncode == 0
    assert not any(c.startswith("dpkg-query") for c in _calls(tmp_path))
    fakes = _fakes(tmp_path)
    _exe(fakes / "uname", "echo Darwin")
    out = _run(tmp_path, fakes=fakes)
    assert out.returncode == 1
    assert "needs Linux" in out.stderr


# --- supply chain: committed modules, shared functions --------------------------------------------
@pytest.mark.parametrize(
    ("module", "path", "version"),
    [
        ("kube", "k8s.io/kubernetes", _versions.K8S_VERSION),
        ("coredns", "github.com/coredns/coredns", _versions.COREDNS_VERSION),
        ("local-path", "github.com/rancher/local-path-provisioner", _versions.LOCAL_PATH_VERSION),
    ],
)
def test_the_build_modules_are_committed_for_the_pins(module: str, path: str, version: str) -> None:
    """A pin bumped without `hack/real-node.sh --update-modules` fails here, not in a build."""
    directory = HACK / "real-node" / module
    gomod = (directory / "go.mod").read_text()
    assert re.search(rf"^\s*(require\s+)?{re.escape(path)} {re.escape(version)}\b", gomod, re.M)
    gosum = (directory / "go.sum").read_text()
    assert f"{path} {version} h1:" in gosum
    assert f"{path} {version}/go.mod h1:" in gosum


def _requirements(gomod: Path) -> dict[str, str]:
    text = gomod.read_text()
    found = dict(re.findall(r"^\s+(\S+) (v\S+)(?: // indirect)?$", text, re.M))
    found |= dict(re.findall(r"^replace (\S+) => \S+ (v\S+)$", text, re.M))
    return found


def test_the_node_kube_module_is_the_control_planes_plus_the_node_commands() -> None:
    """Every module the control plane builds with has the same version for the kubelet (so they
    share build-cache entries); `hack/control-plane.sh --update-modules` without
    `hack/real-node.sh --update-modules` fails here."""
    control = _requirements(HACK / "control-plane" / "kube" / "go.mod")
    node = _requirements(HACK / "real-node" / "kube" / "go.mod")
    assert control
    assert {m: node.get(m) for m in control} == control


def test_the_shared_functions_enforce_the_committed_sums() -> None:
    lib = (HACK / "lib.sh").read_text()
    assert 'GOFLAGS="-modcacherw -mod=$1"' in lib
    assert 'GONOSUMDB="" GONOSUMCHECK="" GOPRIVATE="" GOINSECURE=""' in lib
    assert "  go_env readonly\n" in lib  # in begin_build, which every build starts with
    for script in ("control-plane.sh", "real-node.sh", "helm.sh", "promtool.sh"):
        text = (HACK / script).read_text()
        assert 'source "$ROOT/hack/lib.sh"' in text
        assert "\nbegin_build " in text


def test_building_refuses_gosumdb_off(tmp_path: Path) -> None:
    _fill(node_cache_dir({"AIMCTL_CACHE_DIR": str(tmp_path / "cache")}), ("kubelet",))
    fakes = _fakes(tmp_path)
    _exe(fakes / "go", 'echo "${GOSUMDB}"')  # `go env GOSUMDB`
    out = _run(tmp_path, fakes=fakes, GOSUMDB="off")
    assert out.returncode == 1
    assert "GOSUMDB=off: the real-node build needs the checksum database" in out.stderr


# --- pause.c -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pause(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (hack/real-node.sh installs it)")
    out = tmp_path_factory.mktemp("pause") / "pause"
    source = HACK / "real-node" / "pause.c"
    subprocess.run(
        [gcc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(source)],
        check=True,
        timeout=120,
    )
    return out


def test_pause_prints_a_version(pause: Path) -> None:
    out = subprocess.run([str(pause), "-v"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout.startswith("pause ")


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_pause_sleeps_until_stopped_then_exits_zero(pause: Path, signo: signal.Signals) -> None:
    proc = subprocess.Popen([str(pause)], stderr=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        proc.send_signal(signo)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_pause_reaps_the_children_it_inherits(pause: Path) -> None:
    """As PID 1 of a pod, orphans are re-parented to pause; here it is made the parent directly:
    a shell `exec`s pause after starting a short-lived child, which must not stay a zombie."""
    proc = subprocess.Popen(["bash", "-c", f"sleep 0.2 & exec {pause}"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        # Once bash has become pause, the sleep (running, or exited and a zombie) is its child.
        while os.readlink(f"/proc/{proc.pid}/exe") != str(pause):
            assert time.monotonic() < deadline, "bash never exec'd pause"
            time.sleep(0.05)
        children = ["?"]
        while children and time.monotonic() < deadline:
            time.sleep(0.1)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children == []  # reaped: a zombie stays listed until its parent waits for it
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_real_cache_when_built() -> None:
    """The binaries `make real-node` built here: found, matching their checksums, and the ones
    with a version flag report the pins (the build stamps them)."""
    env = {k: v for k, v in os.environ.items() if k not in (*PIN_OVERRIDES, "AIMCTL_CACHE_DIR")}
    if not all(os.access(node_cache_dir(env) / n, os.X_OK) for n in NODE_BINARIES):
        pytest.skip(f"no complete real-node cache in {node_cache_dir(env)} (make real-node)")
    assets = find_node_assets(env=env)  # and its SHA256SUMS

    def version(name: str, flag: str) -> str:
        return subprocess.run(
            [str(assets.path(name)), flag], capture_output=True, text=True, timeout=30, check=True
        ).stdout

    assert version("kubelet", "--version").strip() == f"Kubernetes {_versions.K8S_VERSION}"
    assert version("kube-proxy", "--version").strip() == f"Kubernetes {_versions.K8S_VERSION}"
    assert f"CoreDNS-{_versions.COREDNS_VERSION.lstrip('v')}" in version("coredns", "-version")
    assert _versions.LOCAL_PATH_VERSION in version("local-path-provisioner", "--version")
    assert version("pause", "-v").startswith("pause ")
