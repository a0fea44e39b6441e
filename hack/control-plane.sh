#!/usr/bin/env bash
# Build (or find) the pinned control-plane binaries: kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd and kwok, compiled from their published Go modules.
#
# Contract: prints the asset directory (KUBEBUILDER_ASSETS layout) as the last line of stdout;
# progress goes to stderr. A second run finds the cache, checks it against its SHA256SUMS and
# returns in about a second (the check re-hashes ~400 MB).
#   KUBEBUILDER_ASSETS  use these binaries instead (must hold etcd and kube-apiserver at least;
#                       checked against its SHA256SUMS when it has one)
#   AIMCTL_CACHE_DIR    cache root (default ~/.cache/aimctl)
#   K8S_VERSION / ETCD_VERSION / KWOK_VERSION  override the pins (see docs/development.md)
# The pins live in aimctl/envtest/_versions.py (one source of truth: the Python harness computes
# the same cache directory from them).
#
# Supply chain:
# - Each throwaway build module (hack/control-plane/{etcd,kwok,kube}) has a committed go.mod and
#   go.sum, and builds with -mod=readonly: a module whose hash is not in the committed go.sum, or
#   differs from it, stops the build. Those files are written by `--update-modules` with the
#   checksum database on (GOSUMDB, default sum.golang.org, reached through the module proxy), so
#   every line was checked against it; GONOSUMDB/GONOSUMCHECK/GOPRIVATE/GOINSECURE are cleared and
#   GOSUMDB=off is refused, in both modes.
# - A build writes DEST/SHA256SUMS; every later use re-hashes the binaries (and kwok's stages)
#   and refuses the cache when one differs. A complete cache without SHA256SUMS (built before
#   this check existed) is recorded on first use: trust on first use, said on stderr.
# - The Kubernetes binaries are stamped with the tag's commit (gitCommit) when it is known: from
#   hack/control-plane/kube/COMMIT, else the module proxy's Origin for the tag, else
#   `git ls-remote`; "unknown" (and a line saying why) when none answers.
#
#   hack/control-plane.sh                   find or build; print the asset directory
#   hack/control-plane.sh --update-modules  re-resolve the build modules for the pins (commit them)
#
# The checksum, Go-environment and build functions live in hack/lib.sh (shared with
# hack/real-node.sh, which builds the real node's binaries under the same rules).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_TAG=control-plane
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"
MODULES="$ROOT/hack/control-plane"
K8S_VERSION=${K8S_VERSION:-$(pin K8S_VERSION)}
ETCD_VERSION=${ETCD_VERSION:-$(pin ETCD_VERSION)}
KWOK_VERSION=${KWOK_VERSION:-$(pin KWOK_VERSION)}
CACHE_ROOT=${AIMCTL_CACHE_DIR:-$HOME/.cache/aimctl}
DEST="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
# go_env's "Go is not installed" message ends with this.
GO_ALTERNATIVE=" or set KUBEBUILDER_ASSETS to a directory holding etcd and kube-apiserver"
parse_mode "$@"

# --- --update-modules: resolve the three build modules afresh --------------------------------
resolve_kube() {
  init_module kubebins
  log "kubernetes $K8S_VERSION: resolving staging modules"
  local gomod ver0="v0.${K8S_VERSION#v1.}" args=() gd b
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  # The replace list is generated from the tagged go.mod: the staging set changes between minors.
  while read -r m; do args+=("-replace=$m=$m@$ver0"); done < <(
    sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/src/.*#\1#p' "$gomod")
  go mod edit "${args[@]}"
  gd=$(sed -n 's/^godebug[[:space:]]\+\(default=.*\)$/\1/p' "$gomod" | head -n1)
  [[ -n "$gd" ]] && go mod edit -godebug="$gd"
  log "kubernetes $K8S_VERSION: ${#args[@]} staging replaces, ${gd:-no godebug line}"
  go get "k8s.io/kubernetes@$K8S_VERSION" >&2
  for b in "${KUBE_BINS[@]}"; do go get "k8s.io/kubernetes/cmd/$b@$K8S_VERSION" >&2; done
}
resolve_etcd() {
  init_module etcdbin
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
}
resolve_kwok() {
  init_module kwokbin
  go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
}
if [[ "$MODE" == update ]]; then
  go_env mod
  work_dir
  for name in etcd kwok kube; do
    mkdir -p "$WORK/$name" "$MODULES/$name"
    (cd "$WORK/$name" && "resolve_$name")
    cp "$WORK/$name/go.mod" "$WORK/$name/go.sum" "$MODULES/$name/"
    log "wrote hack/control-plane/$name/go.mod and go.sum"
  done
  commit=$(cd "$WORK/kube" && kube_commit)
  [[ -z "$commit" ]] || printf '%s %s\n' "$commit" "$K8S_VERSION" >"$MODULES/kube/COMMIT"
  log "review and commit hack/control-plane/"
  exit 0
fi

# --- find ------------------------------------------------------------------------------------
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for b in etcd kube-apiserver; do
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b"
  done
  if [[ -f "$KUBEBUILDER_ASSETS/$SUMS" ]]; then checked "$KUBEBUILDER_ASSETS" etcd kube-apiserver; fi
  log "using KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

complete() {
  for b in "${KUBE_BINS[@]}" etcd kwok; do [[ -x "$DEST/$b" ]] || return 1; done
  [[ -d "$DEST/kwok-stages" ]] || return 1
  "$DEST/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}
use_cache() { checked "$DEST" "${KUBE_BINS[@]}" etcd kwok; echo "$DEST"; exit 0; }
if complete; then use_cache; fi

# --- build -----------------------------------------------------------------------------------
begin_build 6000000 "about 5 GiB"
start=$(date +%s)

build_kube() {
  module kube k8s.io/kubernetes "$K8S_VERSION"
  local stamp pkgs=() b
  stamp=$(kube_stamp)
  for b in "${KUBE_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  PKG_COUNT=${#pkgs[@]} go_build "kubernetes $K8S_VERSION (${KUBE_BINS[*]}: many minutes on 2 cores)" \
    -trimpath -ldflags "-s -w$stamp" -o "$DEST/" "${pkgs[@]}"
}

build_etcd() {
  module etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  PKG_COUNT=1 go_build "etcd $ETCD_VERSION" -trimpath -ldflags "-s -w" -o "$DEST/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  module kwok sigs.k8s.io/kwok "$KWOK_VERSION"
  PKG_COUNT=1 go_build "kwok $KWOK_VERSION" -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" -o "$DEST/kwok" sigs.k8s.io/kwok/cmd/kwok
  # kwok's stage YAML (node, pod and volume stages) ships inside the module zip.
  local dir; dir=$(go list -m -f '{{.Dir}}' "sigs.k8s.io/kwok")
  rm -rf "$DEST/kwok-stages" && mkdir -p "$DEST/kwok-stages"
  cp -r "$dir/kustomize/stage/." "$DEST/kwok-stages/" && chmod -R u+w "$DEST/kwok-stages"
}

[[ -x "$DEST/etcd" ]] || build_etcd
[[ -x "$DEST/kwok" && -d "$DEST/kwok-stages" ]] || build_kwok
for b in "${KUBE_BINS[@]}"; do [[ -x "$DEST/$b" ]] || { build_kube; break; }; done

complete || die "control-plane build finished but $DEST is incomplete or kube-apiserver is not $K8S_VERSION"
record_sums "$DEST"
log "built in $(( $(date +%s) - start ))s into $DEST ($(du -sh "$DEST" | cut -f1)); checksums in $DEST/$SUMS"
echo "$DEST"
