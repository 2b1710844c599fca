#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: Go modules and the third-party tools that the
# end-to-end tests drive (python3-slixmpp for test/e2e, chromium for test/debugapi, prosody for test/e2e's
# federation interop and, with ejabberd, for test/migrate, systemd for test/deploy, postgresql for storage/postgres,
# etcd-server for the cluster's membership tests: test/etcdtest and third_party/protoactor-go). Safe to run again; it only
# installs what is missing. Installing needs root. With CI=true a tool that is still missing afterwards fails
# the script (and the tests that need it fail too, see test/harness/tools.go); elsewhere it is a warning and
# those tests skip, saying so.
#
# Converse.js (the browser client of test/web) comes from the npm registry as the package tarball (npm pack: no
# dependencies are installed, the dist/ folder is self-contained) into test/web/testdata/converse, which git
# ignores; node_modules is never created.
set -euo pipefail
cd "$(dirname "$0")/.."

go mod download

have_slixmpp() { /usr/bin/python3 -c 'import slixmpp' 2>/dev/null; }
have_chromium() { command -v chromium >/dev/null 2>&1; }
# test/migrate exports data from the real peers: Prosody 0.12 (prosodyctl, prosody-migrator) and ejabberd
# (ejabberdctl export_piefxis). Their system services are not started (policy-rc.d); the tests run them privately.
have_prosody() { command -v prosody-migrator >/dev/null 2>&1; }
have_ejabberd() { command -v ejabberdctl >/dev/null 2>&1 || [ -x /usr/sbin/ejabberdctl ]; }
# docs/systemd/xmppd.service is checked with systemd-analyze verify (package systemd).
have_systemd_analyze() { command -v systemd-analyze >/dev/null 2>&1; }
# storage/postgres and test/e2e's PostgreSQL tests start a private server (storage/postgres/pgtest) from
# /usr/lib/postgresql/<version>/bin; the cluster the package may create is never used.
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null 2>&1; }
# The cluster's etcd membership tests start a private etcd (test/etcdtest, and its copy in the fork's
# third_party/protoactor-go/cluster) on free loopback ports; the etcd service the package installs is never used.
have_etcd() { command -v etcd >/dev/null 2>&1; }
# Recommended by their packages, so not installed with --no-install-recommends, but needed: slixmpp's XEP-0363
# upload (test/e2e TestSlixmppUpload) PUTs with aiohttp; Prosody resolves the test's domains through libunbound
# (test/e2e's Prosody interop points it at a DNS server on loopback).
have_aiohttp() { /usr/bin/python3 -c 'import aiohttp' 2>/dev/null; }
have_lua_unbound() { dpkg -s lua-unbound >/dev/null 2>&1; }

missing() {
  local m=()
  have_slixmpp || m+=(python3-slixmpp)
  have_chromium || m+=(chromium)
  have_prosody || m+=(prosody)
  have_ejabberd || m+=(ejabberd)
  have_systemd_analyze || m+=(systemd)
  have_postgres || m+=(postgresql)
  have_etcd || m+=(etcd-server)
  have_aiohttp || m+=(python3-aiohttp)
  have_lua_unbound || m+=(lua-unbound)
  echo "${m[@]}"
}

CONVERSE_VERSION=14.0.0
converse_dir=test/web/testdata/converse
have_converse() { [ -f "$converse_dir/dist/converse.min.js" ] && [ "$(cat "$converse_dir/VERSION" 2>/dev/null)" = "$CONVERSE_VERSION" ]; }
install_converse() {
  command -v npm >/dev/null 2>&1 || { echo "warning: npm not found; cannot fetch converse.js" >&2; return 0; }
  local tmp
  tmp=$(mktemp -d)
  if (cd "$tmp" && npm pack --silent "converse.js@$CONVERSE_VERSION" >/dev/null 2>&1 && tar xzf converse.js-*.tgz); then
    rm -rf "$converse_dir"
    mkdir -p "$converse_dir"
    cp -r "$tmp/package/dist" "$converse_dir/dist"
    echo "$CONVERSE_VERSION" >"$converse_dir/VERSION"
  else
    echo "warning: npm pack converse.js@$CONVERSE_VERSION failed" >&2
  fi
  rm -rf "$tmp"
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
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing: npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null \
    || echo "warning: apt-get install npm failed" >&2
fi
have_converse || install_converse
have_converse || need="$need converse.js"
if [ -n "$need" ]; then
  if [ "${CI:-}" = true ]; then
    echo "error: still missing: $need (CI=true: the tests that need them would fail)" >&2
    exit 1
  fi
  echo "warning: still missing: $need (the tests that need them will skip and say so)" >&2
fi
