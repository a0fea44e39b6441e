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
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULES="$ROOT/hack/control-plane"
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
SUMS=SHA256SUMS
MODE=build
case "${1:-}" in
  "") ;;
  --update-modules) MODE=update ;;
  *) echo "usage: $0 [--update-modules]" >&2; exit 2 ;;
esac

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] %s\n' "$*" >&2; exit 1; }

# --- recorded checksums ---------------------------------------------------------------------
record_sums() { # DIR: hash every file in DIR into DIR/SHA256SUMS (atomically)
  # A temporary file of its own: two first uses at once each rename a complete list.
  local tmp; tmp=$(mktemp "$1/.$SUMS.XXXXXX")
  (cd "$1" && find -L . -type f ! -name "$SUMS" ! -name ".$SUMS.*" -printf '%P\n' \
    | LC_ALL=C sort | xargs -d '\n' sha256sum >"$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$SUMS") \
    || { rm -f "$tmp"; return 1; }
}
verify_sums() { # DIR BIN...: DIR/SHA256SUMS lists every BIN and every listed file still matches
  local dir=$1 b out; shift
  for b in "$@"; do
    grep -q "^[0-9a-f]\{64\}  $b\$" "$dir/$SUMS" || { echo "$b: not recorded"; return 1; }
  done
  # Both cores: about 0.7 s for the ~400 MB of a full cache instead of 1.4 s.
  out=$(cd "$dir" && xargs -a "$SUMS" -d '\n' -n 8 -P "$(nproc 2>/dev/null || echo 2)" \
    sh -c 'printf "%s\n" "$@" | sha256sum --quiet --strict -c - 2>/dev/null' _) && return 0
  printf '%s\n' "$out"
  return 1
}
checked() { # DIR BIN...: refuse DIR unless it matches its SHA256SUMS; record them when absent
  local dir=$1 why
  if [[ ! -f "$dir/$SUMS" ]]; then
    log "no $SUMS in $dir: recording the checksums of its files now (trust on first use)"
    record_sums "$dir"
    return 0
  fi
  why=$(verify_sums "$@") || die "$dir does not match its $SUMS; refusing to use it:
$(printf '%s\n' "$why" | sed 's/^/  /')
If you did not change these files, something else did. Delete $dir and run $0 again to rebuild."
}

# --- the Go toolchain and its module checks -------------------------------------------------
go_env() {
  command -v go >/dev/null 2>&1 || die "Go is not installed and no control-plane binaries are cached in $DEST: install Go 1.26 or newer (https://go.dev/dl) or set KUBEBUILDER_ASSETS to a directory holding etcd and kube-apiserver."
  export GOTOOLCHAIN=local CGO_ENABLED=0 GO111MODULE=on GOFLAGS="-modcacherw -mod=$1"
  # The checksum database stays on: no module is exempted from it, none fetched insecurely.
  export GONOSUMDB="" GONOSUMCHECK="" GOPRIVATE="" GOINSECURE=""
  export GOSUMDB=${GOSUMDB:-sum.golang.org}
  [[ "$(go env GOSUMDB)" != off ]] || die "GOSUMDB=off: the control-plane build needs the checksum database"
}

kube_commit() { # the commit of tag $K8S_VERSION, or nothing; a line on stderr says where from
  local file="$MODULES/kube/COMMIT" hash ver info
  if [[ -f "$file" ]] && read -r hash ver <"$file" && [[ "$ver" == "$K8S_VERSION" ]]; then
    log "gitCommit $hash (hack/control-plane/kube/COMMIT)"; printf '%s' "$hash"; return
  fi
  info=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" 2>/dev/null || true)
  hash=$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -n1)
  if [[ -n "$hash" ]]; then log "gitCommit $hash (the module proxy's Origin)"; printf '%s' "$hash"; return; fi
  hash=$(timeout 20 git ls-remote https://github.com/kubernetes/kubernetes \
    "refs/tags/$K8S_VERSION^{}" 2>/dev/null | cut -f1 || true)
  if [[ -n "$hash" ]]; then log "gitCommit $hash (git ls-remote)"; printf '%s' "$hash"; return; fi
  log "gitCommit stays \"unknown\": the module proxy's .info for $K8S_VERSION has no Origin and" \
    "github.com does not answer; put \"<commit> $K8S_VERSION\" in hack/control-plane/kube/COMMIT"
}

