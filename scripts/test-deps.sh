#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: Go modules and the third-party clients that the
# end-to-end tests drive. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

go mod download

need=()
/usr/bin/python3 -c 'import slixmpp' 2>/dev/null || need+=(python3-slixmpp)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
      || echo "warning: could not install ${need[*]} (tests that need them will skip and say so)" >&2
  else
    echo "warning: not root; cannot install ${need[*]} (tests that need them will skip)" >&2
  fi
fi
