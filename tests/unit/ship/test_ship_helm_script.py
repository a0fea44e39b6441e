"""hack/helm.sh, the pinned helm the chart tests use: its cache is checked against SHA256SUMS,
``HELM`` is used as given, and a build runs with the supply-chain settings of hack/lib.sh and
stamps the version (a fake ``go`` stands in for the toolchain: no network, no compiler)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "hack" / "helm.sh"
PIN = re.search(r"HELM_VERSION:-(v[0-9.]+)\}", SCRIPT.read_text())
assert PIN
VERSION = PIN.group(1)


def _script(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("HELM", "HELM_VERSION")}
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, "AIMCTL_CACHE_DIR": str(tmp_path / "cache"), **env},
    )


def _fake_helm(path: Path, version: str = VERSION) -> Path:
    """Answers `helm version --template '{{.Version}}'` as a real build does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nprintf '%s' '{version}'\n")
    path.chmod(0o755)
    return path


def test_a_cached_helm_is_recorded_once_then_a_changed_one_refused(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / f"helm-{VERSION}"
    binary = _fake_helm(dest / "helm")
    first = _script(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "trust on first use" in first.stderr
    assert first.stdout.strip().splitlines()[-1] == str(dest)
    sums = (dest / "SHA256SUMS").read_text().splitlines()
    assert sums == [f"{hashlib.sha256(binary.read_bytes()).hexdigest()}  helm"]

    again = _script(tmp_path)
    assert again.returncode == 0 and "trust on first use" not in again.stderr
    with binary.open("a") as f:
        f.write("# changed\n")
    refused = _script(tmp_path)
    assert refused.returncode == 1
    assert refused.stdout == ""  # nothing for `tail -n1` to pick up
    assert "helm: FAILED" in refused.stderr and "refusing to use it" in refused.stderr


def test_helm_env_is_used_as_given(tmp_path: Path) -> None:
    given = _fake_helm(tmp_path / "mine" / "helm", "v3.21.4")
    out = _script(tmp_path, HELM=str(given))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(given.parent)
    assert "using HELM (v3.21.4)" in out.stderr
    assert not (tmp_path / "cache").exists()  # nothing built, nothing written
    missing = _script(tmp_path, HELM=str(tmp_path / "nope"))
    assert missing.returncode == 1 and "not an executable file" in missing.stderr


FAKE_GO = """#!/bin/bash
# Answers what hack/helm.sh asks while building; `go build` writes a fake helm.
case "$1 $2" in
  "env GOSUMDB") echo "${GOSUMDB}" ;;
  "list -m") echo "VERSION" ;;
  "mod download") exit 1 ;;  # the proxy's .info has no Origin: the commit stays "unknown"
  "list -deps") seq 1 10 ;;
  "build -v")
    out=""; prev=""; for a in "$@"; do [[ "$prev" == "-o" ]] && out=$a; prev=$a; done
    echo "GOFLAGS=$GOFLAGS GOSUMDB=$GOSUMDB CGO_ENABLED=$CGO_ENABLED" >"$out.env"
    echo "GOTOOLCHAIN=$GOTOOLCHAIN" >>"$out.env"
    echo "ARGS=$*" >>"$out.env"
    echo "example.com/pkg1" >&2
    printf '#!/bin/sh\\nprintf %s VERSION\\n' >"$out"
    chmod +x "$out" ;;
  *) echo "unexpected: go $*" >&2; exit 97 ;;
esac
"""


def test_a_build_uses_the_committed_module_readonly_and_stamps_the_version(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "fakego"
    fake.mkdir()
    (fake / "go").write_text(FAKE_GO.replace("VERSION", VERSION))
    (fake / "go").chmod(0o755)
    path = f"{fake}:{os.environ['PATH']}"
    out = _script(tmp_path, PATH=path, GOSUMDB="sum.golang.org")
    assert out.returncode == 0, out.stderr
    dest = tmp_path / "cache" / f"helm-{VERSION}"
    assert out.stdout.strip().splitlines()[-1] == str(dest)
    env = (dest / "helm.env").read_text()
    assert "GOFLAGS=-modcacherw -mod=readonly GOSUMDB=sum.golang.org CGO_ENABLED=0" in env
    assert "GOTOOLCHAIN=local" in env
    assert f"-X helm.sh/helm/v4/internal/version.version={VERSION}" in env
    assert "-X helm.sh/helm/v4/internal/version.gitCommit=unknown" in env
    assert "-X helm.sh/helm/v4/internal/version.gitTreeState=clean" in env
    assert env.rstrip().endswith("helm.sh/helm/v4/cmd/helm")
    assert "  helm\n" in (dest / "SHA256SUMS").read_text()
    # The checksum database cannot be switched off.
    refused = _script(tmp_path / "other", PATH=path, GOSUMDB="off")
    assert refused.returncode == 1 and "GOSUMDB=off" in refused.stderr
    # A pin the committed module does not build is refused before anything is built.
    other = _script(tmp_path / "v", PATH=path, GOSUMDB="sum.golang.org", HELM_VERSION="v4.0.0")
    assert other.returncode == 1 and "--update-modules" in other.stderr
    assert not (tmp_path / "v" / "cache" / "helm-v4.0.0" / "helm").exists()
