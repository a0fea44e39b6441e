#!/usr/bin/env bash
# The real Redis the data-plane tests run (tests/integration/redis): Debian's redis-server.
# Present: nothing to do. Missing: installed with apt-get when we are root (or have password-less
# sudo), else a message saying what to run. Debian's package is 7.0.x; the rendered options are
# the ones Redis 7.0 and the operator's default image (7.2.x) both accept.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "redis-server is missing: run 'sudo apt-get install -y redis-server' (the data-plane tests start it)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: install, and on failure update them once.
"${SUDO[@]}" apt-get install -y -q --no-install-recommends redis-server >&2 \
  || { "${SUDO[@]}" apt-get update -q >&2 && "${SUDO[@]}" apt-get install -y -q --no-install-recommends redis-server >&2; }
# The package starts a system-wide redis-server on :6379; the tests start their own on free ports.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  "${SUDO[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
redis-server --version >&2
