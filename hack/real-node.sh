#!/usr/bin/env bash
# Install (or find) what the local cluster's real node runs: Debian's containerd, runc, CNI
# plugins, iptables, conntrack, socat, busybox-static and redis-server/redis-tools; and build
# (or find) its pinned binaries: kubelet and kube-proxy (Kubernetes), CoreDNS and
# local-path-provisioner from their Go modules, and pause from hack/real-node/pause.c.
#
# Contract: prints the node asset directory as the last line of stdout; progress goes to stderr.
# A second run finds the packages and the cache, checks the cache against its SHA256SUMS and
# returns in about a second.
#   AIMCTL_NODE_ASSETS  use these binaries instead (must hold all five; checked against its
#                       SHA256SUMS when it has one; never written to)
#   AIMCTL_CACHE_DIR    cache root (default ~/.cache/aimctl)
#   K8S_VERSION / COREDNS_VERSION / LOCAL_PATH_VERSION  override the pins
#   AIMCTL_SKIP_PACKAGES=1  do not check or install the Debian packages (you provide them)
# The pins live in aimctl/envtest/_versions.py; the directory is
# <cache root>/node-k8s-<v>-coredns-<v>-local-path-<v> (_versions.node_dir_name, the same name
# aimctl.envtest.find_node_assets looks for).
#
# Needs Linux (the node is kubelet + containerd on cgroups) and, when a package is missing, root
# (or password-less sudo) for apt-get; `apt-get update` runs only when the install fails.
#
# Supply chain: the same rules as hack/control-plane.sh (read its header): committed build
# modules hack/real-node/{kube,coredns,local-path}/go.{mod,sum}, built with -mod=readonly and the
# checksum database on; DEST/SHA256SUMS written at build and checked on every use. The kube
# module is the control plane's plus cmd/kubelet and cmd/kube-proxy, so the packages both use
# resolve to one version (and one Go build cache entry). pause is compiled by the system gcc
# (gcc -static, Debian's gcc and libc6-dev).
#
#   hack/real-node.sh                   install/find packages, find or build; print the directory
#   hack/real-node.sh --update-modules  re-resolve hack/real-node/* for the pins (commit them)
#   hack/real-node.sh --help
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_TAG=real-node
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"
MODULES="$ROOT/hack/real-node"
K8S_VERSION=${K8S_VERSION:-$(pin K8S_VERSION)}
COREDNS_VERSION=${COREDNS_VERSION:-$(pin COREDNS_VERSION)}
LOCAL_PATH_VERSION=${LOCAL_PATH_VERSION:-$(pin LOCAL_PATH_VERSION)}
CACHE_ROOT=${AIMCTL_CACHE_DIR:-$HOME/.cache/aimctl}
DEST="$CACHE_ROOT/node-k8s-$K8S_VERSION-coredns-$COREDNS_VERSION-local-path-$LOCAL_PATH_VERSION"
NODE_BINS=(kubelet kube-proxy coredns local-path-provisioner pause)
# What the node runs on (hack/../docs/development.md says why each is there).
RUNTIME_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack socat
  busybox-static redis-server redis-tools)
BUILD_PACKAGES=(gcc libc6-dev)  # only to compile pause (static: libc.a)
parse_mode "$@"

# --- --update-modules: resolve the three build modules afresh --------------------------------
resolve_kube() { # the control plane's committed module plus the node's two commands
  local src="$ROOT/hack/control-plane/kube" have
  cp "$src/go.mod" "$src/go.sum" .
  have=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
  [[ "$have" == "$K8S_VERSION" ]] || die "hack/control-plane/kube builds k8s.io/kubernetes" \
    "$have, not $K8S_VERSION: run hack/control-plane.sh --update-modules first"
  go get "k8s.io/kubernetes/cmd/kubelet@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-proxy@$K8S_VERSION" >&2
}
resolve_coredns() { # CoreDNS's main package is its module root
  init_module corednsbin
  go get "github.com/coredns/coredns@$COREDNS_VERSION" >&2
}
resolve_local-path() { # so is local-path-provisioner's
  init_module localpathbin
  go get "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" >&2
}
if [[ "$MODE" == update ]]; then
  go_env mod
  work_dir
  for name in kube coredns local-path; do
    mkdir -p "$WORK/$name" "$MODULES/$name"
    (cd "$WORK/$name" && "resolve_$name")
    cp "$WORK/$name/go.mod" "$WORK/$name/go.sum" "$MODULES/$name/"
    log "wrote hack/real-node/$name/go.mod and go.sum"
  done
  log "review and commit hack/real-node/"
  exit 0
fi

# --- the machine: Linux and the Debian packages ---------------------------------------------
[[ "$(uname -s)" == Linux ]] || die "the real node needs Linux (kubelet, containerd, cgroups); this is $(uname -s)"

