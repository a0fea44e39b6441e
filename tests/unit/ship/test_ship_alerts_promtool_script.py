"""hack/promtool.sh, the pinned promtool the alert and metrics tests use: its committed build
module matches its pin, its cache is checked against SHA256SUMS, and a build runs with the
supply-chain settings of hack/lib.sh (a fake ``go`` stands in for the toolchain: no network)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "hack" / "promtool.sh"
MODULE = REPO / "hack" / "tools" / "promtool"
PIN = re.search(r"PROMTOOL_VERSION:-(v[0-9.]+)\}", SCRIPT.read_text())
assert PIN
VERSION = PIN.group(1)
RELEASE = "3.16.0"  # v0.316.0: Prometheus 3.x tags its Go module v0.3MM.P


def _script(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("PROMTOOL", "PROMTOOL_VERSION")}
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, "AIMCTL_CACHE_DIR": str(tmp_path / "cache"), **env},
    )


CRDS = ("servicemonitors", "podmonitors", "prometheusrules")
OPERATOR_PIN = re.search(r"PROM_OPERATOR_VERSION:-(v[0-9.]+)\}", SCRIPT.read_text())
assert OPERATOR_PIN
OPERATOR_VERSION = OPERATOR_PIN.group(1)


def _fake_promtool(path: Path, release: str = RELEASE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho 'promtool, version {release} (branch: HEAD, revision: x)'\n")
    path.chmod(0o755)
    return path


def _fake_cache(dest: Path) -> Path:
    """What a build leaves: promtool and crds/ (the CRDs, and the version they came from)."""
    binary = _fake_promtool(dest / "promtool")
    for crd in CRDS:
        (dest / "crds").mkdir(exist_ok=True)
        (dest / "crds" / f"monitoring.coreos.com_{crd}.yaml").write_text(f"kind: {crd}\n")
    (dest / "crds" / "VERSION").write_text(f"{OPERATOR_VERSION}\n")
    return binary


def test_the_build_module_is_committed_for_the_pin() -> None:
    """A pin bumped without `hack/promtool.sh --update-modules` fails here, not in a build."""
    assert VERSION == "v0.316.0"
    gomod = (MODULE / "go.mod").read_text()
    assert re.search(rf"^\s*github.com/prometheus/prometheus {re.escape(VERSION)}\b", gomod, re.M)
    gosum = (MODULE / "go.sum").read_text()
    assert f"github.com/prometheus/prometheus {VERSION} h1:" in gosum
    assert f"github.com/prometheus/prometheus {VERSION}/go.mod h1:" in gosum


def test_a_cached_promtool_is_recorded_once_then_a_changed_one_refused(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / f"promtool-{VERSION}"
    binary = _fake_cache(dest)
    first = _script(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "trust on first use" in first.stderr
    assert first.stdout.strip().splitlines()[-1] == str(dest)
    sums = (dest / "SHA256SUMS").read_text().splitlines()
    assert f"{hashlib.sha256(binary.read_bytes()).hexdigest()}  promtool" in sums
    assert sorted(line.split("  ")[1] for line in sums) == sorted(
        ["promtool", "crds/VERSION", *(f"crds/monitoring.coreos.com_{c}.yaml" for c in CRDS)]
    )

    again = _script(tmp_path)
    assert again.returncode == 0 and "trust on first use" not in again.stderr
    with binary.open("a") as f:
        f.write("# changed\n")
    refused = _script(tmp_path)
    assert refused.returncode == 1
    assert refused.stdout == ""  # nothing for `tail -n1` to pick up
    assert "promtool: FAILED" in refused.stderr and "refusing to use it" in refused.stderr
    binary.write_text(binary.read_text().replace("# changed\n", ""))
    assert _script(tmp_path).returncode == 0
    crd = dest / "crds" / "monitoring.coreos.com_servicemonitors.yaml"
    crd.write_text("kind: tampered\n")
    refused = _script(tmp_path)
    assert refused.returncode == 1 and "monitoring.coreos.com_servicemonitors.yaml: FAILED" in (
        refused.stderr
    )


def test_promtool_env_is_used_as_given(tmp_path: Path) -> None:
    given = _fake_promtool(tmp_path / "mine" / "promtool")
    out = _script(tmp_path, PROMTOOL=str(given))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(given.parent)
    assert not (tmp_path / "cache").exists()  # nothing built, nothing written
    missing = _script(tmp_path, PROMTOOL=str(tmp_path / "nope"))
    assert missing.returncode == 1 and "not an executable file" in missing.stderr


FAKE_GO = """#!/bin/bash
# Answers what hack/promtool.sh asks while building; `go build` writes a fake promtool.
case "$1 $2" in
  "env GOSUMDB") echo "${GOSUMDB}" ;;
  "list -m") echo "VERSION" ;;
  "mod download")
    # The Prometheus Operator module (CRDs) from a fake module cache; promtool's Origin: none.
    [[ "$4" == github.com/prometheus-operator/* ]] || exit 1
    printf '{\n\t"Dir": "%s",\n\t"Sum": "%s"\n}\n' "$FAKE_MOD" "$FAKE_SUM" ;;
  "list -deps") seq 1 10 ;;
  "build -v")
    out=""; prev=""; for a in "$@"; do [[ "$prev" == "-o" ]] && out=$a; prev=$a; done
    echo "GOFLAGS=$GOFLAGS GOSUMDB=$GOSUMDB CGO_ENABLED=$CGO_ENABLED" >"$out.env"
    echo "ARGS=$*" >>"$out.env"
    echo "example.com/pkg1" >&2
    printf '#!/bin/sh\\necho "promtool, version RELEASE (branch: HEAD)"\\n' >"$out"
    chmod +x "$out" ;;
  *) echo "unexpected: go $*" >&2; exit 97 ;;
esac
"""


def test_a_build_uses_the_committed_module_readonly_and_stamps_the_release(tmp_path: Path) -> None:
    fake = tmp_path / "fakego"
    fake.mkdir()
    (fake / "go").write_text(FAKE_GO.replace("VERSION", VERSION).replace("RELEASE", RELEASE))
    (fake / "go").chmod(0o755)
    mod = tmp_path / "mod" / "example" / "prometheus-operator-crd"
    mod.mkdir(parents=True)
    for crd in CRDS:
        (mod / f"monitoring.coreos.com_{crd}.yaml").write_text(f"kind: {crd}\n")
    path = f"{fake}:{os.environ['PATH']}"
    fakes = {"FAKE_MOD": str(tmp_path / "mod"), "FAKE_SUM": "h1:fake="}
    # A module whose hash is not the pinned one is refused before anything is built.
    wrong = _script(tmp_path / "w", PATH=path, GOSUMDB="sum.golang.org", **fakes)
    assert wrong.returncode == 1 and "not the pinned" in wrong.stderr
    assert not (tmp_path / "w" / "cache" / f"promtool-{VERSION}" / "promtool").exists()
    fakes["PROM_OPERATOR_SUM"] = "h1:fake="
    out = _script(tmp_path, PATH=path, GOSUMDB="sum.golang.org", **fakes)
    assert out.returncode == 0, out.stderr
    dest = tmp_path / "cache" / f"promtool-{VERSION}"
    assert out.stdout.strip().splitlines()[-1] == str(dest)
    env = (dest / "promtool.env").read_text()
    assert "GOFLAGS=-modcacherw -mod=readonly GOSUMDB=sum.golang.org CGO_ENABLED=0" in env
    assert "-X github.com/prometheus/common/version.Version=3.16.0" in env
    assert "-X github.com/prometheus/common/version.Revision=unknown" in env
    assert env.rstrip().endswith("github.com/prometheus/prometheus/cmd/promtool")
    assert "promtool" in (dest / "SHA256SUMS").read_text()
    for crd in CRDS:
        assert (dest / "crds" / f"monitoring.coreos.com_{crd}.yaml").read_text() == f"kind: {crd}\n"
    assert (dest / "crds" / "VERSION").read_text().strip() == OPERATOR_VERSION
    # The checksum database cannot be switched off.
    refused = _script(tmp_path / "other", PATH=path, GOSUMDB="off", **fakes)
    assert refused.returncode == 1 and "GOSUMDB=off" in refused.stderr
