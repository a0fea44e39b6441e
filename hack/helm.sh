#!/usr/bin/env bash
# Build (or find) the pinned helm, compiled from its published Go module (helm.sh/helm/v4,
# cmd/helm). The chart tests (tests/*/ship/test_ship_helm_*.py) and `make helm` use it.
#
# Contract: prints the directory holding `helm` as the last line of stdout; progress goes to
# stderr. A second run finds the cache, checks it against its SHA256SUMS and returns at once.
#   HELM                a helm binary to use instead: its directory is printed (never written to)
#   AIMCTL_CACHE_DIR    cache root (default ~/.cache/aimctl)
#   HELM_VERSION        override the pin below (then run --update-modules with the same value)
# The cache directory is <cache root>/helm-<version>.
#
# The pin lives here, not in aimctl/envtest/_versions.py: the Python harness never starts helm,
# only the chart tests do, and they take the path this script prints. Helm 4 (not 3): the
# module proxy notes prefer v4 for new work, and v3's newest tag is not approved there.
#
# Supply chain: the rules of hack/control-plane.sh (read its header), through hack/lib.sh: the
# committed build module hack/tools/helm/go.{mod,sum}, built with -mod=readonly and the checksum
# database on; DEST/SHA256SUMS written at build and checked on every use.
#
#   hack/helm.sh                   find or build; print the directory
#   hack/helm.sh --update-modules  re-resolve hack/tools/helm for the pin (commit it)
#   hack/helm.sh --help
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_TAG=helm
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"
MODULES="$ROOT/hack/tools"
HELM_VERSION=${HELM_VERSION:-v4.3.2}
CACHE_ROOT=${AIMCTL_CACHE_DIR:-$HOME/.cache/aimctl}
DEST="$CACHE_ROOT/helm-$HELM_VERSION"
GO_ALTERNATIVE=" or set HELM to a helm binary"
parse_mode "$@"

# --- --update-modules: resolve the build module afresh ---------------------------------------
[[ "$MODE" != update ]] || update_tool_module helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"

# --- find ------------------------------------------------------------------------------------
if [[ -n "${HELM:-}" ]]; then
  [[ -x "$HELM" && ! -d "$HELM" ]] || die "HELM=$HELM is not an executable file"
  log "using HELM ($("$HELM" version --template '{{.Version}}' 2>/dev/null || echo '?'))"
  dirname "$HELM"
  exit 0
fi

complete() {
  [[ -x "$DEST/helm" ]] || return 1
  [[ "$("$DEST/helm" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]
}
use_cache() { checked "$DEST" helm; echo "$DEST"; exit 0; }
if complete; then use_cache; fi

# --- build -----------------------------------------------------------------------------------
begin_build 2000000 "about 1.5 GiB"
start=$(date +%s)

module helm helm.sh/helm/v4 "$HELM_VERSION"
# What helm's own Makefile stamps (helm/helm:Makefile, LDFLAGS): the version `helm version`
# prints, the commit, and a clean tree. The Kubernetes version helm reports to charts
# (.Capabilities.KubeVersion offline) comes from its client-go module; metadata is empty, as
# for a tagged release.
commit=$(origin_commit helm.sh/helm/v4 "$HELM_VERSION")
pkg=helm.sh/helm/v4/internal/version
PKG_COUNT=1 go_build "helm $HELM_VERSION" -trimpath \
  -ldflags "-s -w -X $pkg.version=$HELM_VERSION -X $pkg.metadata= -X $pkg.gitCommit=${commit:-unknown} -X $pkg.gitTreeState=clean" \
  -o "$DEST/helm" helm.sh/helm/v4/cmd/helm

complete || die "helm build finished but $DEST/helm does not report $HELM_VERSION"
record_sums "$DEST"
log "built in $(( $(date +%s) - start ))s into $DEST ($(du -sh "$DEST" | cut -f1)); checksums in $DEST/$SUMS"
echo "$DEST"
