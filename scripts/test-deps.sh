#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: Go modules and the third-party tools that the
# end-to-end tests drive (python3-slixmpp and prosody for test/e2e, chromium for test/debugapi). Safe to run again; it only
# installs what is missing. Installing needs root. With CI=true a tool that is still missing afterwards fails
# the script (and the tests that need it fail too, see test/harness/tools.go); elsewhere it is a warning and
# those tests skip, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

go mod download

have_slixmpp() { /usr/bin/python3 -c 'import slixmpp' 2>/dev/null; }
have_chromium() { command -v chromium >/dev/null 2>&1; }
have_prosody() { command -v prosody >/dev/null 2>&1; }

missing() {
  local m=()
  have_slixmpp || m+=(python3-slixmpp)
  have_chromium || m+=(chromium)
  have_prosody || m+=(prosody) # the federation interop test (test/e2e/s2s_prosody_test.go)
  echo "${m[@]}"
}

need=$(missing)
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: $need"
    apt-get update -qq || echo "warning: apt-get update failed; trying the install with the package lists there are" >&2
    # shellcheck disable=SC2086 # $need is a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null \
      || echo "warning: apt-get install $need failed" >&2
  else
    echo "warning: not root; cannot install $need" >&2
  fi
  need=$(missing)
fi
if [ -n "$need" ]; then
  if [ "${CI:-}" = true ]; then
    echo "error: still missing: $need (CI=true: the tests that need them would fail)" >&2
    exit 1
  fi
  echo "warning: still missing: $need (the tests that need them will skip and say so)" >&2
fi
