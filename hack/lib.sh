# Shell functions shared by hack/control-plane.sh and hack/real-node.sh: sourced, never run.
#
# The caller sets, before using them:
#   ROOT        the repository root
#   LOG_TAG     the prefix of every progress line ("control-plane", "real-node")
#   MODULES     the directory of its committed throwaway build modules (hack/<name>/<module>/)
#   DEST        the cache directory it fills; CACHE_ROOT, the cache root holding it
#   K8S_VERSION when it builds Kubernetes binaries (kube_stamp)
# and calls work_dir before module/go_build (they use $WORK). The supply-chain rules these
# functions enforce are described in hack/control-plane.sh's header.

SUMS=SHA256SUMS

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; exit 1; }

pin() { # NAME: the value of `NAME: Final = "value"` in aimctl/envtest/_versions.py
  local v; v=$(sed -n "s/^$1: Final = \"\(.*\)\"\$/\1/p" "$ROOT/aimctl/envtest/_versions.py")
  [[ -n "$v" ]] || { echo "cannot read $1 from $ROOT/aimctl/envtest/_versions.py" >&2; exit 1; }
  printf '%s' "$v"
}

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
go_env() { # MODE: readonly (build) or mod (--update-modules); $GO_ALTERNATIVE ends the no-Go hint
  command -v go >/dev/null 2>&1 || die "Go is not installed and no $LOG_TAG binaries are cached in $DEST: install Go 1.26 or newer (https://go.dev/dl)${GO_ALTERNATIVE:-}."
  export GOTOOLCHAIN=local CGO_ENABLED=0 GO111MODULE=on GOFLAGS="-modcacherw -mod=$1"
  # The checksum database stays on: no module is exempted from it, none fetched insecurely.
  export GONOSUMDB="" GONOSUMCHECK="" GOPRIVATE="" GOINSECURE=""
  export GOSUMDB=${GOSUMDB:-sum.golang.org}
  [[ "$(go env GOSUMDB)" != off ]] || die "GOSUMDB=off: the $LOG_TAG build needs the checksum database"
}

init_module() { # NAME: a module whose go line is what its dependencies need, not this Go's
  go mod init "local/$1" >/dev/null 2>&1
  go mod edit -go=1.21
}

origin_commit() { # MODULE VERSION: the commit the module proxy's Origin names, or nothing
  go mod download -json "$1@$2" 2>/dev/null \
    | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | head -n1 || true
}

kube_commit() { # the commit of tag $K8S_VERSION, or nothing; a line on stderr says where from
  local file="$ROOT/hack/control-plane/kube/COMMIT" hash ver
  if [[ -f "$file" ]] && read -r hash ver <"$file" && [[ "$ver" == "$K8S_VERSION" ]]; then
    log "gitCommit $hash (hack/control-plane/kube/COMMIT)"; printf '%s' "$hash"; return
  fi
  hash=$(origin_commit k8s.io/kubernetes "$K8S_VERSION")
  if [[ -n "$hash" ]]; then log "gitCommit $hash (the module proxy's Origin)"; printf '%s' "$hash"; return; fi
  hash=$(timeout 20 git ls-remote https://github.com/kubernetes/kubernetes \
    "refs/tags/$K8S_VERSION^{}" 2>/dev/null | cut -f1 || true)
  if [[ -n "$hash" ]]; then log "gitCommit $hash (git ls-remote)"; printf '%s' "$hash"; return; fi
  log "gitCommit stays \"unknown\": the module proxy's .info for $K8S_VERSION has no Origin and" \
    "github.com does not answer; put \"<commit> $K8S_VERSION\" in hack/control-plane/kube/COMMIT"
}

kube_stamp() { # the -X flags that make a Kubernetes binary report $K8S_VERSION (as a release does)
  local minor commit stamp="" pkg
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  commit=$(kube_commit)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stamp+=" -X $pkg.gitCommit=${commit:-unknown} -X $pkg.gitTreeState=clean"
    stamp+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  printf '%s' "$stamp"
}

# --- building --------------------------------------------------------------------------------
lock_builds() { # one build at a time per cache root; returns 1 (no lock) when flock is missing
  # Several checkouts share the cache, and both scripts share the lock: on a small machine two
  # Go builds at once only slow each other down. The caller re-checks its cache afterwards.
  command -v flock >/dev/null 2>&1 || return 1
  exec 9>"$CACHE_ROOT/.build.lock"
  flock -n 9 || { log "another build holds $CACHE_ROOT/.build.lock; waiting"; flock 9; }
}

warn_space() { # KB HUMAN: warn when less than KB kilobytes are free under $CACHE_ROOT
  local avail_kb; avail_kb=$(df -Pk "$CACHE_ROOT" | awk 'NR==2 {print $4}')
  if [[ -n "$avail_kb" && "$avail_kb" -lt "$1" ]]; then
    log "warning: only $((avail_kb / 1024)) MiB free under $CACHE_ROOT; a cold build needs $2"
  fi
}

work_dir() { # WORK: a scratch directory removed on exit (with go_build's progress ticker)
  WORK=$(mktemp -d)
  TICKER=""
  trap '[[ -z "$TICKER" ]] || kill "$TICKER" 2>/dev/null; rm -rf "$WORK"' EXIT
}

module() { # NAME MODULE VERSION: the committed build module NAME, checked against the pin
  local dir="$WORK/$1" have rel=${MODULES#"$ROOT"/}
  [[ -f "$MODULES/$1/go.mod" && -f "$MODULES/$1/go.sum" ]] \
    || die "$rel/$1/go.mod or go.sum is missing; run $0 --update-modules"
  mkdir -p "$dir" && cp "$MODULES/$1/go.mod" "$MODULES/$1/go.sum" "$dir/"
  have=$(cd "$dir" && go list -m -f '{{.Version}}' "$2")
  [[ "$have" == "$3" ]] || die "$rel/$1 builds $2 $have, not $3: run" \
    "$0 --update-modules (with the same version overrides) and commit $rel/"
  cd "$dir"
}

go_build() { # LABEL GO-BUILD-ARGS... PACKAGES: go build, with progress every 30 s on stderr
  # (AIMCTL_PROGRESS_INTERVAL seconds; the tests shorten it). $PKG_COUNT: how many trailing
  # arguments are packages.
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

parse_mode() { # the script's "$@": MODE=build, or update (--update-modules); --help prints its header
  MODE=build
  case "${1:-}" in
    "") ;;
    --update-modules) MODE=update ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "usage: $0 [--update-modules | --help]" >&2; exit 2 ;;
  esac
}

begin_build() { # KB HUMAN: the Go env for a build, one build per cache root (the caller's
  # `complete`/`use_cache` reuse a build that finished while this one waited), DEST emptied of
  # its SHA256SUMS (rebuilt or re-recorded below), a space check and the scratch dir
  go_env readonly
  mkdir -p "$DEST"
  if lock_builds; then
    if complete; then use_cache; fi
  fi
  rm -f "$DEST/$SUMS"
  warn_space "$1" "$2"
  work_dir
}

update_tool_module() { # NAME PACKAGE@VERSION: re-resolve $MODULES/NAME for one package, then exit
  go_env mod
  work_dir
  mkdir -p "$WORK/$1" "$MODULES/$1"
  (cd "$WORK/$1" && init_module "${1}bin" && go get "$2" >&2)
  cp "$WORK/$1/go.mod" "$WORK/$1/go.sum" "$MODULES/$1/"
  log "wrote hack/tools/$1/go.mod and go.sum; review and commit them"
  exit 0
}
