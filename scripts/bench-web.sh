#!/usr/bin/env bash
# xmppd over TCP and over RFC 7395 WebSocket side by side with xmppload:
#
#   scripts/bench-web.sh [CLIENTS] [SECONDS] [RATE]
#
# RATE is messages/s per client (default 20): the same offered load on both transports, so that the CPU per
# message compares like with like (a closed loop would measure the load tool's own WebSocket client instead).
# Builds xmppd and xmppload, starts xmppd on loopback (c2s 17322, HTTP 17381, never the default ports) with
# TLS on both (STARTTLS on TCP, wss on the HTTP listener), creates accounts w1…wN through the CLI, then runs the
# same chat profile over each transport while sampling the server's CPU from /proc, and prints
# logins/s and server CPU per message for each. The server is stopped on exit, by PID.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLIENTS=${1:-100}
SECS=${2:-15}
RATE=${3:-20}
TMP=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
cd "$ROOT"
go build -o "$TMP/xmppd" ./cmd/xmppd
go build -o "$TMP/xmppload" ./cmd/xmppload
cat >"$TMP/config.toml" <<TOML
domains = ["localhost"]
data_dir = "$TMP/data"
[c2s]
listen = "127.0.0.1:17322"
direct_tls_listen = ""
[http]
listen = "127.0.0.1:17381"
tls = true
[auth]
scram_iterations = 4096
[debug]
listen = ""
[log]
level = "warn"
TOML
for i in $(seq 1 "$CLIENTS"); do echo pw | "$TMP/xmppd" user add "w$i@localhost" -c "$TMP/config.toml" >/dev/null; done
"$TMP/xmppd" serve -c "$TMP/config.toml" >"$TMP/xmppd.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/17381) 2>/dev/null && break; sleep 0.1; done
common=(-domain localhost -clients "$CLIENTS" -user-prefix w -password pw -profile chat -rate "$RATE" -duration "${SECS}s"
  -cafile "$TMP/data/certs/localhost.crt" -mech SCRAM-SHA-256 -server-pid "$PID")
echo "== tcp (STARTTLS)"
"$TMP/xmppload" "${common[@]}" -addr 127.0.0.1:17322 -tls starttls -json "$TMP/tcp.json" | grep -E "logins|delivered|server CPU|errors:|error"
echo "== websocket (wss)"
"$TMP/xmppload" "${common[@]}" -addr 127.0.0.1:17381 -transport websocket -tls direct -json "$TMP/ws.json" | grep -E "logins|delivered|server CPU|errors:|error"