ensure_packages() { # PACKAGE...: install the missing ones with apt-get (as root or with sudo -n)
  [[ "${AIMCTL_SKIP_PACKAGES:-}" != 1 ]] || return 0
  command -v dpkg-query >/dev/null 2>&1 || die "no dpkg-query: not a Debian-based system." \
    "Install the equivalents of $* yourself and set AIMCTL_SKIP_PACKAGES=1"
  local missing=() p installed
  # One call for all (unknown names make it fail; the known ones are still listed).
  installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
  for p in "$@"; do
    grep -q "^$p\(:[a-z0-9]*\)\? install ok installed$" <<<"$installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    sudo -n true 2>/dev/null || die "missing Debian packages: ${missing[*]}. Installing them needs" \
      "root: run sudo apt-get install -y --no-install-recommends ${missing[*]} (or $0 as root)"
    sudo=(sudo -n)
  fi
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  local install=("${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}")
  # A fresh machine may have no package lists yet: install, and on failure update them once.
  "${install[@]}" >&2 || { log "apt-get install failed; apt-get update, then once more"
    "${sudo[@]}" apt-get update -q >&2 && "${install[@]}" >&2; } \
    || die "apt-get could not install ${missing[*]}"
  # Under systemd the packages start system-wide services; the node runs its own containerd on
  # its own socket and the tests their own redis-server on free ports.
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    for p in containerd redis-server; do
      [[ " ${missing[*]} " != *" $p "* ]] || "${sudo[@]}" systemctl disable --now "$p" >/dev/null 2>&1 || true
    done
  fi
}
ensure_packages "${RUNTIME_PACKAGES[@]}"

# --- find ------------------------------------------------------------------------------------
if [[ -n "${AIMCTL_NODE_ASSETS:-}" ]]; then
  for b in "${NODE_BINS[@]}"; do
    [[ -x "$AIMCTL_NODE_ASSETS/$b" ]] || die "AIMCTL_NODE_ASSETS=$AIMCTL_NODE_ASSETS has no executable $b"
  done
  if [[ -f "$AIMCTL_NODE_ASSETS/$SUMS" ]]; then checked "$AIMCTL_NODE_ASSETS" "${NODE_BINS[@]}"; fi
  log "using AIMCTL_NODE_ASSETS"
  echo "$AIMCTL_NODE_ASSETS"
  exit 0
fi

complete() {
  for b in "${NODE_BINS[@]}"; do [[ -x "$DEST/$b" ]] || return 1; done
  "$DEST/kubelet" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}
use_cache() { checked "$DEST" "${NODE_BINS[@]}"; echo "$DEST"; exit 0; }
if complete; then use_cache; fi

# --- build -----------------------------------------------------------------------------------
begin_build 4000000 "about 3 GiB"
start=$(date +%s)

build_kube() {
  module kube k8s.io/kubernetes "$K8S_VERSION"
  local stamp; stamp=$(kube_stamp)
  PKG_COUNT=2 go_build "kubernetes $K8S_VERSION (kubelet kube-proxy)" -trimpath \
    -ldflags "-s -w$stamp" -o "$DEST/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
}

build_coredns() {
  module coredns github.com/coredns/coredns "$COREDNS_VERSION"
  # CoreDNS's own Makefile stamps coremain.GitCommit (its version is a constant in coremain).
  local commit; commit=$(origin_commit github.com/coredns/coredns "$COREDNS_VERSION")
  PKG_COUNT=1 go_build "coredns $COREDNS_VERSION" -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${commit:-unknown}" \
    -o "$DEST/coredns" github.com/coredns/coredns
}

build_local_path() {
  module local-path github.com/rancher/local-path-provisioner "$LOCAL_PATH_VERSION"
  # Its release build stamps main.VERSION (rancher/local-path-provisioner:scripts/build).
  PKG_COUNT=1 go_build "local-path-provisioner $LOCAL_PATH_VERSION" -trimpath \
    -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_VERSION" \
    -o "$DEST/local-path-provisioner" github.com/rancher/local-path-provisioner
}

build_pause() {
  ensure_packages "${BUILD_PACKAGES[@]}"
  log "pause: gcc -static"
  gcc -static -O2 -s -Wall -Werror -o "$WORK/pause" "$MODULES/pause.c"
  mv -f "$WORK/pause" "$DEST/pause"
}

# Cheapest first: a broken toolchain shows in seconds, not after the long builds.
[[ -x "$DEST/pause" ]] || build_pause
[[ -x "$DEST/local-path-provisioner" ]] || build_local_path
[[ -x "$DEST/kubelet" && -x "$DEST/kube-proxy" ]] || build_kube
[[ -x "$DEST/coredns" ]] || build_coredns

complete || die "node build finished but $DEST is incomplete or kubelet is not $K8S_VERSION"
record_sums "$DEST"
log "built in $(( $(date +%s) - start ))s into $DEST ($(du -sh "$DEST" | cut -f1)); checksums in $DEST/$SUMS"
echo "$DEST"
