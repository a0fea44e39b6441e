#!/usr/bin/env bash
# Build (or find) the pinned control-plane binaries: kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd and kwok, compiled from their published Go modules.
#
# Contract: prints the asset directory (KUBEBUILDER_ASSETS layout) as the last line of stdout;
# progress goes to stderr. A second run finds the cache and returns in well under a second.
#   KUBEBUILDER_ASSETS  use these binaries instead (must hold etcd and kube-apiserver at least)
#   AIMCTL_CACHE_DIR    cache root (default ~/.cache/aimctl)
#   K8S_VERSION / ETCD_VERSION / KWOK_VERSION  override the pins (see docs/development.md)
# The pins live in aimctl/envtest/_versions.py (one source of truth: the Python harness computes
# the same cache directory from them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pin() {
  local v; v=$(sed -n "s/^$1: Final = \"\(.*\)\"\$/\1/p" "$ROOT/aimctl/envtest/_versions.py")
  [[ -n "$v" ]] || { echo "cannot read $1 from $ROOT/aimctl/envtest/_versions.py" >&2; exit 1; }
  printf '%s' "$v"
}
K8S_VERSION=${K8S_VERSION:-$(pin K8S_VERSION)}
ETCD_VERSION=${ETCD_VERSION:-$(pin ETCD_VERSION)}
KWOK_VERSION=${KWOK_VERSION:-$(pin KWOK_VERSION)}
CACHE_ROOT=${AIMCTL_CACHE_DIR:-$HOME/.cache/aimctl}
DEST="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

log() { printf '[control-plane] %s\n' "$*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for b in etcd kube-apiserver; do
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || { echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b" >&2; exit 1; }
  done
  log "using KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

complete() {
  for b in "${KUBE_BINS[@]}" etcd kwok; do [[ -x "$DEST/$b" ]] || return 1; done
  "$DEST/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}
if complete; then echo "$DEST"; exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed and no control-plane binaries are cached in $DEST: install Go 1.26 or newer (https://go.dev/dl) or set KUBEBUILDER_ASSETS to a directory holding etcd and kube-apiserver." >&2
  exit 1
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-modcacherw GO111MODULE=on
mkdir -p "$DEST"
# One build at a time per cache (several checkouts share it); the winner's result is reused.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/.build.lock"
  flock -n 9 || { log "another build holds $CACHE_ROOT/.build.lock; waiting"; flock 9; }
  if complete; then echo "$DEST"; exit 0; fi
fi
# A cold build needs about 5 GB (module cache 1.1 GB, build cache 3.7 GB, binaries 0.4 GB).
avail_kb=$(df -Pk "$CACHE_ROOT" | awk 'NR==2 {print $4}')
if [[ -n "$avail_kb" && "$avail_kb" -lt 6000000 ]]; then
  log "warning: only $((avail_kb / 1024)) MiB free under $CACHE_ROOT; a cold build needs about 5 GiB"
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)

build_kube() {
  local mod="$WORK/kube" minor gomod commit stamp ver0
  mkdir -p "$mod" && cd "$mod"
  go mod init local/kubebins >/dev/null 2>&1
  log "kubernetes $K8S_VERSION: resolving staging modules"
  local info; info=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION")
  gomod=$(printf '%s' "$info" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  commit=$(printf '%s' "$info" | sed -n 's/.*"Hash": "\(.*\)".*/\1/p' | head -n1)
  ver0="v0.${K8S_VERSION#v1.}"
  # The replace list is generated from the tagged go.mod: the staging set changes between minors.
  local args=()
  while read -r m; do args+=("-replace=$m=$m@$ver0"); done < <(
    sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/src/.*#\1#p' "$gomod")
  go mod edit "${args[@]}"
  local gd; gd=$(sed -n 's/^godebug[[:space:]]\+\(default=.*\)$/\1/p' "$gomod" | head -n1)
  [[ -n "$gd" ]] && go mod edit -godebug="$gd"
  log "kubernetes $K8S_VERSION: ${#args[@]} staging replaces, ${gd:-no godebug line}"
  go get "k8s.io/kubernetes@$K8S_VERSION" >&2
  for b in "${KUBE_BINS[@]}"; do go get "k8s.io/kubernetes/cmd/$b@$K8S_VERSION" >&2; done
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  stamp=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stamp+=" -X $pkg.gitCommit=${commit:-unknown} -X $pkg.gitTreeState=clean"
    stamp+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  log "kubernetes $K8S_VERSION: compiling ${KUBE_BINS[*]} (the long part: many minutes on 2 cores)"
  local pkgs=(); for b in "${KUBE_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  go build -trimpath -ldflags "-s -w$stamp" -o "$DEST/" "${pkgs[@]}" >&2
}

build_etcd() {
  mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
  go mod init local/etcdbin >/dev/null 2>&1
  log "etcd $ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  go build -trimpath -ldflags "-s -w" -o "$DEST/etcd" go.etcd.io/etcd/server/v3 >&2
}

build_kwok() {
  mkdir -p "$WORK/kwok" && cd "$WORK/kwok"
  go mod init local/kwokbin >/dev/null 2>&1
  log "kwok $KWOK_VERSION"
  go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" -o "$DEST/kwok" sigs.k8s.io/kwok/cmd/kwok >&2
  # kwok's stage YAML (node, pod and volume stages) ships inside the module zip.
  local dir; dir=$(go list -m -f '{{.Dir}}' "sigs.k8s.io/kwok")
  rm -rf "$DEST/kwok-stages" && mkdir -p "$DEST/kwok-stages"
  cp -r "$dir/kustomize/stage/." "$DEST/kwok-stages/" && chmod -R u+w "$DEST/kwok-stages"
}

[[ -x "$DEST/etcd" ]] || build_etcd
[[ -x "$DEST/kwok" ]] || build_kwok
for b in "${KUBE_BINS[@]}"; do [[ -x "$DEST/$b" ]] || { build_kube; break; }; done

complete || { echo "control-plane build finished but $DEST is incomplete or kube-apiserver is not $K8S_VERSION" >&2; exit 1; }
log "built in $(( $(date +%s) - start ))s into $DEST ($(du -sh "$DEST" | cut -f1))"
echo "$DEST"