# --- --update-modules: resolve the three build modules afresh --------------------------------
init_module() { # NAME: a module whose go line is what its dependencies need, not this Go's
  go mod init "local/$1" >/dev/null 2>&1
  go mod edit -go=1.21
}
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
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
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
go_env readonly
mkdir -p "$DEST"
# One build at a time per cache (several checkouts share it); the winner's result is reused.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/.build.lock"
  flock -n 9 || { log "another build holds $CACHE_ROOT/.build.lock; waiting"; flock 9; }
  if complete; then use_cache; fi
fi
rm -f "$DEST/$SUMS"  # whatever is there now is rebuilt or re-recorded below
# A cold build needs about 5 GB (module cache 1.1 GB, build cache 3.7 GB, binaries 0.4 GB).
avail_kb=$(df -Pk "$CACHE_ROOT" | awk 'NR==2 {print $4}')
if [[ -n "$avail_kb" && "$avail_kb" -lt 6000000 ]]; then
  log "warning: only $((avail_kb / 1024)) MiB free under $CACHE_ROOT; a cold build needs about 5 GiB"
fi
WORK=$(mktemp -d)
TICKER=""
trap '[[ -z "$TICKER" ]] || kill "$TICKER" 2>/dev/null; rm -rf "$WORK"' EXIT
start=$(date +%s)

module() { # NAME MODULE VERSION: the committed build module NAME, checked against the pin
  local dir="$WORK/$1" have
  [[ -f "$MODULES/$1/go.mod" && -f "$MODULES/$1/go.sum" ]] \
    || die "hack/control-plane/$1/go.mod or go.sum is missing; run $0 --update-modules"
  mkdir -p "$dir" && cp "$MODULES/$1/go.mod" "$MODULES/$1/go.sum" "$dir/"
  have=$(cd "$dir" && go list -m -f '{{.Version}}' "$2")
  [[ "$have" == "$3" ]] || die "hack/control-plane/$1 builds $2 $have, not $3: run" \
    "$0 --update-modules (with the same version overrides) and commit hack/control-plane/"
  cd "$dir"
}

go_build() { # LABEL GO-BUILD-ARGS... PACKAGES: go build, with progress every 30 s on stderr
  # (AIMCTL_PROGRESS_INTERVAL seconds; the tests shorten it)
  local label=$1 total count="$WORK/.count" began=$SECONDS; shift
  # Everything the packages need (standard library included); cached ones are not rebuilt.
  total=$(go list -deps "${@: -$PKG_COUNT}" 2>/dev/null | wc -l || echo "?")
  log "$label: compiling (about $total packages; the link at the end is silent too)"
  echo 0 >"$count"
  # The ticker's sleep gets no inherited stdout/stderr: a caller reading our output through a
  # pipe must not wait for a sleep that outlives the ticker.
  (
    while sleep "${AIMCTL_PROGRESS_INTERVAL:-30}" </dev/null >/dev/null 2>&1; do
      log "$label: $(cat "$count") of about $total packages compiled, $((SECONDS - began))s elapsed"
    done
  ) &
  TICKER=$!
  local n=0 line
  go build -v "$@" 2>&1 | while IFS= read -r line; do
    if [[ "$line" =~ ^[A-Za-z0-9._~/-]+$ ]]; then
      n=$((n + 1)); echo "$n" >"$count"
    else
      printf '%s\n' "$line" >&2  # a compiler message, not a package name
    fi
  done
  kill "$TICKER" 2>/dev/null; wait "$TICKER" 2>/dev/null || true; TICKER=""
  log "$label: built in $((SECONDS - began))s ($(cat "$count") packages compiled)"
}

build_kube() {
  module kube k8s.io/kubernetes "$K8S_VERSION"
  local minor commit stamp pkgs=() pkg b
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  commit=$(kube_commit)
  stamp=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stamp+=" -X $pkg.gitCommit=${commit:-unknown} -X $pkg.gitTreeState=clean"
    stamp+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
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
