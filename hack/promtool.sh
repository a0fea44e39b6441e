#!/usr/bin/env bash
# Build (or find) the pinned promtool: Prometheus's rule/metrics checker, compiled from the
# published Go module github.com/prometheus/prometheus (cmd/promtool). The tests use it for
# `promtool check rules`, `promtool test rules` (manifests/prometheus/rules/) and
# `promtool check metrics` (a live scrape of the operator).
#
# The same directory holds, under crds/, the Prometheus Operator's ServiceMonitor, PodMonitor and
# PrometheusRule CRDs (from the Go module github.com/prometheus-operator/prometheus-operator,
# example/prometheus-operator-crd/), so the tests can have the apiserver validate the shipped
# monitoring objects against their real schemas.
#
# Contract: prints the directory holding `promtool` (and crds/) as the last line of stdout;
# progress goes to stderr. A second run finds the cache, checks it against its SHA256SUMS and
# returns in about a second.
#   PROMTOOL            use this binary instead (never built, checked or written to; the CRDs
#                       are then not provided: the tests that need them skip)
#   AIMCTL_CACHE_DIR    cache root (default ~/.cache/aimctl)
#   PROMTOOL_VERSION    override the pin (module version; v0.316.0 is Prometheus 3.16.0)
#   PROM_OPERATOR_VERSION, PROM_OPERATOR_SUM  override the CRDs' module pin and its go.sum hash
# The pin lives here, not in aimctl/envtest/_versions.py: promtool is a test/CI tool, not part of
# the local cluster. The cache is <cache root>/promtool-<module version>/promtool.
#
# Supply chain: the same rules as hack/control-plane.sh (read its header): the committed build
# module hack/tools/promtool/go.{mod,sum}, built with -mod=readonly and the checksum database on;
# DEST/SHA256SUMS written at build and checked on every use; builds share the flock'ed lock of
# the cache root with the control-plane and real-node builds. The CRDs' module is fetched with
# `go mod download` (checksum database on) and its hash must also equal PROM_OPERATOR_SUM.
#
#   hack/promtool.sh                   find or build; print the directory
#   hack/promtool.sh --update-modules  re-resolve hack/tools/promtool for the pin (commit it)
#   hack/promtool.sh --help
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_TAG=promtool
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"
MODULES="$ROOT/hack/tools"
PROMTOOL_VERSION=${PROMTOOL_VERSION:-v0.316.0}
CACHE_ROOT=${AIMCTL_CACHE_DIR:-$HOME/.cache/aimctl}
DEST="$CACHE_ROOT/promtool-$PROMTOOL_VERSION"
MODULE=github.com/prometheus/prometheus
OPERATOR_MODULE=github.com/prometheus-operator/prometheus-operator
PROM_OPERATOR_VERSION=${PROM_OPERATOR_VERSION:-v0.85.0}
PROM_OPERATOR_SUM=${PROM_OPERATOR_SUM:-h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s=}
CRDS=(servicemonitors podmonitors prometheusrules)
# Prometheus 3.x tags its Go module v0.3MM.P for release 3.MM.P (its VERSION file says 3.MM.P).
minor=${PROMTOOL_VERSION#v0.}; patch=${minor#*.}; minor=${minor%%.*}
RELEASE="${minor:0:1}.$((10#${minor:1})).$patch"
GO_ALTERNATIVE=" or set PROMTOOL to a promtool binary (Prometheus $RELEASE)"
parse_mode "$@"

# --- --update-modules: resolve the build module afresh ---------------------------------------
[[ "$MODE" != update ]] || update_tool_module promtool "$MODULE/cmd/promtool@$PROMTOOL_VERSION"

# --- find ------------------------------------------------------------------------------------
if [[ -n "${PROMTOOL:-}" ]]; then
  [[ -x "$PROMTOOL" ]] || die "PROMTOOL=$PROMTOOL is not an executable file"
  log "using PROMTOOL ($("$PROMTOOL" --version 2>&1 | head -n1))"
  dirname "$PROMTOOL"
  exit 0
fi

have_promtool() {
  [[ -x "$DEST/promtool" ]] && "$DEST/promtool" --version 2>&1 | head -n1 \
    | grep -q "^promtool, version $RELEASE "
}
have_crds() {
  local c
  for c in "${CRDS[@]}"; do [[ -f "$DEST/crds/monitoring.coreos.com_$c.yaml" ]] || return 1; done
  [[ "$(cat "$DEST/crds/VERSION" 2>/dev/null)" == "$PROM_OPERATOR_VERSION" ]]
}
complete() { have_promtool && have_crds; }
use_cache() {
  local files=(promtool) c
  for c in "${CRDS[@]}"; do files+=("crds/monitoring.coreos.com_$c.yaml"); done
  checked "$DEST" "${files[@]}"
  echo "$DEST"
  exit 0
}
if complete; then use_cache; fi

# --- build -----------------------------------------------------------------------------------
begin_build 2000000 "about 1.5 GiB"
start=$(date +%s)

build_promtool() {
  module promtool "$MODULE" "$PROMTOOL_VERSION"
  local commit v stamp
  commit=$(origin_commit "$MODULE" "$PROMTOOL_VERSION")
  # Stamped as Prometheus's release build does (prometheus/prometheus:.promu.yml): `promtool
  # --version` then names the release, and have_promtool recognises it. netgo as there; CGO off.
  v=github.com/prometheus/common/version
  stamp="-X $v.Version=$RELEASE -X $v.Revision=${commit:-unknown} -X $v.Branch=HEAD"
  stamp+=" -X $v.BuildUser=aimctl-hack -X $v.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
  PKG_COUNT=1 go_build "promtool $RELEASE ($PROMTOOL_VERSION)" -trimpath -tags netgo \
    -ldflags "-s -w $stamp" -o "$DEST/promtool" "$MODULE/cmd/promtool"
}

fetch_crds() {
  # Outside any module: `go mod download` verifies the zip against the checksum database,
  # and the pin below against what was reviewed.
  local json sum dir c
  json=$(cd "$WORK" && go mod download -json "$OPERATOR_MODULE@$PROM_OPERATOR_VERSION") \
    || die "go mod download $OPERATOR_MODULE@$PROM_OPERATOR_VERSION failed: $json"
  sum=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
  [[ "$sum" == "$PROM_OPERATOR_SUM" ]] || die "$OPERATOR_MODULE@$PROM_OPERATOR_VERSION has hash" \
    "${sum:-none}, not the pinned $PROM_OPERATOR_SUM (after bumping PROM_OPERATOR_VERSION, review" \
    "the CRDs and pin the \"Sum\" that \`go mod download -json\` prints)"
  mkdir -p "$DEST/crds"
  for c in "${CRDS[@]}"; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$c.yaml" "$DEST/crds/"
  done
  chmod 644 "$DEST"/crds/*.yaml
  echo "$PROM_OPERATOR_VERSION" >"$DEST/crds/VERSION"
  log "Prometheus Operator CRDs ${CRDS[*]} ($PROM_OPERATOR_VERSION) in $DEST/crds"
}

# Cheapest first: a broken toolchain or proxy shows in seconds, not after the long build.
have_crds || fetch_crds
have_promtool || build_promtool

complete || die "build finished but $DEST is incomplete or promtool is not version $RELEASE"
record_sums "$DEST"
log "built in $(( $(date +%s) - start ))s into $DEST ($(du -sh "$DEST" | cut -f1)); checksums in $DEST/$SUMS"
echo "$DEST"
