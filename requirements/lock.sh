#!/usr/bin/env bash
# Regenerate the hash-pinned lock files from pyproject.toml (docs/decisions.md, "Packaging").
# Needs uv (`pipx install uv`, or `pip install uv` in any venv); installing from the locks needs
# only pip. Versions already in the locks are kept unless --upgrade[-package] is passed, e.g.:
#   bash requirements/lock.sh                         # after editing dependencies
#   bash requirements/lock.sh --upgrade-package structlog
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
compile() {  # <output> <inputs and options...>
    local out=$1
    shift
    "$UV" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
        --no-strip-extras --custom-compile-command "bash requirements/lock.sh" \
        --output-file "$out" "$@" "${EXTRA_ARGS[@]}"
}
EXTRA_ARGS=("$@")
# pip itself, and the build backend (pip install --no-build-isolation uses it, so it is hashed too).
compile requirements/pip.txt requirements/pip.in
compile requirements/build.txt requirements/build.in
# The operator image: runtime dependencies only.
compile requirements/runtime.txt pyproject.toml
# make install / CI: runtime + envtest + dev tools + build backend.
compile requirements/dev.txt pyproject.toml requirements/build.in --extra dev
# make bench: all of the above + kopf, psutil, py-spy.
compile requirements/bench.txt pyproject.toml requirements/build.in --extra dev --extra bench
