#!/usr/bin/env bash
# Memory per idle authenticated TLS connection of xmppd alone (issue 17), the
# idle phase of scripts/bench.sh with heap, stacks and goroutines beside RSS,
# then a burst of large stanzas on every connection and the memory after it.
#
#   IDLE_CLIENTS=5000 BURST_BYTES=65536 scripts/bench-idle.sh
#
# Same server configuration as bench.sh (scripts/bench/xmppd.toml: STARTTLS,
# SCRAM-SHA-1 at 4096 iterations, no GOGC/GOMEMLIMIT in the environment), a
# fresh process for the measured run (accounts are registered first, then the
# server restarts). Every process it starts is stopped on exit, by PID.
# Knobs: IDLE_CLIENTS (5000), IDLE_SECS (10s), SETTLE (3s), BURST (1 message
# per client, 0 = no burst), BURST_BYTES (65536), BURST_DRAIN (120s: how long the burst may take to arrive), BURST_SETTLE (SETTLE: the pause after it), XMPPD_PORT (17322),
# XMPPD_DEBUG (127.0.0.1:17380), SOURCE_IPS (e.g. 127.0.0.1-127.0.0.20 beyond
# ~28k connections), XMPPD_BIN (a prebuilt xmppd to measure instead of this tree's), BENCH_DIR (reuse a directory: accounts survive), PROFILE=1
# (save a heap profile and goroutine dump of the idle server in BENCH_DIR, and login-cpu.pprof: a CPU
# profile of the login phase, LOGIN_PROFILE_SECS long).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IDLE_CLIENTS=${IDLE_CLIENTS:-5000}
IDLE_SECS=${IDLE_SECS:-10s}
SETTLE=${SETTLE:-3s}
BURST=${BURST:-1}
BURST_BYTES=${BURST_BYTES:-65536}
XMPPD_PORT=${XMPPD_PORT:-17322}
XMPPD_DEBUG=${XMPPD_DEBUG:-127.0.0.1:17380}
PROFILE=${PROFILE:-0}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/xmppd-bench-idle.XXXXXX)}
mkdir -p "$WORK"/{bin,certs,xmppd/data}
log() { echo "[bench-idle $(date +%H:%M:%S)] $*" >&2; }

PID=""
cleanup() {
  set +e
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$PID" 2>/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

(cd "$ROOT" && go build -o "$WORK/bin/xmppload" ./cmd/xmppload)
if [ -n "${XMPPD_BIN-}" ]; then cp "$XMPPD_BIN" "$WORK/bin/xmppd"; else (cd "$ROOT" && go build -o "$WORK/bin/xmppd" ./cmd/xmppd); fi
[ -s "$WORK/certs/localhost.crt" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost" -days 30 \
  -keyout "$WORK/certs/localhost.key" -out "$WORK/certs/localhost.crt" 2>/dev/null
sed -e "s#@DIR@#$WORK/xmppd#g" -e "s#@PORT@#$XMPPD_PORT#g" -e "s#@ITER@#4096#g" -e "s#@CERTS@#$WORK/certs#g" \
  -e "s#@DEBUG@#$XMPPD_DEBUG#g" "$ROOT/scripts/bench/xmppd.toml" > "$WORK/xmppd/config.toml"
# No fixed public ports (bench.sh may run beside this): the SOCKS5 and HTTP listeners are off; c2s only.
printf '\n[proxy65]\nlisten = ""\n\n[http]\nlisten = ""\n' >> "$WORK/xmppd/config.toml"

start() {
  if ss -ltnH "sport = :$XMPPD_PORT" | grep -q .; then log "port $XMPPD_PORT is busy"; exit 1; fi
  (cd "$WORK/xmppd" && exec env -u GOGC -u GOMEMLIMIT -u GODEBUG "$WORK/bin/xmppd" serve -c "$WORK/xmppd/config.toml" \
    >>"$WORK/xmppd/stdout.log" 2>&1) &
  PID=$!
  for _ in $(seq 1 200); do ss -ltnH "sport = :$XMPPD_PORT" | grep -q . && return 0; sleep 0.1; done
  log "xmppd did not start"; tail -20 "$WORK/xmppd/stdout.log" >&2; exit 1
}
COMMON=(-addr "127.0.0.1:$XMPPD_PORT" -domain localhost -tls starttls -mech SCRAM-SHA-1 -user-prefix bench
  -password benchpw123 -q -login-concurrency 50)
[ -n "${SOURCE_IPS-}" ] && COMMON+=(-source-ips "$SOURCE_IPS")

start
log "registering $IDLE_CLIENTS accounts (existing ones are reused)"
"$WORK/bin/xmppload" "${COMMON[@]}" -profile idle -register -clients "$IDLE_CLIENTS" -duration 1s -settle 100ms \
  > "$WORK/register.txt" 2>&1 || { cat "$WORK/register.txt" >&2; exit 1; }
cleanup; PID=""
start
sleep 2
if [ "$PROFILE" = 1 ]; then
  ( # during the idle phase: once every client is connected (a goroutine each), after the settle
    while [ "$(curl -sf "http://$XMPPD_DEBUG/metrics" | awk '$1=="go_goroutines"{print $2}')" -lt "$IDLE_CLIENTS" ]; do
      sleep 0.5
    done
    sleep "${SETTLE%s}"; sleep 1
    curl -sf "http://$XMPPD_DEBUG/debug/pprof/heap" -o "$WORK/heap.pprof"
    curl -sf "http://$XMPPD_DEBUG/debug/pprof/goroutine?debug=1" -o "$WORK/goroutines.txt"
  ) &
  # the login phase: a CPU profile of the server from the first connection on (LOGIN_PROFILE_SECS, 10)
  curl -sf "http://$XMPPD_DEBUG/debug/pprof/profile?seconds=${LOGIN_PROFILE_SECS:-10}" -o "$WORK/login-cpu.pprof" &
fi
ARGS=(-profile idle -clients "$IDLE_CLIENTS" -duration "$IDLE_SECS" -settle "$SETTLE" -server-pid "$PID")
[ -n "$XMPPD_DEBUG" ] && ARGS+=(-server-metrics "http://$XMPPD_DEBUG/metrics")
[ "$BURST" -gt 0 ] && ARGS+=(-burst "$BURST" -body-size "$BURST_BYTES" -drain "${BURST_DRAIN:-120s}" -burst-settle "${BURST_SETTLE:-$SETTLE}")
log "xmppload ${COMMON[*]} ${ARGS[*]}"
"$WORK/bin/xmppload" "${COMMON[@]}" "${ARGS[@]}" -json "$WORK/idle.json" > "$WORK/idle.txt" 2>&1 || true
cat "$WORK/idle.txt"
log "loadavg $(cut -d' ' -f1-3 /proc/loadavg); results in $WORK (idle.json, idle.txt)"
jq -r '.server_stats | "connections \(.connected_at_rss)  RSS KiB/conn \(.kib_per_conn)  heap KiB/conn \(.heap_kib_per_conn)  stacks KiB/conn \(.stack_kib_per_conn)  goroutines/conn \(.goroutines_per_conn)  | after burst: RSS KiB/conn \(.kib_per_conn_after_burst)  heap \(.heap_kib_per_conn_after_burst)  stacks \(.stack_kib_per_conn_after_burst)"' "$WORK/idle.json"
